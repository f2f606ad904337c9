"""SQLite: one connection per database, so every transaction is already serial."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from sqlalchemy import ColumnElement, Table, bindparam
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from isles.dialects.base import Dialect, Executor, ParkedKey
from isles.events import Envelope
from isles.tables import FrameworkTables

if TYPE_CHECKING:
    from isles.relay_claims import BucketClaims


class SqliteDialect(Dialect):
    name = "sqlite"
    concurrent_connections = False

    def __init__(self) -> None:
        self._inbox_inserts: dict[Table, Any] = {}

    def insert(self, table: Table) -> Any:
        return sqlite.insert(table)

    async def order_outbox_keys(self, uow: Executor, keys: Sequence[str], topic: str) -> None:
        """Nothing to do: a SQLite transaction holds the database's only writer lock, so ids
        follow commit order; the unit of work wakes the in-process relay itself."""

    def relay_claims(self, engine: AsyncEngine, topic: str, on_notify: Callable[[], None]) -> "BucketClaims | None":
        return None  # one process owns a SQLite file

    async def begin_pending_read(self, conn: AsyncConnection) -> None:
        """SQLite's planner walks the pending index already."""

    def id_among(self, column: ColumnElement[Any], ids: Iterable[int]) -> ColumnElement[bool]:
        return column.in_(sorted(ids))

    def not_among(self, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        return column.not_in(bindparam(name, expanding=True))

    def among(self, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        return column.in_(bindparam(name, expanding=True))

    async def begin_mark(self, conn: AsyncConnection) -> None:
        """Nothing to relax: the mark commits like any other transaction."""

    async def record_in_inbox(self, uow: Executor, tables: FrameworkTables,
                              envelopes: Sequence[Envelope]) -> tuple[set[str], set[ParkedKey]]:
        """Two statements: the parked keys first, then one INSERT ... RETURNING of the others."""
        parked = await self.parked_keys(uow, tables, sorted({e.partitionkey for e in envelopes}))
        rows = [self.inbox_row(e) for e in envelopes if (e.source, e.partitionkey) not in parked]
        if not rows:
            return set(), parked
        insert = self._inbox_inserts.get(tables.inbox)
        if insert is None:
            insert = self._inbox_inserts[tables.inbox] = (
                sqlite.insert(tables.inbox).on_conflict_do_nothing(index_elements=["event_id"]))
        new = set(await uow.scalars(insert.values(rows).returning(tables.inbox.c.event_id)))
        return new, parked

    async def lock_key(self, uow: Executor, key: str) -> None:
        """SQLite transactions are already serial."""

    def consumer_lanes(self, pool_size: int) -> int:
        return 1
