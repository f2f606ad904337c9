"""A toy system for projection tests: catalog publishes item events; reports projects them.

reports' ``item_names`` projection keeps, per item, the current name and the history of every
name it applied ("a|b|c"), so a test reads exactly-once (no repeats) and per-key order (the
history is the commit order) straight from the read model.
"""
from __future__ import annotations

import uuid
from typing import Any, Mapping

from sqlalchemy import BigInteger, String, Text, bindparam, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from isles import Entity, Event, Payload, Service, Snapshot, System
from isles.projections import Projection, ProjectionUow


class CatalogBase(DeclarativeBase):
    pass


class Item(Entity, CatalogBase):
    __tablename__ = "items"
    name: Mapped[str] = mapped_column(String(100))


class ItemCreated(Event, type="toy.catalog.item.created", key="item_id"):
    item_id: str
    name: str


class ItemUpdated(Event, type="toy.catalog.item.updated", key="item_id"):
    item_id: str
    name: str


class ItemAudited(Event, type="toy.catalog.item.audited", key="item_id"):
    """An event the projection has no handler for: it still moves the checkpoint."""
    item_id: str


catalog = Service("catalog", metadata=CatalogBase.metadata, publishes=[ItemCreated, ItemUpdated, ItemAudited],
                  snapshots=[Snapshot("toy.catalog.item", Item,
                                      lambda item: ItemUpdated(item_id=str(item.id), name=item.name))])


class ReportsBase(DeclarativeBase):
    pass


class ItemName(ReportsBase):
    __tablename__ = "item_names"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), index=True)
    version: Mapped[int] = mapped_column(BigInteger)
    history: Mapped[str] = mapped_column(Text)


class Named(Payload):
    item_id: str
    name: str


item_names = Projection("item_names", tables=[ItemName])


@item_names.on("toy.catalog.item.created")
@item_names.on("toy.catalog.item.updated")
async def named(event: Named, uow: ProjectionUow) -> None:
    t = uow.table(ItemName)
    insert = uow.dialect.insert(t).values(id=bindparam("id"), name=bindparam("name"), version=bindparam("version"),
                                          history=bindparam("name"))
    statement = insert.on_conflict_do_update(index_elements=["id"], set_={
        "name": insert.excluded.name, "version": insert.excluded.version,
        "history": t.c.history.concat("|").concat(insert.excluded.name)})
    await uow.write_later(statement, {"id": event.item_id, "name": event.name, "version": uow.incoming.entityversion})


reports = Service("reports", metadata=ReportsBase.metadata, projections=[item_names])


def build_system(env: Mapping[str, str] | None = None, **kwargs: Any) -> System:
    return System("toy", [catalog, reports], env=env, **kwargs)


async def create_item(name: str) -> str:
    async with catalog.unit_of_work() as uow:
        item = Item(name=name)
        uow.add(item)
        await uow.flush()
        uow.publish(ItemCreated(item_id=str(item.id), name=name), entity=item)
    return str(item.id)


async def rename(item_id: str, name: str) -> None:
    while True:
        try:
            async with catalog.unit_of_work() as uow:
                item = await uow.get(Item, uuid.UUID(item_id))
                item.name = name
                uow.publish(ItemUpdated(item_id=item_id, name=name), entity=item)
            return
        except StaleDataError:
            continue


async def audit(item_id: str) -> None:
    async with catalog.unit_of_work() as uow:
        uow.publish(ItemAudited(item_id=item_id), key=item_id, version=1)


async def views() -> dict[str, tuple[str, str]]:
    """item id -> (name, history) as the live read model holds them."""
    async with reports.unit_of_work() as uow:
        rows = (await uow.execute(select(ItemName.__table__))).all()
    return {row.id: (row.name, row.history) for row in rows}
