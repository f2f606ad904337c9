"""Periodic jobs: work a service does on its own, on a clock, in its worker.

Some rules hold by time, not by request - a lot expires at midnight whether or not anyone asks.
A service declares such work once::

    Service("material", ..., jobs=[Job("expire-due", every=timedelta(minutes=5), run=expire_due)])

and the :class:`isles.System` that runs the service runs each job every ``every``, in a unit of
work of its own (committed when ``run`` returns, rolled back if it raises). A failing run is
logged and tried again at the next tick: the database being down for a minute must not stop
the job for good. Several workers of one service may run the same job at once, so a job must be
safe to run twice (take row locks, or act only on rows still in the state it changes).
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Awaitable, Callable

from isles.errors import ConfigurationError
from isles.runtime import ServiceRuntime
from isles.unit_of_work import UnitOfWork

log = logging.getLogger("isles.jobs")


@dataclass(frozen=True)
class Job:
    """``run(uow)`` every ``every`` (the first run after one interval, then one per interval)."""

    name: str
    every: timedelta
    run: Callable[[UnitOfWork], Awaitable[Any]]

    def __post_init__(self) -> None:
        if self.every.total_seconds() <= 0:
            raise ConfigurationError(f"job {self.name!r} runs every {self.every}", fix="give it a positive interval")


async def run_once(runtime: ServiceRuntime, job: Job) -> Any:
    """One run of ``job`` in its own unit of work on ``runtime``'s database."""
    async with UnitOfWork(runtime) as uow:
        return await job.run(uow)


async def run_periodically(runtime: ServiceRuntime, job: Job) -> None:
    """Run ``job`` every ``job.every`` until cancelled; a failed run is logged, never fatal."""
    interval = job.every.total_seconds()
    while True:
        await asyncio.sleep(interval)
        try:
            await run_once(runtime, job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("service '%s': job %s failed: %s: %s", runtime.name, job.name, type(exc).__name__,
                        next(iter(str(exc).splitlines()), ""))


__all__ = ["Job", "run_once", "run_periodically"]
