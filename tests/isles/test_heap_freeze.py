"""System.start freezes the start-up heap, so full collections do not pause the event loop."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import asyncio, gc, sys, tempfile
sys.path.insert(0, {tests!r})
from isles import System
from toy_shop import catalog, orders

async def main(freeze):
    before = gc.get_freeze_count()
    system = System("shop", [catalog, orders], env={{"ISLES_DATA_DIR": tempfile.mkdtemp()}}, freeze_heap=freeze)
    await system.start()
    after = gc.get_freeze_count()
    await system.stop()
    print(before, after)

asyncio.run(main(sys.argv[1] == "on"))
"""


def _freeze_counts(mode: str) -> tuple[int, int]:
    script = SCRIPT.format(tests=str(Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=60, check=True)
    before, after = out.stdout.split()
    return int(before), int(after)


def test_start_moves_the_start_up_heap_out_of_the_collectors_reach():
    before, after = _freeze_counts("on")
    assert before == 0
    assert after > 20_000  # modules, SQLAlchemy, Pydantic: the long-lived objects a full collection would walk


def test_freeze_heap_false_leaves_the_collector_alone():
    assert _freeze_counts("off") == (0, 0)
