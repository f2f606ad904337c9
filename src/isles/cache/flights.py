"""Single-flight: one load per key at a time in a process, without handing out stale loads.

Concurrent misses of a key share one loader call. But a load that began *before* an
invalidation may return the old value, so a reader that has seen that invalidation (its read
found a tombstone with a sequence number above the load's start) must not join it: it starts a
fresh load instead. A local invalidation also drops the key's flight, so later readers start over.
"""
from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, Awaitable, Iterable


class Flight:
    """One load in progress: its task (resolving to ``{id: value}``) and the sequence number its
    read saw (``start_seq``)."""

    __slots__ = ("task", "start_seq")

    def __init__(self, task: "asyncio.Task[dict[str, Any]]", start_seq: int):
        self.task = task
        self.start_seq = start_seq

    async def result(self, id: str) -> Any:
        """The loaded value of ``id``; cancelling the caller does not cancel the shared load."""
        return (await asyncio.shield(self.task)).get(id)


class Flights:
    """The loads in progress, by ``<prefix>:<id>``."""

    def __init__(self) -> None:
        self._by_key: dict[str, Flight] = {}

    def joinable(self, key: str, observed_seq: int) -> Flight | None:
        """The load of ``key`` a reader may share: one that began after what the reader saw."""
        flight = self._by_key.get(key)
        return flight if flight is not None and flight.start_seq >= observed_seq else None

    def __contains__(self, key: str) -> bool:
        return key in self._by_key

    def start(self, keys: Iterable[str], load: "Awaitable[dict[str, Any]]", start_seq: int) -> Flight:
        task = asyncio.ensure_future(load)
        flight = Flight(task, start_seq)
        for key in keys:
            self._by_key[key] = flight
            task.add_done_callback(partial(self._landed, key, flight))
        return flight

    def _landed(self, key: str, flight: Flight, task: "asyncio.Future[Any]") -> None:
        if self._by_key.get(key) is flight:
            del self._by_key[key]
        if not task.cancelled():
            task.exception()  # retrieved here; the awaiting callers report it

    def forget(self, key: str) -> None:
        self._by_key.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        start = f"{prefix}:"
        for key in [k for k in self._by_key if k.startswith(start)]:
            del self._by_key[key]
