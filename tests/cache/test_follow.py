"""Event wiring: a two-service isles System where one service's cache follows the other's events."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import MetaData, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from isles import Entity, Envelope, Event, Handlers, Service, System
from isles.cache import ReferenceDataCache, Versioned
from isles.errors import ConfigurationError

PREFIX = "tool"


class StockBase(DeclarativeBase):
    pass


class Tool(Entity, StockBase):
    __tablename__ = "tools"
    name: Mapped[str] = mapped_column(String(100))
    location: Mapped[str] = mapped_column(String(100), default="crib")


class ToolCreated(Event, type="cachetest.tooling.tool.created", key="tool_id"):
    tool_id: str
    tool_name: str
    location: str


class ToolUpdated(Event, type="cachetest.tooling.tool.updated", key="tool_id"):
    tool_id: str
    tool_name: str
    location: str


class ToolDeleted(Event, type="cachetest.tooling.tool.deleted", key="tool_id"):
    tool_id: str


tooling = Service("tooling", metadata=StockBase.metadata, publishes=[ToolCreated, ToolUpdated, ToolDeleted])


def view(tool: Tool) -> dict:
    return {"toolName": tool.name, "location": tool.location}


async def create_tool(name: str) -> Tool:
    async with tooling.unit_of_work() as uow:
        tool = Tool(name=name)
        uow.add(tool)
        await uow.flush()
        uow.publish(ToolCreated(tool_id=str(tool.id), tool_name=name, location=tool.location), entity=tool)
    return tool


async def update_tool(tool_id: uuid.UUID, **changes: str) -> Tool:
    while True:
        try:
            async with tooling.unit_of_work() as uow:
                tool = await uow.get(Tool, tool_id)
                for field, value in changes.items():
                    setattr(tool, field, value)
                uow.publish(ToolUpdated(tool_id=str(tool.id), tool_name=tool.name, location=tool.location),
                            entity=tool)
            return tool
        except StaleDataError:
            continue


async def load_tool(id: str):
    """What the follower's loader does (through the owner's API in production)."""
    async with tooling.unit_of_work() as uow:
        tool = await uow.get(Tool, uuid.UUID(id))
        return None if tool is None else Versioned(view(tool), tool.version)


def follower(cache: ReferenceDataCache, **follow_options) -> Service:
    handlers = Handlers()
    handlers.include(cache.follow(PREFIX, source="cachetest.tooling.tool", **follow_options))
    return Service("dispatch", metadata=MetaData(), handlers=handlers)


async def started(env, *services) -> System:
    system = System("cachetest", [tooling, *services], env=env, relay_options={"poll_interval": 0.02})
    await system.start()
    return system


async def test_invalidate_mode_drops_the_entry_on_each_update(env, make_cache):
    cache = make_cache()
    system = await started(env, follower(cache))
    try:
        tool = await create_tool("torque wrench")
        await system.drain()
        key = str(tool.id)
        assert await cache.get_or_load(PREFIX, key, load_tool) == {"toolName": "torque wrench", "location": "crib"}
        await update_tool(tool.id, location="cell 4")
        await system.drain()
        assert await cache.get(PREFIX, key) is None  # invalidated by the event
        assert await cache.get_or_load(PREFIX, key, load_tool) == {"toolName": "torque wrench", "location": "cell 4"}
        assert cache.counters.loads == 2
    finally:
        await system.stop()


async def test_refresh_mode_writes_the_events_data(env, make_cache):
    cache = make_cache()
    system = await started(env, follower(cache, mode="refresh", fields={"toolName": "toolName",
                                                                         "location": "location"}))
    try:
        tool = await create_tool("caliper")
        await system.drain()
        key = str(tool.id)
        assert await cache.get(PREFIX, key) == {"toolName": "caliper", "location": "crib"}
        for n in range(3):
            await update_tool(tool.id, location=f"cell {n}")
        await system.drain()
        assert await cache.get(PREFIX, key) == {"toolName": "caliper", "location": "cell 2"}
        calls = 0

        async def counting(id):
            nonlocal calls
            calls += 1
            return await load_tool(id)

        assert (await cache.get_or_load(PREFIX, key, counting))["location"] == "cell 2"
        assert calls == 0  # served from what the events wrote
    finally:
        await system.stop()


async def test_refresh_mode_ignores_replayed_older_events(make_cache):
    cache = make_cache()
    subs = {s.type: s for s in cache.follow(PREFIX, "cachetest.tooling.tool", mode="refresh",
                                             fields=["toolName"])}
    updated = subs["cachetest.tooling.tool.updated"]

    def envelope(version: int, name: str) -> Envelope:
        event = ToolUpdated(tool_id="t1", tool_name=name, location="x")
        return Envelope.wrap(event, source="/cachetest/tooling", key="t1", version=version)

    await updated.fn(envelope(3, "third"), None)
    await updated.fn(envelope(2, "second"), None)  # a replay / reordering
    assert await cache.get(PREFIX, "t1") == {"toolName": "third"}
    await subs["cachetest.tooling.tool.deleted"].fn(
        Envelope.wrap(ToolDeleted(tool_id="t1"), source="/cachetest/tooling", key="t1", version=4), None)
    assert await cache.get(PREFIX, "t1") is None


def test_follow_declares_one_subscription_per_action(make_cache):
    cache = make_cache()
    subs = cache.follow(PREFIX, source="mes.material.part")
    assert [s.type for s in subs] == ["mes.material.part.created", "mes.material.part.updated",
                                      "mes.material.part.deleted"]
    assert all(s.model is None and asyncio.iscoroutinefunction(s.fn) for s in subs)
    assert [s.type for s in cache.follow(PREFIX, "mes.material.part", actions=["updated"])] == \
        ["mes.material.part.updated"]
    with pytest.raises(ConfigurationError, match="mode"):
        cache.follow(PREFIX, "mes.material.part", mode="write-through")
    with pytest.raises(ConfigurationError, match="refresh"):
        cache.follow(PREFIX, "mes.material.part", fields=["partNumber"])


def test_a_follow_of_events_nobody_publishes_is_refused(make_cache, env):
    cache = make_cache()
    handlers = Handlers()
    handlers.include(cache.follow(PREFIX, source="cachetest.tooling.widget"))
    with pytest.raises(Exception, match="no service"):
        System("cachetest", [tooling, Service("dispatch", metadata=MetaData(), handlers=handlers)], env=env)


async def test_a_cache_keyed_by_part_number_drops_the_old_number_on_rename(make_cache):
    """Seed 001 caches parts under their number; a rename must drop the old number's entry."""
    cache = make_cache()

    def numbers(envelope: Envelope) -> list[str]:
        data = envelope.json()
        return [data["partNumber"], data.get("previousValues", {}).get("partNumber")]

    subs = {s.type: s for s in cache.follow("part", "mes.material.part", mode="refresh",
                                             fields=["partNumber", "partName"], key=numbers)}
    await cache.set("part", "P-12345", {"partNumber": "P-12345", "partName": "Strut"}, version=1)
    renamed = Envelope(id="e2", source="/mes/material", type="mes.material.part.updated", partitionkey="uuid-1",
                       entityversion=2, data=b'{"partId": "uuid-1", "partNumber": "P-99999", "partName": "Strut", '
                                             b'"previousValues": {"partNumber": "P-12345"}}')
    await subs["mes.material.part.updated"].fn(renamed, None)
    assert await cache.get("part", "P-12345") is None
    assert await cache.get("part", "P-99999") == {"partNumber": "P-99999", "partName": "Strut"}
