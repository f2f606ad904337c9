"""A two-service toy system for the framework's own tests.

catalog owns items and publishes shop.catalog.item.*; orders keeps a replicated copy of the
item name on its order lines and records every event it applies (in order) in applied_events,
so tests can check exactly-once and per-key order from the consumer's own database.
"""
from __future__ import annotations

import uuid
from typing import Any, Mapping

from sqlalchemy import BigInteger, Index, Integer, String, Uuid, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from isles import Entity, Event, Handlers, Payload, Replica, Service, Snapshot, System, UnitOfWork

FAIL_KEYS: set[str] = set()  # item ids whose handler raises, to exercise dead letters


class CatalogBase(DeclarativeBase):
    pass


class Item(Entity, CatalogBase):
    __tablename__ = "items"
    name: Mapped[str] = mapped_column(String(100))
    price: Mapped[int] = mapped_column(Integer, default=0)


class ItemCreated(Event, type="shop.catalog.item.created", key="item_id"):
    item_id: str
    name: str
    price: int


class ItemUpdated(Event, type="shop.catalog.item.updated", key="item_id"):
    item_id: str
    name: str
    price: int


def item_updated(item: Item) -> ItemUpdated:
    return ItemUpdated(item_id=str(item.id), name=item.name, price=item.price)


catalog = Service("catalog", metadata=CatalogBase.metadata, publishes=[ItemCreated, ItemUpdated],
                  snapshots=[Snapshot("shop.catalog.item", Item, item_updated)])


class OrdersBase(DeclarativeBase):
    pass


class OrderLine(Entity, OrdersBase):
    __tablename__ = "order_lines"
    __table_args__ = (Index("idx_order_lines_item_id", "item_id"),)
    item_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    item_name: Mapped[str | None] = mapped_column(String(100))
    item_version: Mapped[int | None] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer, default=1)


class AppliedEvent(OrdersBase):
    __tablename__ = "applied_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36))
    item_id: Mapped[str] = mapped_column(String(36))
    version: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(100))


class ItemView(Payload):
    item_id: str
    name: str


handlers = Handlers()


@handlers.on("shop.catalog.item.created")
@handlers.on("shop.catalog.item.updated")
async def record(event: ItemView, uow: UnitOfWork) -> None:
    if event.item_id in FAIL_KEYS:
        raise RuntimeError(f"injected failure for item {event.item_id}")
    uow.add(AppliedEvent(event_id=uow.incoming.id, item_id=event.item_id, version=uow.incoming.entityversion,
                         name=event.name))


orders = Service("orders", metadata=OrdersBase.metadata, handlers=handlers,
                 replicas=[Replica(OrderLine, key="item_id", source="shop.catalog.item", fields={"item_name": "name"})])


def build_system(env: Mapping[str, str] | None = None, **kwargs: Any) -> System:
    return System("shop", [catalog, orders], env=env, **kwargs)


# -- operations the tests (and crash-test subprocesses) perform ---------------------------------------
async def create_item(name: str, price: int = 1) -> uuid.UUID:
    async with catalog.unit_of_work() as uow:
        item = Item(name=name, price=price)
        uow.add(item)
        await uow.flush()
        uow.publish(ItemCreated(item_id=str(item.id), name=name, price=price), entity=item)
    return item.id


async def rename(item_id: uuid.UUID, name: str) -> int:
    """Rename an item; returns its new version. Retries optimistic-lock conflicts."""
    while True:
        try:
            async with catalog.unit_of_work() as uow:
                item = await uow.get(Item, item_id)
                item.name = name
                uow.publish(item_updated(item), entity=item)
            return item.version
        except StaleDataError:
            continue


async def add_order_line(item_id: uuid.UUID, name: str | None = None, version: int | None = None) -> uuid.UUID:
    async with orders.unit_of_work() as uow:
        line = OrderLine(item_id=item_id, item_name=name, item_version=version)
        uow.add(line)
    return line.id


async def applied(item_id: Any = None) -> list[AppliedEvent]:
    async with orders.unit_of_work() as uow:
        query = select(AppliedEvent).order_by(AppliedEvent.id)
        if item_id is not None:
            query = query.where(AppliedEvent.item_id == str(item_id))
        return list(await uow.scalars(query))
