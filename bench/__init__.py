"""Benchmarks: `python -m bench.<name> [--quick]`; each measures its baseline in the same run."""
from __future__ import annotations

import sys

from rich.console import Console


def make_console() -> Console:
    """The benchmarks' console: wide enough for their tables when the output goes to a file or a pipe
    (rich would otherwise fold them to 80 columns and cut the numbers)."""
    return Console() if sys.stdout.isatty() else Console(width=160)
