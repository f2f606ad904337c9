"""The in-process level 1: decoded objects, invalidated across processes, flushed when deaf."""
from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from isles.cache import ReferenceDataCache

from .conftest import purge

PART = "part"


async def until(predicate, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return True
        await asyncio.sleep(0.01)
    return False


async def live(cache):
    await cache.get(PART, "__warmup__")
    assert await until(lambda: cache._l1.live)


async def test_l1_answers_repeated_reads(make_cache):
    cache = make_cache(l1_ttl=30)
    await live(cache)
    await cache.set(PART, "p", {"n": 1})
    first = await cache.get(PART, "p")
    second = await cache.get(PART, "p")
    assert first == second == {"n": 1}
    assert second is await cache.get(PART, "p")  # the decoded object itself, no decode per read
    assert cache.counters.l1_hits == 2
    assert await cache.get_many(PART, ["p", "q"]) == {"p": {"n": 1}}
    assert cache.counters.l1_hits == 3


async def test_l1_follows_invalidations_from_other_processes(make_cache):
    reader, owner_side = make_cache(l1_ttl=30), make_cache()
    await live(reader)
    await owner_side.set(PART, "p", {"v": 1}, version=1)
    assert await reader.get(PART, "p") == {"v": 1}
    assert reader.l1_size == 1
    await owner_side.invalidate(PART, "p", version=2)
    assert await until(lambda: reader.l1_size == 0)
    assert await reader.get(PART, "p") is None
    await owner_side.set(PART, "p", {"v": 2}, version=2)
    assert await reader.get(PART, "p") == {"v": 2}
    await owner_side.set(PART, "p", {"v": 3}, version=3)  # a refresh replaces a live value: L1 drops it
    assert await until(lambda: reader.l1_size == 0)
    assert await reader.get(PART, "p") == {"v": 3}
    await owner_side.invalidate_all(PART)
    assert await until(lambda: reader.l1_size == 0)
    assert await reader.get(PART, "p") is None


async def test_l1_entries_always_expire(make_cache):
    cache = make_cache(l1_ttl=0.1)
    await live(cache)
    await cache.set(PART, "p", 1)
    await cache.get(PART, "p")
    assert cache.counters.l1_hits == 0 and cache.l1_size == 1
    await cache.get(PART, "p")
    assert cache.counters.l1_hits == 1
    await asyncio.sleep(0.15)
    await cache.get(PART, "p")
    assert cache.counters.l1_hits == 1  # expired in L1: read from the backend again
    value, deadline = cache._l1.data["part:p"]
    assert deadline - time.monotonic() <= 0.1


async def test_l1_never_outlives_the_backend_ttl(make_cache):
    cache = make_cache(l1_ttl=30, default_ttl=0.2, jitter=0)
    await live(cache)
    await cache.set(PART, "p", 1)
    await cache.get(PART, "p")
    await asyncio.sleep(0.25)
    assert await cache.get(PART, "p") is None


async def test_l1_bounded_size(make_cache):
    cache = make_cache(l1_ttl=30, l1_max_entries=10)
    await live(cache)
    await cache.set_many(PART, {str(i): i for i in range(30)})
    await cache.get_many(PART, [str(i) for i in range(30)])
    assert cache.l1_size == 10


@pytest.mark.redis
async def test_l1_is_flushed_and_bypassed_when_the_channel_drops(redis_url, namespace, caplog):
    cache = ReferenceDataCache(redis_url, namespace=namespace, l1_ttl=30)
    try:
        await _channel_drop(cache, redis_url, caplog)
    finally:
        await cache.close()
        await purge(redis_url, namespace)


async def _channel_drop(cache, redis_url, caplog):
    await live(cache)
    await cache.set(PART, "p", 1)
    await cache.get(PART, "p")
    assert cache.l1_size == 1
    admin = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        name = f"isles-cache:{cache.keys.namespace}"
        ours = [c for c in await admin.client_list(_type="pubsub") if c.get("name") == name]
        assert len(ours) == 1
        await admin.client_kill_filter(_id=ours[0]["id"])
    finally:
        await admin.aclose()
    assert await until(lambda: cache._l1.flushes >= 2)  # one flush on subscribe, one on the drop
    assert await until(lambda: "channel down; L1 flushed and bypassed" in caplog.text)
    # bypassed while deaf, then trusted again once re-subscribed (which flushes once more)
    assert await until(lambda: cache._l1.live)
    assert cache.l1_size == 0
    assert (await cache.get_stats()).l1_flushes >= 3
    assert await cache.get(PART, "p") == 1
    health = await cache.health_check()
    assert health.ok and "channel up" in health.detail


@pytest.mark.redis
async def test_l1_follows_an_invalidation_from_another_os_process(redis_url, namespace):
    import sys
    cache = ReferenceDataCache(redis_url, namespace=namespace, l1_ttl=30)
    try:
        assert (await cache.connect()).ok
        assert await until(lambda: cache._l1.live)
        await cache.set(PART, "p", {"v": 1}, version=1)
        assert await cache.get(PART, "p") == {"v": 1} and cache.l1_size == 1
        script = ("import asyncio\nfrom isles.cache import ReferenceDataCache\n"
                  "async def main():\n"
                  f"    async with ReferenceDataCache({redis_url!r}, namespace={namespace!r}) as other:\n"
                  "        assert await other.invalidate('part', 'p', version=2)\n"
                  "asyncio.run(main())\n")
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", script)
        assert await asyncio.wait_for(process.wait(), 60) == 0
        assert await until(lambda: cache.l1_size == 0)
        assert await cache.get(PART, "p") is None
    finally:
        await cache.close()
        await purge(redis_url, namespace)
