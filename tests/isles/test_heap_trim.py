"""isles.heap_trim gives the C heap's free pages back, and System.start runs it once a minute (issue 16)."""
from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from isles import System
from isles.heap_trim import trim_heap

# In a fresh interpreter: fill glibc's main heap with 1 KiB chunks (above pymalloc's 512 bytes, so
# malloc's), free all but every 64th - the kept ones pin the pages, as long-lived allocations made
# during a burst do - and print the RSS (KiB) before and after a trim.
SCRIPT = """
import sys
from isles.heap_trim import trim_heap

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

chunks = [bytes(1000) + bytes([i % 256]) for i in range(40_000)]
kept = chunks[::64]
del chunks
before = rss()
trimmed = trim_heap() if sys.argv[1] == "trim" else False
print(trimmed, before, rss())
"""


def _rss_around(mode: str) -> tuple[bool, int, int]:
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, timeout=60,
                         check=True, env={"PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")})
    trimmed, before, after = out.stdout.split()
    return trimmed == "True", int(before), int(after)


@pytest.mark.skipif(not trim_heap(), reason="the C library has no malloc_trim (not glibc)")
def test_trim_gives_freed_heap_pages_back():
    _, before, after = _rss_around("keep")
    assert before - after < 4_000  # freed, yet resident: the kept chunks pin the heap
    trimmed, before, after = _rss_around("trim")
    assert trimmed
    assert before - after > 20_000  # most of the ~39 MB freed goes back (KiB)


def test_start_runs_the_trim_and_trim_heap_false_does_not():
    sys.path.insert(0, str(Path(__file__).parent))
    from toy_shop import catalog, orders

    async def tasks(trim: bool) -> set[str]:
        system = System("shop", [catalog, orders], env={"ISLES_DATA_DIR": tempfile.mkdtemp()}, trim_heap=trim,
                        freeze_heap=False)
        await system.start()
        try:
            return {task.get_name() for task in asyncio.all_tasks()}
        finally:
            await system.stop()

    assert "isles-heap-trim" in asyncio.run(tasks(True))
    assert "isles-heap-trim" not in asyncio.run(tasks(False))
