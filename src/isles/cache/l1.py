"""The level-1 cache: decoded objects in this process, in front of a shared backend.

Another process can change the backend at any time, so L1 is only trusted while its invalidation
channel is up (``live``): when the channel drops, L1 is emptied and bypassed until it is back.
Every entry expires (at most ``ttl`` seconds, and never later than the backend entry would go
stale), which bounds what a lost message could cost. ``epoch`` counts invalidations: a reader
that fetched from the backend puts the value into L1 only if no invalidation arrived meanwhile,
so a slow read cannot re-insert what an invalidation just removed.

Values held here are shared by all readers in the process: treat them as read-only.
"""
from __future__ import annotations

import fnmatch
import time
from typing import Any


class LocalCache:
    __slots__ = ("ttl", "max_entries", "data", "epoch", "live", "flushes")

    def __init__(self, ttl: float, max_entries: int = 100_000):
        self.ttl = ttl
        self.max_entries = max_entries
        self.data: dict[str, tuple[Any, float]] = {}  # "<prefix>:<id>" -> (value, monotonic deadline)
        self.epoch = 0
        self.live = False
        self.flushes = 0

    def put(self, key: str, value: Any, epoch: int, fresh_for: float) -> None:
        """Remember ``value`` unless an invalidation happened since ``epoch`` was read."""
        if not self.live or epoch != self.epoch or fresh_for <= 0:
            return
        data = self.data
        if len(data) >= self.max_entries and key not in data:
            del data[next(iter(data))]  # oldest insertion first
        data[key] = (value, time.monotonic() + min(self.ttl, fresh_for))

    def discard(self, key: str) -> None:
        self.epoch += 1
        self.data.pop(key, None)

    def discard_prefix(self, prefix: str) -> None:
        self.epoch += 1
        start = f"{prefix}:"
        for key in [k for k in self.data if k.startswith(start)]:
            del self.data[key]

    def discard_matching(self, pattern: str) -> None:
        self.epoch += 1
        for key in [k for k in self.data if fnmatch.fnmatchcase(k, pattern)]:
            del self.data[key]

    def clear(self) -> None:
        self.epoch += 1
        self.flushes += 1
        self.data.clear()

    def on_message(self, message: str) -> None:
        """Apply an invalidation published by any process (see ``base.InvalidationListener``)."""
        kind, _, rest = message.partition(":")
        if kind == "k":
            self.discard(rest)
        elif kind == "p":
            self.discard_prefix(rest)
        else:
            self.clear()
