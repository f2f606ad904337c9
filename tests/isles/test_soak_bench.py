"""bench.soak end to end, briefly: `isles run` on SQLite under its mixed traffic for about 20 s.

Slow (it starts the whole MES in a subprocess, migrates and seeds it): run with ``-m slow``.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULT = re.compile(
    r"^RESULT soak db=(?P<db>\w+) minutes=(?P<minutes>[\d.]+) requests=(?P<requests>\d+) errors=(?P<errors>\d+) "
    r"rss_slope_mib_per_min=(?P<rss>-?[\d.]+) p99_first_ms=(?P<p99_first>[\d.]+) p99_last_ms=(?P<p99_last>[\d.]+) "
    r"inbox_growth_rows_per_min=(?P<inbox>-?[\d.]+) mismatches=(?P<mismatches>\d+)$")


@pytest.mark.slow
def test_a_short_soak_on_sqlite_has_no_errors_and_every_copy_equals_its_owner() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT),
                                                                      os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-m", "bench.soak", "--db", "sqlite", "--minutes", "0.33",
                           "--interval", "5", "--rate", "20"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    match = RESULT.match(last)
    assert match, f"last line is not a RESULT soak line: {last!r}"
    assert match["db"] == "sqlite"
    assert int(match["requests"]) >= 300  # 20 requests/s offered for 20 s, open loop
    assert int(match["errors"]) == 0, done.stdout[-3000:]
    assert int(match["mismatches"]) == 0, done.stdout[-3000:]
