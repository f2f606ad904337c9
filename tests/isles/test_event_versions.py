"""Event versions: consumers see every event in the current shape, whatever version it was written in."""
from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import BigInteger, Integer, MetaData, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import (
    ConfigurationError,
    Envelope,
    Event,
    EventRegistry,
    Handlers,
    InvalidPayload,
    Payload,
    Replica,
    Service,
    System,
    UnitOfWork,
)
from isles.events import upcaster
from isles.tables import DEAD, RESOLVED


# -- the producer: depot.stock.item.updated went from {name} (v1) to {title, label} (v2) --------------------
class ItemUpdatedV1(Event, type="depot.stock.item.updated", key="item_id"):
    """What a producer not yet upgraded still publishes (and what the retained outbox holds)."""

    item_id: str
    name: str


class ItemUpdated(Event, type="depot.stock.item.updated", key="item_id", version=2):
    item_id: str
    title: str
    label: str

    @upcaster(from_version=1)
    def _title_was_name(data: dict[str, Any]) -> dict[str, Any]:
        data["title"] = data.pop("name")
        data["label"] = data["title"].upper()
        return data


class ItemUpdatedV3(Event, type="depot.stock.item.updated", key="item_id", version=3):
    """A producer ahead of this system's declaration."""

    item_id: str
    title: str
    label: str
    colour: str


# -- unit: the registry's upcast ------------------------------------------------------------------------------
def _registry(model: type[Event] = ItemUpdated) -> EventRegistry:
    registry = EventRegistry()
    registry.register("stock", model)
    return registry


def _envelope(event: Event) -> Envelope:
    return Envelope.wrap(event, source="/depot/stock", key="k1", version=1)


def test_published_events_carry_their_version():
    assert _envelope(ItemUpdated(item_id="k1", title="a", label="A")).dataversion == 2
    assert _envelope(ItemUpdatedV1(item_id="k1", name="a")).dataversion == 1


def test_a_current_event_is_passed_through_untouched():
    envelope = _envelope(ItemUpdated(item_id="k1", title="a", label="A"))
    assert _registry().upcast(envelope) is envelope


def test_upcasters_chain_to_the_current_version():
    class V3(Event, type="depot.stock.item.updated", key="item_id", version=3):
        item_id: str
        title: str
        label: str
        colour: str

        @upcaster(from_version=1)
        def _v1(data: dict[str, Any]) -> dict[str, Any]:
            return ItemUpdated._title_was_name(data)

        @upcaster(from_version=2)
        def _v2(data: dict[str, Any]) -> dict[str, Any]:
            return {**data, "colour": "grey"}

    upcast = _registry(V3).upcast(_envelope(ItemUpdatedV1(item_id="k1", name="bolt")), service="floor")
    assert upcast.dataversion == 3
    assert upcast.json() == {"itemId": "k1", "title": "bolt", "label": "BOLT", "colour": "grey"}


def test_a_newer_version_than_the_system_knows_is_invalid():
    envelope = _envelope(ItemUpdatedV3(item_id="k1", title="a", label="A", colour="red"))
    with pytest.raises(InvalidPayload) as caught:
        _registry().upcast(envelope, service="floor")
    message = str(caught.value)
    assert message.startswith(f"service 'floor': event {envelope.id} (depot.stock.item.updated) has data version 3, "
                              "newer than version 2 that this system knows (ItemUpdated of service 'stock')")
    assert "fix: deploy this service with ItemUpdated at version 3" in message


def test_a_missing_or_failing_upcaster_is_invalid():
    class NoSteps(Event, type="depot.stock.item.updated", key="item_id", version=2):
        item_id: str

    class Broken(Event, type="depot.stock.item.updated", key="item_id", version=2):
        item_id: str
        title: str

        @upcaster(from_version=1)
        def _forgets_title(data: dict[str, Any]) -> dict[str, Any]:
            return data

    old = _envelope(ItemUpdatedV1(item_id="k1", name="a"))
    with pytest.raises(InvalidPayload, match="has no upcaster from version 1"):
        _registry(NoSteps).upcast(old)
    with pytest.raises(InvalidPayload, match="upcast to version 2 it does not match Broken: title: Field required"):
        _registry(Broken).upcast(old)
    with pytest.raises(InvalidPayload, match=r"upcaster ItemUpdated._title_was_name \(version 1 -> 2\) failed: "
                                             "KeyError"):
        _registry().upcast(Envelope(id="x", source="/depot/stock", type="depot.stock.item.updated",
                                    data=b'{"itemId":"k1"}', partitionkey="k1", dataversion=1))


def test_an_upcaster_must_read_an_older_version_once():
    with pytest.raises(ConfigurationError, match="declares an upcaster _same from version 2"):
        class Same(Event, type="depot.stock.item.updated", key="item_id", version=2):
            @upcaster(from_version=2)
            def _same(data: dict[str, Any]) -> dict[str, Any]:
                return data
    with pytest.raises(ConfigurationError, match="two upcasters from version 1"):
        class Twice(Event, type="depot.stock.item.updated", key="item_id", version=2):
            @upcaster(from_version=1)
            def _a(data: dict[str, Any]) -> dict[str, Any]:
                return data

            @upcaster(from_version=1)
            def _b(data: dict[str, Any]) -> dict[str, Any]:
                return data
    with pytest.raises(ConfigurationError, match="from_version=0"):
        upcaster(from_version=0)


# -- a running system: old and new events of one key, in one stream ------------------------------------------
class FloorBase(DeclarativeBase):
    pass


class Seen(FloorBase):
    __tablename__ = "seen"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    item_id: Mapped[str] = mapped_column(String(36))
    title: Mapped[str] = mapped_column(String(100))
    label: Mapped[str] = mapped_column(String(100))


class Shelf(FloorBase):
    __tablename__ = "shelves"
    item_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    item_title: Mapped[str | None] = mapped_column(String(100))
    item_version: Mapped[int | None] = mapped_column(BigInteger)


class ItemView(Payload):
    item_id: str
    title: str
    label: str


FAIL: set[str] = set()
floor_handlers = Handlers()


@floor_handlers.on("depot.stock.item.updated")
async def record(event: ItemView, uow: UnitOfWork) -> None:
    if event.item_id in FAIL:
        raise RuntimeError(f"injected failure for {event.item_id}")
    uow.add(Seen(item_id=event.item_id, title=event.title, label=event.label))


def _depot(env: dict[str, str]) -> System:
    stock = Service("stock", metadata=MetaData(), publishes=[ItemUpdated])
    floor = Service("floor", metadata=FloorBase.metadata, handlers=floor_handlers,
                    replicas=[Replica(Shelf, key="item_id", source="depot.stock.item", actions=("updated",),
                                      fields={"item_title": "title"}, upsert=True, version="item_version")])
    return System("depot", [stock, floor], env=env, freeze_heap=False, relay_options={"poll_interval": 0.05},
                  consumer_options={"max_attempts": 1, "base_backoff": 0.001})


@pytest.fixture
async def depot(env) -> AsyncIterator[System]:
    FAIL.clear()
    system = _depot(env)
    async with system.running():
        yield system
    FAIL.clear()


async def _publish(system: System, event: Event, version: int) -> None:
    async with system.service("stock").unit_of_work() as uow:
        uow.publish(event, key=event.key(), version=version)


async def _seen(system: System) -> list[tuple[str, str, str]]:
    async with system.service("floor").unit_of_work() as uow:
        return [(s.item_id, s.title, s.label) for s in await uow.scalars(select(Seen).order_by(Seen.id))]


async def _shelf(system: System, item_id: str) -> tuple[str | None, int | None]:
    async with system.service("floor").unit_of_work() as uow:
        shelf = await uow.get(Shelf, item_id)
        return (shelf.item_title, shelf.item_version) if shelf else (None, None)


async def test_old_and_new_versions_of_one_key_reach_handlers_and_replicas_in_the_current_shape(depot):
    await _publish(depot, ItemUpdatedV1(item_id="k1", name="bolt"), 1)  # a producer not yet upgraded
    await _publish(depot, ItemUpdated(item_id="k1", title="bolt m8", label="M8"), 2)
    await _publish(depot, ItemUpdatedV1(item_id="k2", name="nut"), 1)
    await depot.drain()
    assert await _seen(depot) == [("k1", "bolt", "BOLT"), ("k1", "bolt m8", "M8"), ("k2", "nut", "NUT")]
    assert await _shelf(depot, "k1") == ("bolt m8", 2)
    assert await _shelf(depot, "k2") == ("nut", 1)  # the replica read the v1 event as v2 ("title")


async def test_a_version_newer_than_the_system_knows_is_dead_lettered_as_it_came(depot):
    await _publish(depot, ItemUpdatedV3(item_id="k3", title="washer", label="W", colour="red"), 1)
    await _publish(depot, ItemUpdated(item_id="k3", title="washer m8", label="W8"), 2)
    await depot.drain()
    dead_letters = depot.runtime("floor").tables.dead_letters
    async with depot.runtime("floor").database.engine.connect() as conn:
        rows = (await conn.execute(select(dead_letters).order_by(dead_letters.c.id))).all()
    assert [row.status for row in rows] == [DEAD, "waiting"]  # the key waits behind it, in order
    assert "has data version 3, newer than version 2 that this system knows" in rows[0].error
    assert Envelope.from_structured(rows[0].envelope.encode()).dataversion == 3
    assert await _seen(depot) == []


async def test_a_replayed_dead_letter_of_an_old_version_is_upcast(depot):
    FAIL.add("k4")
    await _publish(depot, ItemUpdatedV1(item_id="k4", name="pin"), 1)
    await depot.drain()
    dead_letters = depot.runtime("floor").tables.dead_letters
    async with depot.runtime("floor").database.engine.connect() as conn:
        stored = (await conn.execute(select(dead_letters.c.envelope))).scalar_one()
    assert Envelope.from_structured(stored.encode()).dataversion == 1  # kept as it was written
    FAIL.clear()
    report = await depot.consumer("floor").retry()
    assert report.resolved == 1 and not report.failed
    assert await _seen(depot) == [("k4", "pin", "PIN")]
    async with depot.runtime("floor").database.engine.connect() as conn:
        assert (await conn.execute(select(dead_letters.c.status))).scalar_one() == RESOLVED
