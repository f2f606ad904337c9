"""SQLite: one connection per database, so every transaction is already serial."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from sqlalchemy import ColumnElement, Table, Text, bindparam, func, literal_column
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from isles.dialects.base import Dialect, Executor, ParkedKey
from isles.dialects.sqlite_gate import SqliteInboxGate, inbox_params
from isles.events import Envelope
from isles.tables import FrameworkTables

if TYPE_CHECKING:
    from isles.relay_claims import BucketClaims


class SqliteDialect(Dialect):
    name = "sqlite"
    concurrent_connections = False

    def __init__(self) -> None:
        self._inbox_inserts: dict[Table, Any] = {}
        self._inbox_gates: dict[Table, SqliteInboxGate] = {}

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
        """One statement: the envelopes go as one JSON array, read with ``json_each``.

        SQLite runs inline on the event loop, so every statement saved is CPU saved: the two-
        statement form (the parked keys, then a multi-row VALUES built anew for each batch size)
        cost a lone event about twice as much.
        """
        return await self.record_in_inbox_unless_parked(uow, self._inbox_insert_unless_parked(tables),
                                                        inbox_params(envelopes), tables, envelopes)

    def _inbox_insert_unless_parked(self, tables: FrameworkTables) -> Any:
        statement = self._inbox_inserts.get(tables.inbox)
        if statement is None:
            each = func.json_each(bindparam("rows", type_=Text)).table_valued("value").alias("isles_rows")

            def field(index: int) -> Any:
                return func.json_extract(each.c.value, literal_column(f"'$[{index}]'"))
            statement = self._inbox_inserts[tables.inbox] = self.inbox_insert_unless_parked(
                tables, sqlite.insert, each, event_id=field(0), type=field(1), source=field(2),
                partition_key=field(3))
        return statement

    async def lock_key(self, uow: Executor, key: str) -> None:
        """SQLite transactions are already serial."""

    def consumer_lanes(self, pool_size: int) -> int:
        return 1

    def inbox_gate(self, tables: FrameworkTables) -> SqliteInboxGate:
        """A lone event's inbox row and writes in one transaction on the raw connection (built once per table)."""
        gate = self._inbox_gates.get(tables.inbox)
        if gate is None:
            gate = self._inbox_gates[tables.inbox] = SqliteInboxGate(self._inbox_insert_unless_parked(tables))
        return gate
