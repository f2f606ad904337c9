"""Redis down: reads fall through to the loader with a warning, writes never raise, health says why."""
from __future__ import annotations

import asyncio
import logging
import uuid

import pytest
from sqlalchemy import MetaData

from isles import Handlers, Service
from isles.cache import ReferenceDataCache

from .conftest import purge

PART = "part"


@pytest.fixture
async def down(closed_port):
    cache = ReferenceDataCache(f"redis://cacheuser:s3cret@127.0.0.1:{closed_port}/0", namespace="isles-test:down",
                               socket_timeout=0.5)
    yield cache
    await cache.close()


async def test_reads_fall_through_to_the_loader_with_a_warning(down, caplog):
    caplog.set_level(logging.WARNING, logger="isles.cache")
    assert await down.get(PART, "p") is None
    assert await down.get_many(PART, ["p", "q"]) == {}
    calls = 0

    async def load(id):
        nonlocal calls
        calls += 1
        return {"id": id}

    assert await down.get_or_load(PART, "p", load) == {"id": "p"}
    assert await down.get_or_load(PART, "p", load) == {"id": "p"}  # not cached: loaded again
    assert calls == 2
    assert await down.get_many_or_load(PART, ["a", "b"], lambda ids: asyncio.sleep(0, {i: i for i in ids})) == \
        {"a": "a", "b": "b"}
    assert "unavailable" in caplog.text and "reads fall through to the loader" in caplog.text
    assert "s3cret" not in caplog.text
    assert caplog.text.count("is unavailable") == 1  # one warning per outage, not one per read


async def test_writes_and_invalidations_never_raise(down):
    assert await down.set(PART, "p", 1) is False
    assert await down.set_many(PART, {"a": 1}) == 0
    assert await down.invalidate(PART, "p", version=3) is False
    await down.invalidate_all(PART)
    assert await down.invalidate_by_pattern("part:*") == 0
    calls = 0

    async def warm():
        nonlocal calls
        calls += 1
        return {"a": 1}

    assert await down.warm_cache(PART, warm) == 0 and calls == 0
    for sub in down.follow(PART, "mes.material.part"):
        from isles import Envelope
        await sub.fn(Envelope(id="e1", source="/mes/material", type=sub.type, data=b"{}", partitionkey="p",
                              entityversion=2), None)


async def test_health_check_and_stats_say_why(down):
    health = await down.health_check()
    assert not health and health.ok is False
    assert "unavailable" in health.detail and "ConnectionError" in health.detail
    assert "s3cret" not in health.detail and "***" in health.detail
    stats = await down.get_stats()
    assert stats.problem and stats.total_keys == 0


async def test_the_owners_events_keep_flowing(env, down):
    from .test_follow import create_tool, started, update_tool  # the two-service system
    handlers = Handlers()
    handlers.include(down.follow("tool", source="cachetest.tooling.tool"))
    system = await started(env, Service("dispatch", metadata=MetaData(), handlers=handlers))
    try:
        tool = await create_tool("press")
        await update_tool(tool.id, location="bay 2")
        await system.drain()
        status = {s.service: s for s in await system.status()}
        assert status["dispatch"].dead_letters == 0 and status["dispatch"].inbox == 2
        assert status["tooling"].outbox_backlog == 0
    finally:
        await system.stop()


@pytest.mark.redis
async def test_what_was_invalidated_during_an_outage_is_retired_on_recovery(redis_proxy, redis_url, caplog):
    namespace = f"isles-test:{uuid.uuid4().hex[:12]}"
    cache = ReferenceDataCache(f"redis://127.0.0.1:{redis_proxy.port}/0", namespace=namespace,
                               retry_after=0.05, socket_timeout=0.5)
    try:
        await cache.set(PART, "p", "old")
        assert await cache.get(PART, "p") == "old"
        await redis_proxy.stop()
        assert await cache.invalidate(PART, "p") is False  # lost: Redis still holds "old"
        assert await cache.get(PART, "p") is None          # reads fall through meanwhile
        await redis_proxy.start()                            # same port: Redis is back
        await asyncio.sleep(0.06)
        for _ in range(100):
            if await cache.get(PART, "p") is None and not cache._pending_retire and not cache._tasks:
                break
            await asyncio.sleep(0.02)
        assert await cache.get(PART, "p") is None  # the prefix was retired, "old" is not served
        assert (await cache.health_check()).ok
        assert "retired prefix 'part'" in caplog.text
    finally:
        await cache.close()
        await purge(redis_url, namespace)
