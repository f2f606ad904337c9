"""Seed 001's API on both backends."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from isles.cache import ReferenceDataCache, Versioned
from isles.errors import ConfigurationError

PART = "part"
STRUT = {"partNumber": "P-12345", "partName": "Landing Gear Strut", "revision": "C", "unitOfMeasure": "EA"}


async def test_set_get_round_trip(cache):
    assert await cache.get(PART, "P-12345") is None
    assert await cache.set(PART, "P-12345", STRUT, ttl=300)
    assert await cache.get(PART, "P-12345") == STRUT
    assert await cache.get("user", "P-12345") is None


async def test_returned_values_are_copies(cache):
    await cache.set(PART, "p", {"tags": ["a"]})
    first = await cache.get(PART, "p")
    first["tags"].append("mutated")
    assert await cache.get(PART, "p") == {"tags": ["a"]}


async def test_get_many_returns_the_present_ones(cache):
    written = await cache.set_many(PART, {"P-1": {"n": 1}, "P-2": {"n": 2}, "P-3": Versioned({"n": 3}, 4)})
    assert written == 3
    found = await cache.get_many(PART, ["P-1", "P-2", "P-3", "P-404"])
    assert found == {"P-1": {"n": 1}, "P-2": {"n": 2}, "P-3": {"n": 3}}
    assert await cache.get_many(PART, []) == {}


async def test_values_expire(make_cache):
    cache = make_cache(default_ttl=0.2, jitter=0)
    await cache.set(PART, "p", 1)
    assert await cache.get(PART, "p") == 1
    await asyncio.sleep(0.3)
    assert await cache.get(PART, "p") is None
    await cache.set(PART, "q", 2, ttl=5)
    await asyncio.sleep(0.25)
    assert await cache.get(PART, "q") == 2


async def test_invalidate(cache):
    await cache.set(PART, "p", STRUT)
    await cache.invalidate(PART, "p")
    assert await cache.get(PART, "p") is None
    assert await cache.get_many(PART, ["p"]) == {}


async def test_invalidate_all_retires_only_that_prefix(cache):
    await cache.set_many(PART, {str(i): i for i in range(50)})
    await cache.set("site", "s1", "Plant 1")
    await cache.invalidate_all(PART)
    assert await cache.get_many(PART, [str(i) for i in range(50)]) == {}
    assert await cache.get("site", "s1") == "Plant 1"
    await cache.set(PART, "new", "after")  # written after the generation bump: visible
    assert await cache.get(PART, "new") == "after"
    stats = await cache.get_stats(PART)
    assert stats.keys_per_prefix == {"part": 1}


async def test_invalidate_all_cleans_up_in_background(cache, backend_kind, redis_url=None):
    await cache.set_many(PART, {str(i): i for i in range(20)})
    await cache.invalidate_all(PART)
    for _ in range(100):
        if not cache._tasks:
            break
        await asyncio.sleep(0.01)
    assert await cache.backend.cleanup_prefix("part") == 0  # the background clean-up already removed them


async def test_invalidate_by_pattern(cache):
    await cache.set("work_order", "WO-1:P-1", "a")
    await cache.set("work_order", "WO-2:P-1", "b")
    await cache.set("work_order", "WO-3:P-2", "c")
    assert await cache.invalidate_by_pattern("work_order:*:P-1") == 2
    assert await cache.get_many("work_order", ["WO-1:P-1", "WO-2:P-1", "WO-3:P-2"]) == {"WO-3:P-2": "c"}
    assert await cache.invalidate_by_pattern("work_order:*") == 1
    assert await cache.get("work_order", "WO-3:P-2") is None


async def test_versioned_set_never_goes_backwards(cache):
    assert await cache.set(PART, "p", {"v": 3}, version=3)
    assert not await cache.set(PART, "p", {"v": 2}, version=2)
    assert await cache.get(PART, "p") == {"v": 3}
    assert await cache.set(PART, "p", {"v": 4}, version=4)
    assert await cache.get(PART, "p") == {"v": 4}
    assert (await cache.get_stats()).rejected_fills == 1


async def test_versioned_invalidation_ignores_older_events(cache):
    await cache.set(PART, "p", {"v": 5}, version=5)
    assert not await cache.invalidate(PART, "p", version=4)  # a late event about an older version
    assert await cache.get(PART, "p") == {"v": 5}
    assert not await cache.invalidate(PART, "p", version=5)  # the cache already holds version 5
    assert await cache.invalidate(PART, "p", version=6)
    assert await cache.get(PART, "p") is None


async def test_warm_cache_once_and_periodically(cache):
    calls = 0

    async def load_parts():
        nonlocal calls
        calls += 1
        return {f"P-{i}": {"n": i, "run": calls} for i in range(10)}

    assert await cache.warm_cache(PART, load_parts, ttl=600) == 10
    assert await cache.get(PART, "P-3") == {"n": 3, "run": 1}
    await cache.warm_cache(PART, load_parts, ttl=600, interval=0.05)
    for _ in range(100):
        if calls >= 4:
            break
        await asyncio.sleep(0.02)
    assert calls >= 4
    assert (await cache.get(PART, "P-3"))["run"] >= 3
    await cache.close()
    after = calls
    await asyncio.sleep(0.15)
    assert calls == after  # close() stopped the re-warming


async def test_health_and_stats(cache, backend_kind):
    health = await cache.health_check()
    assert health and health.ok and health.backend == backend_kind
    await cache.set_many(PART, {"a": 1, "b": 2})
    await cache.set("tool", "t", 3)
    await cache.get(PART, "a")
    await cache.get(PART, "zzz")
    stats = await cache.get_stats()
    assert stats.backend == backend_kind
    assert stats.keys_per_prefix == {"part": 2, "tool": 1} and stats.total_keys == 3
    assert stats.hits == 1 and stats.misses == 1 and stats.hit_rate == 0.5
    assert stats.memory_bytes > 0 and stats.memory_usage


@pytest.mark.parametrize("serializer", ["orjson", "msgpack"])
async def test_serializers(make_cache, serializer):
    cache = make_cache(serializer=serializer)
    value = {"partNumber": "P-1:A", "qty": 0, "weights": [1.5, 2], "active": True, "none": None, "text": "a\x00b\nc"}
    await cache.set(PART, "p", value)
    assert await cache.get(PART, "p") == value


async def test_unserializable_values_are_refused_not_pickled(cache):
    with pytest.raises(TypeError):
        await cache.set(PART, "p", object())


def test_bad_settings_are_clear_errors():
    with pytest.raises(ConfigurationError, match="neither redis"):
        ReferenceDataCache("http://user:secret@host")
    with pytest.raises(ConfigurationError) as info:
        ReferenceDataCache("mysql://user:secret@host/db")
    assert "secret" not in str(info.value)
    with pytest.raises(ConfigurationError, match="serializer"):
        ReferenceDataCache(serializer="pickle")
    with pytest.raises(ConfigurationError, match="prefix"):
        asyncio.run(ReferenceDataCache().set("bad:prefix", "x", 1))


def test_url_from_environment(redis_url):
    assert ReferenceDataCache(env={}).backend.name == "memory"
    assert ReferenceDataCache(env={"REDIS_URL": redis_url}).backend.name == "redis"
    assert ReferenceDataCache("memory://", env={"REDIS_URL": redis_url}).backend.name == "memory"


async def test_datetimes_need_an_explicit_shape(cache):
    """orjson writes datetimes as ISO strings: what comes back is what JSON can carry."""
    when = dt.datetime(2025, 10, 18, 12, 0, tzinfo=dt.timezone.utc)
    await cache.set(PART, "p", {"at": when})
    assert await cache.get(PART, "p") == {"at": "2025-10-18T12:00:00+00:00"}


async def test_integer_ids_are_their_text(cache):
    await cache.set(PART, 42, {"n": 42})
    assert await cache.get(PART, 42) == {"n": 42}
    assert await cache.get(PART, "42") == {"n": 42}
    assert await cache.get_many(PART, [42, 43]) == {42: {"n": 42}}
