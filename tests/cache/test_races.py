"""Race-free invalidation: forced interleavings of a slow load and an invalidation.

Plain cache-aside loses here: the loader reads the owner, the owner changes and the follower
invalidates, then the loader writes what it read - and the cache serves the old value until its
TTL. Each test holds the loader between its read and its write while the invalidation happens.
"""
from __future__ import annotations

import asyncio
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from isles.cache import MemoryBackend, Versioned, Write
from isles.cache.base import NEGATIVE, NO_START, TOMBSTONE, VALUE, VALUE_SWR
from isles.cache.keys import KeySpace

PART = "part"
OLD, NEW = {"partNumber": "P-12345"}, {"partNumber": "P-99999"}


class HeldLoader:
    """A loader that has read the owner's old state and waits to be released before returning it."""

    def __init__(self, result):
        self.result = result
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.calls = 0

    async def __call__(self, id):
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return self.result


async def _invalidate_key(cache, version):
    await cache.invalidate(PART, "p", version=version)


async def _invalidate_prefix(cache, version):
    await cache.invalidate_all(PART)


async def _refresh(cache, version):
    await cache.set(PART, "p", NEW, version=version)


@pytest.mark.parametrize("same_process", [True, False], ids=["same-process", "other-process"])
@pytest.mark.parametrize("loaded,invalidation,version", [
    (OLD, _invalidate_key, None),                   # unversioned everything
    (Versioned(OLD, 1), _invalidate_key, 2),        # the event says version 2, the load read version 1
    (OLD, _invalidate_key, 2),                      # loader without versions, versioned event
    (Versioned(OLD, 1), _invalidate_prefix, None),  # invalidate_all during the load
    (OLD, _invalidate_prefix, None),
    (Versioned(OLD, 1), _refresh, 2),               # a refresh-mode follower wrote version 2
])
async def test_a_load_that_began_before_an_invalidation_is_not_cached(make_cache, same_process, loaded,
                                                                       invalidation, version):
    reader = make_cache()
    follower = reader if same_process else make_cache()
    loader = HeldLoader(loaded)
    first = asyncio.create_task(reader.get_or_load(PART, "p", loader))
    await loader.started.wait()          # 1. the loader has read the owner (old state)
    await invalidation(follower, version)  # 2. the owner changed; the follower invalidated
    loader.release.set()                 # 3. the loader finishes and tries to fill
    assert await first == OLD            # its caller overlapped the change: it may see the old value
    for _ in range(3):                   # ... but nobody reading after the invalidation does
        cached = await reader.get(PART, "p")
        assert cached in (None, NEW)
        assert await follower.get(PART, "p") == cached
    assert await reader.get_or_load(PART, "p", lambda id: asyncio.sleep(0, NEW)) == NEW
    assert reader.counters.rejected_fills == 1


async def test_a_load_of_the_invalidated_version_or_newer_is_cached(make_cache):
    cache = make_cache()
    loader = HeldLoader(Versioned(NEW, 2))
    first = asyncio.create_task(cache.get_or_load(PART, "p", loader))
    await loader.started.wait()
    await cache.invalidate(PART, "p", version=2)
    loader.release.set()
    assert await first == NEW
    assert await cache.get(PART, "p") == NEW  # version 2 is what the tombstone asked for: kept
    assert cache.counters.rejected_fills == 0


@pytest.mark.parametrize("same_process", [True, False], ids=["same-process", "other-process"])
async def test_a_reader_after_an_invalidation_does_not_join_an_older_load(make_cache, same_process):
    reader = make_cache()
    follower = reader if same_process else make_cache()
    slow = HeldLoader(OLD)
    first = asyncio.create_task(reader.get_or_load(PART, "p", slow))
    await slow.started.wait()
    await follower.invalidate(PART, "p")
    fresh_calls = 0

    async def fresh(id):
        nonlocal fresh_calls
        fresh_calls += 1
        return NEW

    second = await reader.get_or_load(PART, "p", fresh)  # began after the invalidation
    assert second == NEW and fresh_calls == 1
    slow.release.set()
    assert await first == OLD
    assert await reader.get(PART, "p") == NEW


async def test_l1_does_not_keep_a_value_read_before_an_invalidation(make_cache):
    cache = make_cache(l1_ttl=30)
    await cache.set(PART, "p", OLD)
    for _ in range(100):  # Redis: wait for the invalidation channel (L1 is bypassed until then)
        await cache.get(PART, "p")
        if cache._l1.live:
            break
        await asyncio.sleep(0.01)
    cache._l1.clear()
    original = cache.backend.read
    gate, reached = asyncio.Event(), asyncio.Event()

    async def held_read(*args, **kwargs):
        result = await original(*args, **kwargs)
        reached.set()
        await gate.wait()
        return result

    cache.backend.read = held_read
    reading = asyncio.create_task(cache.get(PART, "p"))
    await reached.wait()                     # the read has fetched the old value ...
    cache.backend.read = original
    await cache.invalidate(PART, "p")        # ... the invalidation lands ...
    gate.set()                               # ... then the read tries to put it into L1
    assert await reading == OLD
    assert cache.l1_size == 0
    assert await cache.get(PART, "p") is None


async def test_out_of_order_events_never_regress(make_cache):
    cache = make_cache()
    for version in (3, 1, 5, 4, 2):
        await cache.set(PART, "p", {"v": version}, version=version)
    assert await cache.get(PART, "p") == {"v": 5}
    await cache.invalidate(PART, "p", version=4)  # late event
    assert await cache.get(PART, "p") == {"v": 5}


# -- the Lua script and the Python rule are the same rule ---------------------------------------------
_write = st.builds(lambda kind, version, start, id: Write(id, kind, version, start, 10**13, 60_000,
                                                          b'"x%d"' % version),
                   st.sampled_from([VALUE, VALUE_SWR, NEGATIVE, TOMBSTONE]), st.integers(-1, 4),
                   st.one_of(st.just(NO_START), st.integers(0, 12)), st.sampled_from(["a", "b"]))
_ops = st.lists(st.one_of(
    st.tuples(st.just("write"), st.lists(_write, min_size=1, max_size=4)),  # one call: a batch
    st.tuples(st.just("retire")),
), min_size=1, max_size=25)


@pytest.mark.redis
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_ops)
def test_lua_write_rule_matches_python(redis_url, ops):
    from isles.cache.redis import RedisBackend

    async def run():
        ns = f"isles-test:{uuid.uuid4().hex[:12]}"
        memory, redis = MemoryBackend(), RedisBackend(redis_url, KeySpace(ns))
        try:
            for op in ops:
                if op[0] == "retire":
                    await memory.retire_prefix("part")
                    await redis.retire_prefix("part")
                    continue
                assert await memory.write("part", op[1]) == await redis.write("part", op[1]), op
                m = (await memory.read("part", ["a", "b"], with_seq=True))
                r = (await redis.read("part", ["a", "b"], with_seq=True))
                assert m.seq == r.seq
                assert [None if e is None else (e[0], int(e[1]), int(e[2]), bytes(e[4])) for e in m.entries] == \
                       [None if e is None else (e[0], int(e[1]), int(e[2]), bytes(e[4])) for e in r.entries]
        finally:
            keys = [k async for k in redis.client.scan_iter(match=f"{ns}:*")]
            if keys:
                await redis.client.unlink(*keys)
            await redis.close()

    asyncio.run(run())
