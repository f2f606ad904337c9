"""``ReferenceDataCache``: seed 001's cache API, read-through, race-free under invalidation.

A service caches what another service owns (parts, users, work centers) and follows the owner's
events to drop or refresh it::

    cache = ReferenceDataCache()                      # in-process; REDIS_URL or url= for Redis
    part = await cache.get_or_load("part", part_id, material_client.get_part)
    handlers.include(cache.follow("part", source="mes.material.part"))

Guarantees (see ``base.py`` for the write rule):

- a fill whose load began before an invalidation (of the key or of its prefix) is refused,
  unless the loaded value's version proves it is at least as new; an invalidation leaves a
  versioned tombstone, so the late fill has something to lose against;
- one load per key at a time in a process (single-flight, ``flights.py``), and a reader that saw
  an invalidation never joins a load that began before it;
- a cache outage costs a loader call and a warning, never an exception in the owner's or the
  follower's path; what was invalidated during an outage is retired when the backend returns.

A cache belongs to one event loop (like its Redis connections); it is not thread-safe.
"""
from __future__ import annotations

import asyncio
import logging
import os
import random
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Awaitable, Callable, Iterable, Mapping, NamedTuple, Sequence

from prometheus_client import CollectorRegistry

from isles.cache import metrics
from isles.cache.base import (
    NEGATIVE,
    NO_START,
    NO_VERSION,
    TOMBSTONE,
    VALUE,
    VALUE_SWR,
    Backend,
    CacheUnavailable,
    Read,
    Write,
)
from isles.cache.codec import codec_for
from isles.cache.flights import Flight, Flights
from isles.cache.keys import KeySpace, Prefix, check_prefix
from isles.cache.l1 import LocalCache
from isles.cache.memory import MemoryBackend
from isles.cache.metrics import CacheStats, Counters
from isles.config import mask_url
from isles.errors import ConfigurationError
from isles.tasks import cancel_and_wait

log = logging.getLogger("isles.cache")


class Versioned(NamedTuple):
    """A value with the owner's entity version; return it from loaders to make fills version-checked."""

    value: Any
    version: int


Loader = Callable[[str], Awaitable[Any]]
BulkLoader = Callable[[list[str]], Awaitable[Mapping[str, Any]]]
WarmLoader = Callable[[], Awaitable[Mapping[str, Any]]]


@dataclass(frozen=True)
class CacheHealth:
    """``health_check``'s answer: truthy when healthy, with the reason when not."""

    ok: bool
    backend: str
    detail: str
    latency_ms: float | None = None

    def __bool__(self) -> bool:
        return self.ok


def _unwrap(result: Any) -> tuple[Any, int]:
    if isinstance(result, Versioned):
        return result.value, int(result.version)
    return result, NO_VERSION


class ReferenceDataCache:
    """Reference data owned by other services, cached in-process or in Redis.

    ``url``: ``None`` reads ``REDIS_URL`` (unset means in-process), ``"memory://"`` forces the
    in-process backend. ``default_ttl`` seconds per value (shortened by up to ``jitter`` so entries
    written together do not expire together). ``negative_ttl``: how long "no such id" is
    remembered. ``stale_ttl`` > 0 enables stale-while-revalidate in ``get_or_load``: for that long
    after its TTL a value is served while one background load refreshes it. ``l1_ttl`` > 0 puts an
    in-process level 1 of decoded objects in front of Redis. ``tombstone_ttl``: how long an
    invalidation is remembered; loads slower than half of it are not written back.
    """

    def __init__(self, url: str | None = None, default_ttl: float = 300.0, *, namespace: str = "isles:cache",
                 name: str | None = None, backend: Backend | None = None, l1_ttl: float = 0.0,
                 l1_max_entries: int = 100_000, negative_ttl: float = 30.0, stale_ttl: float = 0.0,
                 jitter: float = 0.1, tombstone_ttl: float | None = None, serializer: str = "orjson",
                 socket_timeout: float = 1.0, retry_after: float = 1.0,
                 registry: CollectorRegistry | None = None, env: Mapping[str, str] | None = None):
        if default_ttl <= 0 or negative_ttl <= 0 or stale_ttl < 0 or not 0 <= jitter < 1:
            raise ConfigurationError(
                f"cache TTLs must be positive (default_ttl={default_ttl}, negative_ttl={negative_ttl}, "
                f"stale_ttl={stale_ttl}) and jitter in [0, 1) (got {jitter})",
                fix="pass seconds > 0, e.g. ReferenceDataCache(default_ttl=300)")
        self.keys = KeySpace(namespace)
        self.default_ttl = float(default_ttl)
        self.negative_ttl = float(negative_ttl)
        self.stale_ttl = float(stale_ttl)
        self.jitter = float(jitter)
        self.tombstone_ttl = float(tombstone_ttl if tombstone_ttl is not None else max(60.0, default_ttl))
        self.codec = codec_for(serializer)
        self._owns_backend = backend is None
        if backend is None:
            backend = self._backend_for(url, env, socket_timeout=socket_timeout, retry_after=retry_after)
        self.backend: Backend = backend
        self.name = name or f"{namespace}@{backend.name}"
        self.counters = Counters()
        self._l1: LocalCache | None = LocalCache(l1_ttl, l1_max_entries) if l1_ttl > 0 else None
        if self._l1 is not None and not backend.shared:
            self._l1.live = True  # nothing but this cache writes the backend
        self._flights = Flights()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._warmers: dict[str, asyncio.Task[Any]] = {}
        self._listener: asyncio.Task[Any] | None = None
        self._pending_retire: set[str] = set()
        self._closed = False
        if hasattr(backend, "on_recover"):
            backend.on_recover = self._on_recover
        metrics.register(self, registry)

    def _backend_for(self, url: str | None, env: Mapping[str, str] | None, *, socket_timeout: float,
                     retry_after: float) -> Backend:
        source = os.environ if env is None else env
        url = url if url is not None else (source.get("REDIS_URL") or None)
        if url is None or url.startswith("memory:"):
            return MemoryBackend()
        if url.startswith(("redis://", "rediss://", "unix://")):
            from isles.cache.redis import RedisBackend
            return RedisBackend(url, self.keys, socket_timeout=socket_timeout, retry_after=retry_after)
        raise ConfigurationError(f"cache URL {mask_url(url)!r} is neither redis://, rediss://, unix:// nor memory://",
                                 fix="set REDIS_URL=redis://host:6379/0, or leave it unset for the in-process cache")

    # -- properties --------------------------------------------------------------------------------
    @property
    def l1_size(self) -> int:
        return len(self._l1.data) if self._l1 is not None else 0

    @property
    def l1_flushes(self) -> int:
        return self._l1.flushes if self._l1 is not None else 0

    # -- internals ---------------------------------------------------------------------------------
    def _ttl_ms(self, ttl: float | None) -> int:
        seconds = self.default_ttl if ttl is None else float(ttl)
        if self.jitter:
            seconds *= 1.0 - self.jitter * random.random()
        return max(1, int(seconds * 1000))

    def _value_write(self, id: str, value: Any, version: int, start_seq: int, ttl: float | None) -> Write:
        now_ms = int(time.time() * 1000)
        if value is None:
            ttl_ms = max(1, int(self.negative_ttl * 1000))
            return Write(id, NEGATIVE, version, start_seq, now_ms + ttl_ms, ttl_ms, b"")
        ttl_ms = self._ttl_ms(ttl)
        if self.stale_ttl:
            return Write(id, VALUE_SWR, version, start_seq, now_ms + ttl_ms, ttl_ms + int(self.stale_ttl * 1000),
                         self.codec.dumps(value))
        return Write(id, VALUE, version, start_seq, now_ms + ttl_ms, ttl_ms, self.codec.dumps(value))

    async def _read(self, prefix: str, ids: Sequence[str], with_seq: bool = False) -> Read | None:
        if self._l1 is not None and self._listener is None and self.backend.shared and not self._closed:
            self._start_listener()
        try:
            return await self.backend.read(prefix, ids, with_seq=with_seq)
        except CacheUnavailable:
            self.counters.errors += 1
            return None

    async def _write(self, prefix: str, writes: Sequence[Write]) -> list[bool] | None:
        try:
            return await self.backend.write(prefix, writes)
        except CacheUnavailable:
            self.counters.errors += 1
            return None

    def _spawn(self, coro: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        task.set_name(name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("cache %s: background task %s failed: %s", self.name, task.get_name(), task.exception())

    def _forget(self, key: str) -> None:
        """A local invalidation: drop the L1 entry and let later readers start a fresh load."""
        if self._l1 is not None:
            self._l1.discard(key)
        self._flights.forget(key)

    # -- the seed's API ----------------------------------------------------------------------------
    async def get(self, prefix: Prefix, id: str) -> Any | None:
        """The cached value, or ``None`` (absent, expired, invalidated, or the owner said none)."""
        l1 = self._l1
        if l1 is not None:  # the L1 hit path: keep it this short (bench: >= 1M gets/s)
            try:
                key = prefix + ":" + id
            except TypeError:
                key = f"{prefix}:{id}"
            item = l1.data.get(key)
            if item is not None and item[1] > time.monotonic():
                self.counters.l1_hits += 1
                return item[0]
        found = await self.get_many(prefix, (id,))
        return found.get(id)

    async def get_many(self, prefix: Prefix, ids: Iterable[str]) -> dict[str, Any]:
        """The cached values of ``ids`` that are present (like the seed's ``getMany`` map)."""
        p = str(prefix)
        result: dict[str, Any] = {}
        counters = self.counters
        l1 = self._l1
        epoch = 0
        if l1 is not None:
            now = time.monotonic()
            rest = []
            data = l1.data
            for id in ids:
                item = data.get(f"{p}:{id}")
                if item is not None and item[1] > now:
                    result[id] = item[0]
                    counters.l1_hits += 1
                else:
                    rest.append(id)
            if not rest:
                return result
            epoch = l1.epoch
        else:
            wanted: Sequence[str] = ids if isinstance(ids, (list, tuple)) else list(ids)
            try:
                found, hits = await self.backend.read_values(p, wanted, self.codec.loads, time.time() * 1000)
            except CacheUnavailable:
                counters.errors += 1
                counters.misses += len(wanted)
                return result
            counters.hits += hits
            counters.misses += len(wanted) - hits
            return found
        read = await self._read(p, rest)
        if read is None:
            counters.misses += len(rest)
            return result
        loads = self.codec.loads
        now_ms = time.time() * 1000
        hits = 0
        for id, entry in zip(rest, read.entries, strict=True):
            if entry is None:
                continue
            kind = entry[0]
            if kind == VALUE or kind == VALUE_SWR:
                soft = int(entry[3])
                if kind == VALUE_SWR and soft < now_ms:
                    continue
                value = result[id] = loads(entry[4])
                hits += 1
                l1.put(f"{p}:{id}", value, epoch, (soft - now_ms) / 1000)
            elif kind == NEGATIVE:
                hits += 1
        counters.hits += hits
        counters.misses += len(rest) - hits
        return result

    async def set(self, prefix: Prefix, id: str, value: Any, *, ttl: float | None = None,
                  version: int | None = None) -> bool:
        """Cache ``value``. With ``version`` it never replaces a newer version (nor a newer
        invalidation); without one it is written unconditionally. ``False`` when not written."""
        p = check_prefix(prefix)
        write = self._value_write(str(id), value, NO_VERSION if version is None else int(version), NO_START, ttl)
        applied = await self._write(p, [write])
        self._forget(f"{p}:{id}")
        if applied is not None and not applied[0]:
            self.counters.rejected_fills += 1
        return bool(applied and applied[0])

    async def set_many(self, prefix: Prefix, items: Mapping[str, Any], *, ttl: float | None = None) -> int:
        """Cache several values (each may be a :class:`Versioned`); returns how many were written."""
        p = check_prefix(prefix)
        writes = []
        for id, item in items.items():
            value, version = _unwrap(item)
            writes.append(self._value_write(str(id), value, version, NO_START, ttl))
        applied = await self._write(p, writes) if writes else []
        for w in writes:
            self._forget(f"{p}:{w.id}")
        if applied is None:
            return 0
        self.counters.rejected_fills += applied.count(False)
        return sum(applied)

    async def invalidate(self, prefix: Prefix, id: str, *, version: int | None = None) -> bool:
        """Forget ``id``, leaving a tombstone so a load that began earlier cannot write it back.

        With the owner's ``version`` the tombstone also lets through a fill of that version or
        newer, and is skipped when the cache already holds that version. Never raises for an
        unreachable backend: the prefix is retired when the backend is back.
        """
        p = check_prefix(prefix)
        key = f"{p}:{id}"
        write = Write(str(id), TOMBSTONE, NO_VERSION if version is None else int(version), NO_START, 0,
                      int(self.tombstone_ttl * 1000))
        applied = await self._write(p, [write])
        self._forget(key)
        if applied is None:
            self._pending_retire.add(p)
            return False
        return applied[0]

    async def invalidate_all(self, prefix: Prefix) -> None:
        """Forget every entry of ``prefix`` in O(1) (a generation bump); old keys are removed in
        the background with SCAN + UNLINK, never KEYS."""
        p = check_prefix(prefix)
        try:
            await self.backend.retire_prefix(p)
        except CacheUnavailable:
            self.counters.errors += 1
            self._pending_retire.add(p)
        else:
            self._spawn(self._cleanup(p), f"isles-cache-cleanup-{p}")
        if self._l1 is not None:
            self._l1.discard_prefix(p)
        self._flights.forget_prefix(p)

    async def _cleanup(self, prefix: str) -> None:
        try:
            await self.backend.cleanup_prefix(prefix)
        except CacheUnavailable:
            self.counters.errors += 1

    async def invalidate_by_pattern(self, pattern: str) -> int:
        """Invalidate entries whose ``<prefix>:<id>`` matches the glob ``pattern`` (seed:
        ``work_order:*:<partId>``); ``<prefix>:*`` retires the whole prefix. Returns the count."""
        head, sep, tail = pattern.partition(":")
        try:
            matches = await self.backend.match(pattern)
        except CacheUnavailable:
            self.counters.errors += 1
            if sep and not any(c in head for c in "*?["):
                self._pending_retire.add(head)
            return 0
        if sep and tail == "*" and not any(c in head for c in "*?["):
            await self.invalidate_all(head)
            return len(matches)
        by_prefix: dict[str, list[Write]] = {}
        ttl_ms = int(self.tombstone_ttl * 1000)
        for p, id in matches:
            by_prefix.setdefault(p, []).append(Write(id, TOMBSTONE, NO_VERSION, NO_START, 0, ttl_ms))
        count = 0
        for p, writes in by_prefix.items():
            applied = await self._write(p, writes)
            if applied is None:
                self._pending_retire.add(p)
            else:
                count += sum(applied)
            for w in writes:
                self._flights.forget(f"{p}:{w.id}")
        if self._l1 is not None:
            self._l1.discard_matching(pattern)
        return count

    # -- read-through --------------------------------------------------------------------------------
    async def get_or_load(self, prefix: Prefix, id: str, loader: Loader, *, ttl: float | None = None) -> Any | None:
        """The cached value, else ``await loader(id)`` (one load per key at a time), cached.

        The loader may return a :class:`Versioned`; ``None`` means "no such id" and is cached for
        ``negative_ttl``. With ``stale_ttl`` a value past its TTL is served while one background
        load refreshes it.
        """
        p = str(prefix)
        key = f"{p}:{id}"
        l1 = self._l1
        if l1 is not None:
            item = l1.data.get(key)
            if item is not None and item[1] > time.monotonic():
                self.counters.l1_hits += 1
                return item[0]
        epoch = l1.epoch if l1 is not None else 0
        read = await self._read(p, (id,), with_seq=True)
        entry = read.entries[0] if read is not None else None
        if entry is not None:
            now_ms = time.time() * 1000
            soft = int(entry[3])
            kind = entry[0]
            if kind == VALUE or kind == VALUE_SWR:
                if soft >= now_ms:
                    self.counters.hits += 1
                    value = self.codec.loads(entry[4])
                    if l1 is not None:
                        l1.put(key, value, epoch, (soft - now_ms) / 1000)
                    return value
                if self.stale_ttl:
                    self.counters.stale_served += 1
                    self._revalidate(p, [id], partial(_single, loader), read.seq, ttl)  # type: ignore[union-attr]
                    return self.codec.loads(entry[4])
            elif kind == NEGATIVE and soft >= now_ms:
                self.counters.hits += 1
                return None
        self.counters.misses += 1
        observed = int(entry[1]) if entry is not None else 0
        flight = self._flights.joinable(key, observed)
        if flight is None:
            start_seq = read.seq if read is not None else NO_START
            flight = self._fly(p, [id], partial(_single, loader), start_seq, ttl, fill=read is not None)
        return await flight.result(id)

    async def get_many_or_load(self, prefix: Prefix, ids: Iterable[str], loader: BulkLoader, *,
                               ttl: float | None = None) -> dict[str, Any]:
        """Cached values of ``ids``; the misses come from one ``await loader(missing_ids)`` call
        (a mapping id -> value or :class:`Versioned`; ids it leaves out are cached as absent)."""
        p = str(prefix)
        ids = list(dict.fromkeys(ids))
        found: dict[str, Any] = {}
        l1 = self._l1
        counters = self.counters
        rest = ids
        if l1 is not None:
            now = time.monotonic()
            rest = []
            for id in ids:
                item = l1.data.get(f"{p}:{id}")
                if item is not None and item[1] > now:
                    found[id] = item[0]
                    counters.l1_hits += 1
                else:
                    rest.append(id)
        epoch = l1.epoch if l1 is not None else 0
        read = await self._read(p, rest, with_seq=True) if rest else Read([], 0)
        entries = read.entries if read is not None else [None] * len(rest)
        now_ms = time.time() * 1000
        loads = self.codec.loads
        missing: list[str] = []
        stale: list[str] = []
        waits: list[tuple[str, Flight]] = []
        for id, entry in zip(rest, entries, strict=True):
            if entry is not None:
                soft = int(entry[3])
                if entry[0] == VALUE or entry[0] == VALUE_SWR:
                    if soft >= now_ms:
                        counters.hits += 1
                        value = found[id] = loads(entry[4])
                        if l1 is not None:
                            l1.put(f"{p}:{id}", value, epoch, (soft - now_ms) / 1000)
                        continue
                    if self.stale_ttl:
                        counters.stale_served += 1
                        found[id] = loads(entry[4])
                        stale.append(id)
                        continue
                elif entry[0] == NEGATIVE and soft >= now_ms:
                    counters.hits += 1
                    continue
            counters.misses += 1
            observed = int(entry[1]) if entry is not None else 0
            flight = self._flights.joinable(f"{p}:{id}", observed)
            if flight is not None:
                waits.append((id, flight))
            else:
                missing.append(id)
        start_seq = read.seq if read is not None else NO_START
        if missing:
            flight = self._fly(p, missing, loader, start_seq, ttl, fill=read is not None)
            loaded = await asyncio.shield(flight.task)
            for id in missing:
                if loaded.get(id) is not None:
                    found[id] = loaded[id]
        for id, flight in waits:
            value = await flight.result(id)
            if value is not None:
                found[id] = value
        if stale:
            self._revalidate(p, stale, loader, start_seq, ttl)
        return {id: found[id] for id in ids if id in found}

    def _fly(self, prefix: str, ids: list[str], loader: BulkLoader, start_seq: int, ttl: float | None,
             *, fill: bool) -> Flight:
        return self._flights.start([f"{prefix}:{id}" for id in ids],
                                   self._load_and_fill(prefix, ids, loader, start_seq, ttl, fill), start_seq)

    async def _load_and_fill(self, prefix: str, ids: list[str], loader: BulkLoader, start_seq: int,
                             ttl: float | None, fill: bool) -> dict[str, Any]:
        started = time.monotonic()
        self.counters.loads += 1
        l1 = self._l1
        epoch = l1.epoch if l1 is not None else 0
        loaded = await loader(ids)
        values: dict[str, Any] = {}
        writes = []
        for id in ids:
            value, version = _unwrap(loaded.get(id))
            values[id] = value
            writes.append(self._value_write(id, value, version, start_seq, ttl))
        if not fill or start_seq < 0:
            return values
        if time.monotonic() - started > self.tombstone_ttl / 2:
            self.counters.rejected_fills += len(writes)  # an invalidation may have outlived its tombstone
            return values
        applied = await self._write(prefix, writes)
        if applied is None:
            return values
        for w, ok in zip(writes, applied, strict=True):
            if not ok:
                self.counters.rejected_fills += 1
            elif l1 is not None and w.kind != NEGATIVE:
                l1.put(f"{prefix}:{w.id}", values[w.id], epoch, (w.soft_ms - time.time() * 1000) / 1000)
        return values

    def _revalidate(self, prefix: str, ids: list[str], loader: BulkLoader, start_seq: int,
                    ttl: float | None) -> None:
        """Refresh stale entries in the background, one load per key (stale-while-revalidate)."""
        todo = [id for id in ids if f"{prefix}:{id}" not in self._flights]
        if todo and not self._closed:
            flight = self._fly(prefix, todo, loader, start_seq, ttl, fill=True)
            self._tasks.add(flight.task)
            flight.task.add_done_callback(self._tasks.discard)

    # -- warming -------------------------------------------------------------------------------------
    async def warm_cache(self, prefix: Prefix, loader: WarmLoader, *, ttl: float | None = None,
                         interval: float | None = None) -> int:
        """Load ``loader()``'s mapping (id -> value or :class:`Versioned`) into the cache now and,
        with ``interval`` seconds, again periodically until :meth:`close` (or another
        ``warm_cache`` of the prefix). Returns how many entries the first run wrote."""
        p = check_prefix(prefix)
        written = await self._warm_once(p, loader, ttl)
        previous = self._warmers.pop(p, None)
        if previous is not None:
            previous.cancel()
        if interval:
            if interval <= 0:
                raise ConfigurationError(f"warm_cache interval {interval} is not positive",
                                         fix="pass seconds > 0, or None for a single warm-up")
            self._warmers[p] = self._spawn(self._rewarm(p, loader, ttl, float(interval)), f"isles-cache-warm-{p}")
        return written

    async def _warm_once(self, prefix: str, loader: WarmLoader, ttl: float | None) -> int:
        read = await self._read(prefix, (), with_seq=True)
        if read is None:
            return 0  # the backend is unreachable: do not load the owner for nothing
        self.counters.loads += 1
        items = await loader()
        writes = []
        for id, item in items.items():
            value, version = _unwrap(item)
            writes.append(self._value_write(str(id), value, version, read.seq, ttl))
        written = 0
        for start in range(0, len(writes), 5000):
            chunk = writes[start:start + 5000]
            applied = await self._write(prefix, chunk)
            if applied is None:
                break
            written += sum(applied)
            self.counters.rejected_fills += applied.count(False)
        return written

    async def _rewarm(self, prefix: str, loader: WarmLoader, ttl: float | None, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await self._warm_once(prefix, loader, ttl)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep warming; the next run may succeed
                log.warning("cache %s: warming %s failed: %s", self.name, prefix, exc)

    # -- events ----------------------------------------------------------------------------------------
    def follow(self, prefix: Prefix, source: str, *, mode: str = "invalidate",
               fields: Mapping[str, str] | Sequence[str] | None = None,
               transform: Callable[[dict[str, Any]], Any] | None = None,
               actions: Sequence[str] = ("created", "updated", "deleted"),
               key: Callable[[Any], str | Sequence[str]] | None = None, optional: bool = False) -> list[Any]:
        """Subscriptions that keep ``prefix`` in step with the owner's ``<source>.<action>`` events;
        add them with ``handlers.include(...)``. See :mod:`isles.cache.follow`."""
        from isles.cache.follow import follow
        return follow(self, prefix, source, mode=mode, fields=fields, transform=transform, actions=actions,
                      key=key, optional=optional)

    # -- operations ------------------------------------------------------------------------------------
    async def connect(self) -> CacheHealth:
        """Optional (as in the seed): check the backend now and start the L1 invalidation channel,
        so the first reads can already use L1. Returns :meth:`health_check`'s answer; never raises."""
        if self._l1 is not None and self._listener is None and self.backend.shared and not self._closed:
            listener = self._start_listener()
            deadline = time.monotonic() + 1.0
            while not self._l1.live and time.monotonic() < deadline and not listener.done():
                await asyncio.sleep(0.005)
        return await self.health_check()

    async def health_check(self) -> CacheHealth:
        """Whether the backend answers (and the L1 channel is up), with the reason if not."""
        try:
            latency = await self.backend.ping()
        except CacheUnavailable as exc:
            return CacheHealth(False, self.backend.name, exc.problem)
        detail = "ok"
        if self._l1 is not None and self.backend.shared:
            detail = "ok; L1 invalidation channel " + ("up" if self._l1.live else "down (L1 bypassed)")
        return CacheHealth(True, self.backend.name, detail, round(latency * 1000, 3))

    async def get_stats(self, prefix: Prefix | None = None) -> CacheStats:
        """Keys per prefix, memory, hits, misses, hit rate, loads and rejected fills."""
        c = self.counters
        problem = None
        try:
            per_prefix = await self.backend.count(None if prefix is None else check_prefix(prefix))
            used, human = await self.backend.memory()
        except CacheUnavailable as exc:
            per_prefix, used, human, problem = {}, 0, "unknown", exc.problem
        hits = c.hits + c.l1_hits
        reads = hits + c.misses
        return CacheStats(self.backend.name, sum(per_prefix.values()), per_prefix, used, human, hits, c.misses,
                          hits / reads if reads else 0.0, c.stale_served, c.loads, c.rejected_fills, c.errors,
                          c.l1_hits, self.l1_size, self.l1_flushes, problem)

    # -- L1 channel and outage recovery ------------------------------------------------------------
    def _start_listener(self) -> asyncio.Task[Any]:
        assert self._l1 is not None
        self._listener = self._spawn(self.backend.listen(self._l1.on_message, self._channel_state),
                                     "isles-cache-l1-listener")
        return self._listener

    def _channel_state(self, up: bool, detail: str) -> None:
        l1 = self._l1
        if l1 is None:
            return
        l1.clear()  # messages may have been missed: nothing in L1 can be trusted
        if up != l1.live:
            (log.info if up else log.warning)("cache %s: L1 invalidation channel %s (%s)", self.name,
                                              "up" if up else "down; L1 flushed and bypassed", detail)
        l1.live = up

    def _on_recover(self) -> None:
        if self._l1 is not None:
            self._l1.clear()
        if self._pending_retire and not self._closed:
            prefixes, self._pending_retire = self._pending_retire, set()
            self._spawn(self._retire_all(prefixes), "isles-cache-recover")

    async def _retire_all(self, prefixes: Iterable[str]) -> None:
        """What was invalidated while the backend was unreachable: retire those prefixes."""
        for p in prefixes:
            try:
                await self.backend.retire_prefix(p)
            except CacheUnavailable:
                self._pending_retire.add(p)
            else:
                log.warning("cache %s: retired prefix %r (invalidated while Redis was unavailable)", self.name, p)

    async def close(self) -> None:
        """Stop warming, revalidation, clean-up and the L1 listener; close the connection."""
        self._closed = True
        tasks = list(self._tasks) + list(self._warmers.values())
        await cancel_and_wait(tasks)
        self._tasks.clear()
        self._warmers.clear()
        self._listener = None
        if self._owns_backend:
            await self.backend.close()

    async def __aenter__(self) -> "ReferenceDataCache":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"ReferenceDataCache(name={self.name!r}, backend={self.backend.name!r})"


async def _single(loader: Loader, ids: list[str]) -> dict[str, Any]:
    """A per-key loader as a bulk loader of one id."""
    return {ids[0]: await loader(ids[0])}
