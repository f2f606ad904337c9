"""Prometheus counters: hits, misses, stale served, loads, rejected fills - for many caches at once."""
from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

from isles.cache import ReferenceDataCache


def sample(registry, name, cache_name):
    return registry.get_sample_value(name, {"cache": cache_name, "backend": "memory"})


async def test_counters_are_exported_per_cache_without_duplicate_registration():
    caches = [ReferenceDataCache(name=f"metrics-test-{i}") for i in range(20)]
    cache = caches[0]
    await cache.set("part", "a", 1)
    await cache.get("part", "a")
    await cache.get("part", "b")
    await cache.get_or_load("part", "c", _load)
    await cache.set("part", "v", 1, version=5)
    await cache.set("part", "v", 0, version=4)
    assert sample(REGISTRY, "isles_cache_hits_total", "metrics-test-0") == 1
    assert sample(REGISTRY, "isles_cache_misses_total", "metrics-test-0") == 2
    assert sample(REGISTRY, "isles_cache_loads_total", "metrics-test-0") == 1
    assert sample(REGISTRY, "isles_cache_rejected_fills_total", "metrics-test-0") == 1
    assert sample(REGISTRY, "isles_cache_stale_served_total", "metrics-test-0") == 0
    assert sample(REGISTRY, "isles_cache_hits_total", "metrics-test-19") == 0
    assert b'isles_cache_hits_total{backend="memory",cache="metrics-test-1"}' in generate_latest(REGISTRY)
    for c in caches:
        await c.close()


async def test_a_cache_can_have_its_own_registry():
    registry = CollectorRegistry()
    cache = ReferenceDataCache(name="isolated", registry=registry)
    await cache.get("part", "x")
    assert sample(registry, "isles_cache_misses_total", "isolated") == 1
    assert sample(REGISTRY, "isles_cache_misses_total", "isolated") is None
    await cache.close()


async def _load(id):
    return id


async def test_l1_gauges_are_exported():
    registry = CollectorRegistry()
    cache = ReferenceDataCache(name="with-l1", registry=registry, l1_ttl=10)
    await cache.connect()
    await cache.set("part", "a", 1)
    await cache.get("part", "a")
    assert sample(registry, "isles_cache_l1_entries", "with-l1") == 1
    assert sample(registry, "isles_cache_l1_flushes_total", "with-l1") >= 1
    await cache.close()
