"""The in-process backend: the embedded default when no ``REDIS_URL`` is set.

It stores encoded entries (not live objects), so a caller mutating a returned value cannot change
what the next caller reads, and values behave exactly as they do on Redis.
"""
from __future__ import annotations

import asyncio
import fnmatch
import time
from typing import Any, Callable, Sequence

from isles.cache.base import NEGATIVE, TOMBSTONE, VALUE, VALUE_SWR, VALUES, InvalidationListener, Read, Write, decide


class MemoryBackend:
    """A dict of entries with hard expiry; share one instance to share a cache inside a process."""

    name = "memory"
    shared = True  # caches sharing one instance tell each other's L1 about invalidations

    def __init__(self) -> None:
        self._listeners: list[InvalidationListener] = []
        # "<prefix>:<id>" -> (kind, seq, version, soft_ms, payload, deadline)
        self._data: dict[str, tuple[Any, ...]] = {}
        self._generations: dict[str, int] = {}
        self._seq = 0
        self._writes = 0

    async def read(self, prefix: str, ids: Sequence[str], *, with_seq: bool = False) -> Read:
        generation = self._generations.get(prefix, 0)
        now = time.monotonic()
        data = self._data
        out: list[Any] = []
        for id in ids:
            entry = data.get(f"{prefix}:{id}")
            if entry is not None and (entry[5] <= now or entry[1] <= generation):
                entry = None
            out.append(entry)
        return Read(out, self._seq)

    async def read_values(self, prefix: str, ids: Sequence[str], loads: Callable[[bytes], Any],
                          now_ms: float) -> tuple[dict[str, Any], int]:
        read = await self.read(prefix, ids)
        out: dict[str, Any] = {}
        found = 0
        for id, entry in zip(ids, read.entries, strict=True):
            if entry is None:
                continue
            kind = entry[0]
            if kind == VALUE or (kind == VALUE_SWR and entry[3] >= now_ms):
                out[id] = loads(entry[4])
                found += 1
            elif kind == NEGATIVE:
                found += 1
        return out, found

    async def write(self, prefix: str, writes: Sequence[Write]) -> list[bool]:
        generation = self._generations.get(prefix, 0)
        now = time.monotonic()
        results = []
        for w in writes:
            key = f"{prefix}:{w.id}"
            current = self._data.get(key)
            if current is not None and current[5] <= now:
                current = None
            applied, live = decide(current, generation, w)
            if applied:
                self._seq += 1
                self._data[key] = (w.kind, self._seq, w.version, w.soft_ms, w.payload, now + w.ttl_ms / 1000)
                if live or w.kind == TOMBSTONE:
                    self._publish(f"k:{key}")
            results.append(applied)
        self._writes += len(writes)
        if self._writes > max(1024, len(self._data) // 2):
            self._sweep(now)
        return results

    def _sweep(self, now: float) -> None:
        """Drop expired and retired entries; amortised O(1) per write."""
        self._writes = 0
        gens = self._generations
        dead = [k for k, e in self._data.items() if e[5] <= now or e[1] <= gens.get(k.partition(":")[0], 0)]
        for key in dead:
            del self._data[key]

    async def retire_prefix(self, prefix: str) -> None:
        self._seq += 1
        self._generations[prefix] = self._seq
        self._publish(f"p:{prefix}")

    def _publish(self, message: str) -> None:
        for listener in self._listeners:
            listener(message)

    async def cleanup_prefix(self, prefix: str) -> int:
        generation = self._generations.get(prefix, 0)
        start = f"{prefix}:"
        dead = [k for k, e in self._data.items() if k.startswith(start) and e[1] <= generation]
        for key in dead:
            del self._data[key]
        return len(dead)

    async def match(self, pattern: str) -> list[tuple[str, str]]:
        now = time.monotonic()
        found = []
        for key, entry in list(self._data.items()):
            if entry[5] > now and entry[0] != TOMBSTONE and fnmatch.fnmatchcase(key, pattern):
                prefix, _, id = key.partition(":")
                if entry[1] > self._generations.get(prefix, 0):
                    found.append((prefix, id))
        return found

    async def count(self, prefix: str | None) -> dict[str, int]:
        now = time.monotonic()
        counts: dict[str, int] = {}
        for key, entry in self._data.items():
            p = key.partition(":")[0]
            if (prefix is None or p == prefix) and entry[0] in VALUES and entry[5] > now \
                    and entry[1] > self._generations.get(p, 0):
                counts[p] = counts.get(p, 0) + 1
        if prefix is not None:
            counts.setdefault(prefix, 0)
        return counts

    async def memory(self) -> tuple[int, str]:
        used = sum(len(k) + len(e[4]) + 120 for k, e in self._data.items())
        return used, _human(used)

    async def ping(self) -> float:
        return 0.0

    async def listen(self, listener: InvalidationListener,
                     on_state: Callable[[bool, str], None]) -> None:
        """Like Redis pub/sub, in process: deliver invalidations until cancelled."""
        self._listeners.append(listener)
        try:
            on_state(True, "in process")
            await asyncio.Event().wait()
        finally:
            self._listeners.remove(listener)

    async def close(self) -> None:
        self._data.clear()


def _human(n: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024:
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return f"{n:.2f}T"
