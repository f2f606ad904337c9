"""Stopping background tasks without hanging shutdown.

``task.cancel()`` followed by ``await gather(task)`` waits forever when the task swallows its
cancellation - which client libraries do now and then (redis-py, for one, can turn a cancel
that lands inside a command into a retry). A task stopped that way keeps looping and shutdown
never returns. :func:`cancel_and_wait` cancels again until the task is gone, and gives up
loudly instead of hanging.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Iterable

log = logging.getLogger("isles.tasks")


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, grace: float = 2.0, rounds: int = 5) -> None:
    """Cancel ``tasks`` and wait for them, cancelling again every ``grace`` seconds (``rounds`` times)."""
    pending = {task for task in tasks if task is not None and not task.done()}
    for _ in range(rounds):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=grace)
    for task in pending:
        log.error("task %s ignored %d cancellations; leaving it behind", task.get_name(), rounds)


async def ask_then_cancel(task: asyncio.Task[Any], stop: asyncio.Event, *, grace: float) -> None:
    """Set ``stop`` and give ``task`` ``grace`` seconds to end on its own, then cancel it."""
    stop.set()
    done, _ = await asyncio.wait({task}, timeout=grace)
    if not done:
        await cancel_and_wait([task])
