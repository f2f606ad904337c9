"""Counters of one cache, and their Prometheus exposition.

The hit path must stay at well over a million reads a second, so counting is a plain integer
increment; Prometheus reads the integers when it scrapes, through a custom collector. All live
caches are exported by one collector in the default registry, labelled by cache name, so
creating many caches (tests, several services in one process) never registers a metric twice.
A cache can also be given its own ``CollectorRegistry``.

This module knows a cache only as :class:`Counted` (what the collector reads), so it does not
import :mod:`isles.cache.cache`, which imports it.
"""
from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, field
from typing import Iterator, Protocol

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector


class Counters:
    """Plain integer counters, incremented on the hot path. ``hits`` counts backend hits; an L1
    hit only increments ``l1_hits`` (one increment on the fastest path), so all hits are
    ``hits + l1_hits`` (what ``get_stats`` and the ``isles_cache_hits`` metric report)."""

    __slots__ = ("hits", "misses", "stale_served", "loads", "rejected_fills", "errors", "l1_hits")

    def __init__(self) -> None:
        self.hits = self.misses = self.stale_served = self.loads = 0
        self.rejected_fills = self.errors = self.l1_hits = 0


class _Named(Protocol):
    name: str


class Counted(Protocol):
    """What the collector reads of a cache (``ReferenceDataCache`` is one)."""

    name: str
    counters: Counters

    @property
    def backend(self) -> _Named: ...

    @property
    def l1_size(self) -> int: ...

    @property
    def l1_flushes(self) -> int: ...


@dataclass(frozen=True)
class CacheStats:
    """What ``get_stats`` reports (the seed's ``totalKeys`` and ``memoryUsage`` plus counters)."""

    backend: str
    total_keys: int
    keys_per_prefix: dict[str, int]
    memory_bytes: int
    memory_usage: str
    hits: int
    misses: int
    hit_rate: float
    stale_served: int
    loads: int
    rejected_fills: int
    errors: int
    l1_hits: int = 0
    l1_size: int = 0
    l1_flushes: int = 0
    problem: str | None = field(default=None)


_COUNTERS = (
    ("hits", "isles_cache_hits", "Reads answered from the cache (L1 or backend, negative entries included)."),
    ("misses", "isles_cache_misses", "Reads the cache could not answer."),
    ("stale_served", "isles_cache_stale_served", "Stale values served while revalidating."),
    ("loads", "isles_cache_loads", "Loader calls (read-through fills)."),
    ("rejected_fills", "isles_cache_rejected_fills", "Fills refused because a newer write or invalidation won."),
    ("errors", "isles_cache_errors", "Operations that found the backend unavailable."),
    ("l1_hits", "isles_cache_l1_hits", "Reads answered by the in-process level-1 cache."),
)


class CacheCollector(Collector):
    """Exports the counters of a set of caches, labelled ``cache`` and ``backend``."""

    def __init__(self) -> None:
        self._caches: "weakref.WeakSet[Counted]" = weakref.WeakSet()

    def add(self, cache: Counted) -> None:
        self._caches.add(cache)

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        caches = list(self._caches)
        for attr, name, doc in _COUNTERS:
            family = CounterMetricFamily(name, doc, labels=["cache", "backend"])
            for cache in caches:
                value = getattr(cache.counters, attr)
                if attr == "hits":
                    value += cache.counters.l1_hits
                family.add_metric([cache.name, cache.backend.name], value)
            yield family
        size = GaugeMetricFamily("isles_cache_l1_entries", "Entries held by the level-1 cache.",
                                 labels=["cache", "backend"])
        flushes = CounterMetricFamily("isles_cache_l1_flushes", "Times L1 was emptied because its "
                                      "invalidation channel (re)connected or dropped.", labels=["cache", "backend"])
        for cache in caches:
            size.add_metric([cache.name, cache.backend.name], cache.l1_size)
            flushes.add_metric([cache.name, cache.backend.name], cache.l1_flushes)
        yield size
        yield flushes


_default: CacheCollector | None = None
_lock = threading.Lock()


def register(cache: Counted, registry: CollectorRegistry | None) -> None:
    """Export ``cache`` in ``registry`` (its own) or, by default, in the process-wide registry."""
    global _default
    if registry is not None:
        collector = CacheCollector()
        collector.add(cache)
        registry.register(collector)
        return
    with _lock:
        if _default is None:
            _default = CacheCollector()
            REGISTRY.register(_default)
    _default.add(cache)
