"""Read-through: single-flight, bulk loads of the misses only, negative caching, stale-while-revalidate."""
from __future__ import annotations

import asyncio

import pytest

from isles.cache import Versioned

PART = "part"


async def test_get_or_load_loads_once_then_hits(cache):
    calls = []

    async def load(id):
        calls.append(id)
        return {"id": id}

    assert await cache.get_or_load(PART, "p", load) == {"id": "p"}
    assert await cache.get_or_load(PART, "p", load) == {"id": "p"}
    assert await cache.get(PART, "p") == {"id": "p"}
    assert calls == ["p"]
    stats = await cache.get_stats()
    assert (stats.loads, stats.misses, stats.hits) == (1, 1, 2)


async def test_concurrent_misses_share_one_load(cache):
    calls = 0
    gate = asyncio.Event()

    async def load(id):
        nonlocal calls
        calls += 1
        await gate.wait()
        return {"id": id}

    readers = [asyncio.create_task(cache.get_or_load(PART, "hot", load)) for _ in range(50)]
    for _ in range(500):  # every reader has seen the miss (and joined the load) before it completes
        if cache.counters.misses == 50:
            break
        await asyncio.sleep(0.01)
    gate.set()
    assert all(r == {"id": "hot"} for r in await asyncio.gather(*readers))
    assert calls == 1


async def test_a_failing_load_reaches_every_waiter_and_is_not_cached(cache):
    gate = asyncio.Event()

    async def broken(id):
        await gate.wait()
        raise LookupError("owner unavailable")

    readers = [asyncio.create_task(cache.get_or_load(PART, "p", broken)) for _ in range(5)]
    await asyncio.sleep(0.02)
    gate.set()
    results = await asyncio.gather(*readers, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert await cache.get_or_load(PART, "p", lambda id: asyncio.sleep(0, "ok")) == "ok"


async def test_a_cancelled_reader_does_not_cancel_the_shared_load(cache):
    gate = asyncio.Event()

    async def load(id):
        await gate.wait()
        return "value"

    first = asyncio.create_task(cache.get_or_load(PART, "p", load))
    second = asyncio.create_task(cache.get_or_load(PART, "p", load))
    await asyncio.sleep(0.02)
    first.cancel()
    gate.set()
    assert await second == "value"
    assert await cache.get(PART, "p") == "value"


async def test_get_many_or_load_loads_only_the_misses_in_one_call(cache):
    await cache.set_many(PART, {"a": "A", "b": "B"})
    calls = []

    async def load_many(ids):
        calls.append(sorted(ids))
        return {id: Versioned(id.upper(), 1) for id in ids if id != "gone"}

    found = await cache.get_many_or_load(PART, ["a", "b", "c", "d", "gone", "c"], load_many)
    assert found == {"a": "A", "b": "B", "c": "C", "d": "D"}
    assert list(found) == ["a", "b", "c", "d"]
    assert calls == [["c", "d", "gone"]]
    again = await cache.get_many_or_load(PART, ["a", "c", "d", "gone"], load_many)
    assert again == {"a": "A", "c": "C", "d": "D"}
    assert len(calls) == 1  # "gone" is remembered as absent (negative caching)


async def test_single_and_bulk_readers_share_loads(cache):
    gate = asyncio.Event()
    calls = []

    async def load_many(ids):
        calls.append(sorted(ids))
        await gate.wait()
        return {id: id.upper() for id in ids}

    async def load_one(id):
        calls.append([id])
        return id.upper()

    async def until(predicate):
        for _ in range(500):
            if predicate():
                return
            await asyncio.sleep(0.01)

    bulk = asyncio.create_task(cache.get_many_or_load(PART, ["x", "y"], load_many))
    await until(lambda: calls)
    single = asyncio.create_task(cache.get_or_load(PART, "x", load_one))
    await until(lambda: cache.counters.misses == 3)
    gate.set()
    assert await bulk == {"x": "X", "y": "Y"} and await single == "X"
    assert calls == [["x", "y"]]


async def test_negative_entries_expire_after_negative_ttl(make_cache):
    cache = make_cache(negative_ttl=0.2)
    calls = 0

    async def missing(id):
        nonlocal calls
        calls += 1
        return None

    assert await cache.get_or_load(PART, "nope", missing) is None
    assert await cache.get_or_load(PART, "nope", missing) is None
    assert calls == 1
    await asyncio.sleep(0.3)
    assert await cache.get_or_load(PART, "nope", missing) is None
    assert calls == 2


async def test_stale_while_revalidate_serves_stale_and_refreshes_once(make_cache):
    cache = make_cache(default_ttl=0.2, stale_ttl=30, jitter=0)
    version = 1
    calls = 0
    gate = asyncio.Event()

    async def load(id):
        nonlocal calls
        calls += 1
        if calls > 1:
            await gate.wait()
        return {"v": version}

    assert await cache.get_or_load(PART, "p", load) == {"v": 1}
    await asyncio.sleep(0.3)  # past its TTL, inside the stale window
    version = 2
    assert await cache.get(PART, "p") is None  # plain get never serves stale
    served = [await cache.get_or_load(PART, "p", load) for _ in range(5)]
    assert served == [{"v": 1}] * 5  # served at once, not waiting for the owner
    await asyncio.sleep(0.01)
    assert calls == 2  # one background refresh for all of them
    gate.set()
    for _ in range(100):
        if await cache.get(PART, "p") == {"v": 2}:
            break
        await asyncio.sleep(0.01)
    assert await cache.get_or_load(PART, "p", load) == {"v": 2}
    assert (await cache.get_stats()).stale_served == 5


async def test_invalidated_values_are_never_served_stale(make_cache):
    cache = make_cache(default_ttl=0.1, stale_ttl=30, jitter=0)
    await cache.get_or_load(PART, "p", lambda id: asyncio.sleep(0, "old"))
    await cache.invalidate(PART, "p")
    await asyncio.sleep(0.15)
    assert await cache.get_or_load(PART, "p", lambda id: asyncio.sleep(0, "new")) == "new"


def test_ttl_jitter_spreads_expiry_below_the_ttl():
    from isles.cache import ReferenceDataCache
    cache = ReferenceDataCache(default_ttl=100, jitter=0.2)
    ttls = {cache._ttl_ms(None) for _ in range(200)}
    assert len(ttls) > 50
    assert all(80_000 <= t <= 100_000 for t in ttls)
    assert ReferenceDataCache(default_ttl=100, jitter=0)._ttl_ms(None) == 100_000


@pytest.mark.parametrize("value", [0, "", [], False])
async def test_falsy_values_are_values(cache, value):
    calls = 0

    async def load(id):
        nonlocal calls
        calls += 1
        return value

    assert await cache.get_or_load(PART, "p", load) == value
    assert await cache.get_or_load(PART, "p", load) == value
    assert calls == 1
