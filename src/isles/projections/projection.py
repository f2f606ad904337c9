"""A projection: a read model in the consuming service's own database, fed by events.

Declared on the consuming service::

    part_names = Projection("part_names", tables=[PartName])

    @part_names.on("mes.material.part.updated")
    async def renamed(event: PartUpdated, uow: ProjectionUow) -> None:
        await uow.upsert(PartName, {"id": event.part_id, "name": event.part_name,
                                    "version": uow.incoming.entityversion})

    Service("reporting", ..., projections=[part_names])

Handlers are plain functions ``(event, uow)`` like :class:`isles.Handlers`. They write through
``uow.table(T)`` / ``uow.upsert`` / ``uow.delete``, which point at the live tables while events
arrive and at the shadow copy while a rebuild fills it: that is how one handler serves both.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Iterable, Mapping

from pydantic import BaseModel
from sqlalchemy import Table, and_, bindparam, delete

from isles.config import validate_service_name
from isles.errors import ConfigurationError
from isles.replication import _table_of
from isles.subscriptions import HandlerFn, Handlers, Subscription
from isles.unit_of_work import UnitOfWork

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,60}$")


class Projection:
    """A read model: ``tables`` (ORM models or Tables of the consuming service) written by handlers.

    ``sources`` names more services whose whole stream it follows (each handled type's owner is
    followed anyway); every event of a followed service moves the checkpoint, handled or not.
    """

    def __init__(self, name: str, *, tables: Iterable[Any], handlers: Handlers | None = None,
                 sources: Iterable[str] = ()):
        if not _NAME.match(name or ""):
            raise ConfigurationError(f"projection name {name!r} is not valid",
                                     fix="use lower-case letters, digits and underscores (e.g. 'part_names')")
        self.name = name
        self.tables: list[Table] = [_table_of(t) for t in tables]
        if not self.tables:
            raise ConfigurationError(f"projection {name!r} declares no tables",
                                     fix="pass tables=[Model, ...]: the read-model tables its handlers write")
        for table in self.tables:
            if table.primary_key is None or not list(table.primary_key.columns):
                raise ConfigurationError(f"projection {name!r}: table {table.name!r} has no primary key",
                                         fix="give every read-model table a primary key (upserts need it)")
        self.handlers = handlers or Handlers()
        self.sources = list(sources)
        for source in self.sources:
            validate_service_name(source)

    def __repr__(self) -> str:
        return f"Projection({self.name!r})"

    def on(self, type_name: str, *, model: type[BaseModel] | None = None) -> Callable[[HandlerFn], HandlerFn]:
        """Register a handler ``async def fn(event, uow)`` for ``type_name`` (as ``Handlers.on``)."""
        return self.handlers.on(type_name, model=model)

    @property
    def subscriptions(self) -> list[Subscription]:
        return list(self.handlers.subscriptions)

    def handled_types(self) -> set[str]:
        return {s.type for s in self.handlers.subscriptions}

    def table(self, target: Any) -> Table:
        table = _table_of(target)
        if table not in self.tables:
            raise ConfigurationError(f"projection {self.name!r} writes table {table.name!r}, which it does not declare",
                                     fix=f"add it to Projection({self.name!r}, tables=[...])")
        return table


class ProjectionUow:
    """What a projection handler gets: the unit of work, with the tables pointed at live or shadow.

    Reads and writes through ``table()`` go to the copy being fed; ``upsert`` queues an
    executemany (see ``UnitOfWork.write_later``), so a page of events is one round trip per table.
    """

    def __init__(self, uow: UnitOfWork, projection: Projection, targets: Mapping[str, Table], dialect: Any):
        self.uow = uow
        self.projection = projection
        self.targets = targets
        self.dialect = dialect
        self.incoming = uow.incoming
        self.service = uow.service

    @property
    def session(self) -> Any:
        return self.uow.session

    def table(self, target: Any) -> Table:
        """The table to read and write for ``target`` (a model or Table of the projection)."""
        return self.targets[self.projection.table(target).name]

    async def execute(self, statement: Any, params: Any = None) -> Any:
        return await self.uow.execute(statement, params)

    async def scalar(self, statement: Any, params: Any = None) -> Any:
        return await self.uow.scalar(statement, params)

    async def scalars(self, statement: Any, params: Any = None) -> Any:
        return await self.uow.scalars(statement, params)

    async def write_later(self, statement: Any, params: dict[str, Any]) -> None:
        await self.uow.write_later(statement, params)

    async def upsert(self, target: Any, values: dict[str, Any], *, update: Iterable[str] | None = None,
                     where: Any = None) -> None:
        """Insert ``values`` into ``target``'s row, or update it (``update`` columns, default all but the key).

        ``where(table)`` may return a condition on the existing row for the update (e.g. a version
        guard ``lambda t: t.c.version < bindparam("version")``). Queued: nobody reads the row count.
        """
        statement = _upsert(self.dialect, self.table(target), tuple(values), update, where)
        await self.uow.write_later(statement, values)

    async def delete(self, target: Any, **where: Any) -> int:
        table = self.table(target)
        result = await self.uow.execute(delete(table).where(and_(*(table.c[k] == v for k, v in where.items()))))
        return result.rowcount or 0


_UPSERTS: dict[tuple[Any, ...], Any] = {}


def _upsert(dialect: Any, table: Table, columns: tuple[str, ...], update: Iterable[str] | None, where: Any) -> Any:
    """One built statement per (dialect, table, columns, ...): building costs more than running it."""
    key = (dialect.name, table.name, id(table), columns, tuple(update) if update is not None else None, where)
    statement = _UPSERTS.get(key)
    if statement is None:
        pk = [c.name for c in table.primary_key.columns]
        insert = dialect.insert(table).values({c: _bind(table, c) for c in columns})
        chosen = [c for c in (update if update is not None else columns) if c not in pk]
        set_ = {c: insert.excluded[c] for c in chosen}
        if not set_:
            statement = insert.on_conflict_do_nothing(index_elements=pk)
        else:
            statement = insert.on_conflict_do_update(index_elements=pk, set_=set_,
                                                     where=where(table) if where is not None else None)
        _UPSERTS[key] = statement
    return statement


def _bind(table: Table, column: str) -> Any:
    return bindparam(column, type_=table.c[column].type)
