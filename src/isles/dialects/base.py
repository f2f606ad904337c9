"""What a database must offer isles, and the parts every dialect words alike.

A :class:`Dialect` is stateless: it is handed the session, connection or tables it works on.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, Callable, Iterable, Protocol, Sequence

from sqlalchemy import ColumnElement, Table, bindparam, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from isles.events import Envelope
from isles.orm import utcnow
from isles.tables import DEAD, WAITING, FrameworkTables

if TYPE_CHECKING:
    from isles.held_connection import HeldConnection
    from isles.relay_claims import BucketClaims

class Executor(Protocol):
    """Where a dialect runs its statements: a unit of work (which sends its queued writes first)."""

    async def execute(self, statement: Any, params: Any = None) -> Any: ...

    async def scalars(self, statement: Any, params: Any = None) -> Any: ...


class LoneDelivery(Protocol):
    """A lone event's inbox row and its handlers' writes, all or nothing (see :meth:`Dialect.inbox_gate`)."""

    #: the condition the writes are gated on (``Replica.gated_writes``)
    condition: Any

    async def deliver(self, envelope: Envelope, writes: Sequence[tuple[Any, dict[str, Any]]],
                      engine: AsyncEngine, held: "HeldConnection | None" = None) -> bool:
        """Insert the inbox row and apply ``writes``; False if the row was not inserted (a
        duplicate, or a parked key: then nothing changed)."""


#: (source, partition key) of a parked key: an earlier event of it is a dead letter
ParkedKey = tuple[str, str]


class Dialect(ABC):
    #: the SQLAlchemy dialect name
    name: str
    #: the pool holds several connections, so a relay may overlap batches and a consumer its
    #: shared transactions (SQLite has one connection: everything on it is serial)
    concurrent_connections: bool

    @abstractmethod
    def insert(self, table: Table) -> Any:
        """An INSERT of ``table`` that offers ``on_conflict_do_nothing`` / ``on_conflict_do_update``."""

    @abstractmethod
    async def order_outbox_keys(self, uow: Executor, keys: Sequence[str], topic: str) -> None:
        """Before a transaction writes outbox rows of ``keys``: make same-key transactions assign
        their outbox ids in commit order, and wake the relays of ``topic`` when it commits."""

    async def write_outbox(self, uow: Executor, outbox: Table, rows: Sequence[dict[str, Any]], topic: str) -> None:
        """Write a transaction's outbox ``rows`` (see :func:`isles.outbox.outbox_row`), with what
        :meth:`order_outbox_keys` promises: same-key transactions assign their ids in commit
        order, and the relays of ``topic`` wake when it commits.

        Here, in two statements; a dialect may do both in one.
        """
        await self.order_outbox_keys(uow, [row["partition_key"] for row in rows], topic)
        await uow.execute(insert(outbox), list(rows))

    def relay_connection(self, engine: AsyncEngine) -> "HeldConnection | None":
        """The relay's own connection for its reads and marks, one round trip each (None: the
        relay uses a pooled connection and a transaction for each, as on SQLite's one connection)."""
        return None

    @abstractmethod
    def not_among(self, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        """``column NOT IN :name``, the list bound at execution (so the statement is built once)."""

    @abstractmethod
    def among(self, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        """``column IN :name``, the list bound at execution (so the statement is built once)."""

    @abstractmethod
    def relay_claims(self, engine: AsyncEngine, topic: str, on_notify: Callable[[], None]) -> "BucketClaims | None":
        """How relay instances of one outbox share it (None: there is only ever one)."""

    @abstractmethod
    async def begin_pending_read(self, conn: AsyncConnection) -> None:
        """Settings for the relay's read of pending outbox rows, in its transaction."""

    @abstractmethod
    def id_among(self, column: ColumnElement[Any], ids: Iterable[int]) -> ColumnElement[bool]:
        """``column IN ids`` for the few hundred ids of a relay batch."""

    @abstractmethod
    async def begin_mark(self, conn: AsyncConnection) -> None:
        """Settings for the transaction that marks outbox rows as sent (losing it only resends them)."""

    @abstractmethod
    async def record_in_inbox(self, uow: Executor, tables: FrameworkTables,
                              envelopes: Sequence[Envelope]) -> tuple[set[str], set[ParkedKey]]:
        """Insert the envelopes' ids into the inbox, except those of a parked key.

        Returns the ids inserted (the events to handle now) and the parked keys found among them
        (their events must be delivered alone, to wait behind the dead letter).
        """

    @abstractmethod
    async def lock_key(self, uow: Executor, key: str) -> None:
        """Serialise transactions that park, replay or dead-letter one key, until commit."""

    @abstractmethod
    def consumer_lanes(self, pool_size: int) -> int:
        """How many shared consumer transactions may run at once."""

    def inbox_gate(self, tables: FrameworkTables) -> "LoneDelivery | None":
        """What lets a consumer send one event's inbox row and its handlers' writes together (one
        statement on PostgreSQL, one raw transaction on SQLite; see :mod:`isles.consumer`); None
        where the database cannot."""
        return None

    # -- worded alike everywhere ---------------------------------------------------------------
    @staticmethod
    def inbox_row(envelope: Envelope) -> dict[str, Any]:
        return dict(event_id=envelope.id, type=envelope.type, source=envelope.source,
                    partition_key=envelope.partitionkey, processed_at=utcnow())

    @staticmethod
    def inbox_insert_unless_parked(tables: FrameworkTables, insert: Any, rows: Any, *, event_id: Any, type: Any,
                                   source: Any, partition_key: Any) -> Any:
        """``INSERT INTO inbox SELECT <the columns> FROM <rows> WHERE <its key is not parked> ON
        CONFLICT DO NOTHING RETURNING event_id``, the rows being the envelopes given as one parameter
        (``rows``: a table-valued function of it; the four columns: expressions over it)."""
        inbox, dl = tables.inbox, tables.dead_letters
        # the statuses written in the SQL: a list parameter would be expanded on every execution
        parked = (select(dl.c.id).where(dl.c.source == source, dl.c.partition_key == partition_key,
                                        dl.c.status.in_([literal_column(f"'{DEAD}'"),
                                                         literal_column(f"'{WAITING}'")])).exists())
        chosen = select(event_id, type, source, partition_key,
                        bindparam("now", type_=inbox.c.processed_at.type)).select_from(rows).where(~parked)
        return (insert(inbox).from_select(["event_id", "type", "source", "partition_key", "processed_at"], chosen)
                .on_conflict_do_nothing(index_elements=["event_id"]).returning(inbox.c.event_id))

    async def record_in_inbox_unless_parked(self, uow: Executor, statement: Any, params: dict[str, Any],
                                            tables: FrameworkTables,
                                            envelopes: Sequence[Envelope]) -> tuple[set[str], set[ParkedKey]]:
        """Run an :meth:`inbox_insert_unless_parked`; the parked keys are looked up only when some
        id was not inserted (a duplicate, or an event of a parked key)."""
        new = set(await uow.scalars(statement, params))
        if len(new) == len(envelopes):
            return new, set()
        return new, await self.parked_keys(uow, tables, sorted({e.partitionkey for e in envelopes if e.id not in new}))

    @staticmethod
    async def parked_keys(uow: Executor, tables: FrameworkTables, keys: Sequence[str]) -> set[ParkedKey]:
        dl = tables.dead_letters
        rows = await uow.execute(select(dl.c.source, dl.c.partition_key).distinct().where(
            dl.c.partition_key.in_(keys), dl.c.status.in_((DEAD, WAITING))))
        return {(source, key) for source, key in rows}
