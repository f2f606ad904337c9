"""Mistakes in declaring services, events and handlers fail at start-up with the fix."""
from __future__ import annotations

import pytest
import toy_shop
from sqlalchemy import MetaData

from isles import Event, Handlers, Payload, Replica, Service, System, UnitOfWork
from isles.errors import ConfigurationError, DatabaseUnavailable, EventError, UnknownEventType


def test_a_service_named_twice_is_refused():
    with pytest.raises(ConfigurationError, match="declared twice") as info:
        System("shop", [toy_shop.catalog, toy_shop.catalog])
    assert "service 'catalog'" in str(info.value) and "fix:" in str(info.value)


def test_a_handler_for_an_unknown_event_type_is_refused_with_a_suggestion():
    handlers = Handlers()

    @handlers.on("shop.catalog.item.renamed")
    async def on_renamed(event: Payload, uow: UnitOfWork) -> None: ...

    audit = Service("audit", metadata=MetaData(), handlers=handlers)
    with pytest.raises(UnknownEventType) as info:
        System("shop", [toy_shop.catalog, audit])
    text = str(info.value)
    assert "service 'audit'" in text and "shop.catalog.item.renamed" in text
    assert "did you mean" in text and "shop.catalog.item.updated" in text


def test_a_replica_of_an_unknown_source_is_refused():
    bad = Service("mirror", metadata=toy_shop.OrdersBase.metadata,
                  replicas=[Replica(toy_shop.OrderLine, key="item_id", source="shop.catalog.widget",
                                    fields={"item_name": "name"})])
    with pytest.raises(UnknownEventType, match="shop.catalog.widget.created"):
        System("shop", [toy_shop.catalog, bad])


async def test_an_optional_replica_of_an_absent_source_is_dropped_not_refused(env):
    optional = Service("mirror", metadata=toy_shop.OrdersBase.metadata,
                       replicas=[Replica(toy_shop.OrderLine, key="item_id", source="shop.catalog.widget",
                                         fields={"item_name": "name"}, optional=True)])
    system = System("shop", [toy_shop.catalog, optional], env=env)
    await system.start()
    try:
        assert system.consumer("mirror") is None  # nothing left to consume
    finally:
        await system.stop()


def test_replica_columns_must_exist():
    with pytest.raises(ConfigurationError, match="item_colour"):
        Replica(toy_shop.OrderLine, key="item_id", source="shop.catalog.item", fields={"item_colour": "colour"})


@pytest.mark.parametrize("name", ["Material", "work-order", "", "9lives"])
def test_service_names_are_identifiers(name):
    with pytest.raises(ConfigurationError, match="not a valid service name"):
        Service(name, metadata=MetaData())


def test_event_type_names_are_checked():
    with pytest.raises(ConfigurationError, match="system.service.entity.action"):
        class Bad(Event, type="PartUpdated"):
            pass


def test_handlers_must_be_async():
    handlers = Handlers()
    with pytest.raises(ConfigurationError, match="async def"):
        @handlers.on("shop.catalog.item.updated")
        def sync_handler(event, uow):  # pragma: no cover
            pass


async def test_publishing_an_undeclared_event_is_refused(shop):
    class Stray(Event, type="shop.catalog.item.stray", key="item_id"):
        item_id: str

    async with toy_shop.catalog.unit_of_work() as uow:
        with pytest.raises(EventError, match="does not declare"):
            uow.publish(Stray(item_id="1"), version=1)


async def test_an_event_without_entity_version_is_refused(shop):
    with pytest.raises(EventError, match="entity version") as info:
        async with toy_shop.catalog.unit_of_work() as uow:
            uow.publish(toy_shop.ItemCreated(item_id="1", name="x", price=1))
    assert "entity=" in str(info.value)


def test_a_service_outside_a_running_system_says_so():
    lonely = Service("lonely", metadata=MetaData())
    with pytest.raises(ConfigurationError, match="is not running"):
        lonely.unit_of_work()


async def test_an_unreachable_database_is_a_clear_error_with_the_password_masked(env):
    env = dict(env, CATALOG_DATABASE_URL="postgresql://app:topsecret@127.0.0.1:1/nowhere")
    system = toy_shop.build_system(env=env)
    with pytest.raises(DatabaseUnavailable) as info:
        await system.start()
    text = str(info.value)
    assert "service 'catalog'" in text and "CATALOG_DATABASE_URL" in text and "fix:" in text
    assert "topsecret" not in text and "***" in text
    assert toy_shop.catalog._runtime is None
