"""PostgreSQL: many connections and relay instances, so order and ownership are made explicit.

* Same-key producer transactions queue on an advisory lock until commit, so outbox ids follow
  per-key commit order, and a NOTIFY at commit wakes the relays at once - in the statement that
  writes the outbox rows.
* Relay instances share an outbox through bucket claims (see :mod:`isles.relay_claims`).
* A consumer's batch enters the inbox in one statement that also skips parked keys; a lone event
  of replicas enters it together with their writes (:mod:`isles.dialects.inbox_gate`).
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import (
    ARRAY,
    BigInteger,
    ColumnElement,
    Table,
    Text,
    all_,
    any_,
    bindparam,
    func,
    select,
    text,
    true,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from isles.dialects.base import Dialect, Executor, ParkedKey
from isles.dialects.inbox_gate import InboxGate, inbox_params
from isles.events import Envelope
from isles.held_connection import HeldConnection
from isles.relay_claims import BucketClaims, notify_channel
from isles.tables import FrameworkTables

#: advisory lock classes (the second argument of hashtextextended): producer keys, consumer keys
_PRODUCER_KEYS, _CONSUMER_KEYS = 7302, 7303

_ORDER_KEYS = text(
    f"SELECT count(pg_advisory_xact_lock(hashtextextended(k, {_PRODUCER_KEYS}))), pg_notify(:channel, '') "
    "FROM (SELECT unnest(CAST(:keys AS text[])) AS k ORDER BY 1) AS ordered")

#: The right plan for the relay's read is always the same: walk the pending index in id order and
#: stop after a batch. Right after a burst of writes the table's statistics are stale and the
#: planner sorts the whole backlog instead, every pass; these settings (for this read's
#: transaction only) leave it the one good plan.
_WALK_PENDING_IN_ID_ORDER = text("SELECT set_config('enable_bitmapscan', 'off', true), "
                                 "set_config('enable_seqscan', 'off', true), set_config('enable_sort', 'off', true)")

#: Losing a mark in a crash only means publishing its rows again, which the consumers' inboxes
#: absorb: no need to wait for the WAL flush.
_ASYNC_COMMIT = text("SET LOCAL synchronous_commit = off")

#: The relay's own connection (see :mod:`isles.held_connection`): the plan settings above, and
#: the marks' asynchronous commit, for the whole session.
_RELAY_SESSION = ("SET enable_bitmapscan = off", "SET enable_seqscan = off", "SET enable_sort = off",
                  "SET synchronous_commit = off")

#: the outbox columns a transaction writes (the others keep their defaults)
_OUTBOX_COLUMNS = ("event_id", "type", "source", "subject", "partition_key", "entity_version", "data_version",
                   "trace_parent", "occurred_at", "data")

_LOCK_KEY = text(f"SELECT pg_advisory_xact_lock(hashtextextended(:k, {_CONSUMER_KEYS}))")


class PostgresDialect(Dialect):
    name = "postgresql"
    concurrent_connections = True

    def __init__(self) -> None:
        self._inbox_inserts: dict[Table, Any] = {}
        self._outbox_writes: dict[Table, Any] = {}
        self._inbox_gates: dict[Table, InboxGate] = {}

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    async def order_outbox_keys(self, uow: Executor, keys: Sequence[str], topic: str) -> None:
        # Sorted, so two transactions sharing keys take their locks in one order (no deadlock).
        await uow.execute(_ORDER_KEYS, {"keys": sorted(set(keys)), "channel": notify_channel(topic)})

    async def write_outbox(self, uow: Executor, outbox: Table, rows: Sequence[dict[str, Any]], topic: str) -> None:
        """One statement: lock the keys (sorted), NOTIFY, then insert the rows.

        The locks are taken in an aggregate, which must read all its input before it yields its one
        row, and every inserted row is joined to that row: so every key is locked before the first
        row's id (``nextval``) is drawn, as when the locks were a statement of their own.
        """
        params: dict[str, Any] = {name: [row.get(name) for row in rows] for name in _OUTBOX_COLUMNS}
        params["lock_keys"] = sorted(set(params["partition_key"]))
        params["channel"] = notify_channel(topic)
        await uow.execute(self._outbox_write(outbox), params)

    def _outbox_write(self, outbox: Table) -> Any:
        """The INSERT of :meth:`write_outbox`, built once per table."""
        statement = self._outbox_writes.get(outbox)
        if statement is not None:
            return statement
        keys = func.unnest(bindparam("lock_keys", type_=ARRAY(Text))).table_valued("k").render_derived(name="keys")
        ordered = select(keys.c.k).order_by(keys.c.k).subquery("ordered")
        locked = select(
            func.count(func.pg_advisory_xact_lock(func.hashtextextended(ordered.c.k, _PRODUCER_KEYS))).label("locks"),
            func.pg_notify(bindparam("channel", type_=Text), "").label("woken")).subquery("locked")
        arrays = [bindparam(name, type_=ARRAY(outbox.c[name].type)) for name in _OUTBOX_COLUMNS]
        v = func.unnest(*arrays).table_valued(*_OUTBOX_COLUMNS).render_derived(name="v")
        rows = select(*(v.c[name] for name in _OUTBOX_COLUMNS)).select_from(v.join(locked, true()))
        statement = postgresql.insert(outbox).from_select(list(_OUTBOX_COLUMNS), rows)
        self._outbox_writes[outbox] = statement
        return statement

    def relay_connection(self, engine: AsyncEngine) -> HeldConnection:
        return HeldConnection(engine, _RELAY_SESSION)

    def not_among(self, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        """One array parameter, whatever its length: one prepared statement."""
        return column != all_(bindparam(name, type_=ARRAY(column.type)))

    def among(self, column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
        return column == any_(bindparam(name, type_=ARRAY(column.type)))

    def relay_claims(self, engine: AsyncEngine, topic: str, on_notify: Callable[[], None]) -> BucketClaims:
        return BucketClaims(engine, topic, on_notify)

    async def begin_pending_read(self, conn: AsyncConnection) -> None:
        await conn.execute(_WALK_PENDING_IN_ID_ORDER)

    def id_among(self, column: ColumnElement[Any], ids: Iterable[int]) -> ColumnElement[bool]:
        """One array parameter: a batch is hundreds of ids."""
        return column == any_(bindparam("ids", sorted(ids), type_=ARRAY(BigInteger)))

    async def begin_mark(self, conn: AsyncConnection) -> None:
        await conn.execute(_ASYNC_COMMIT)

    async def record_in_inbox(self, uow: Executor, tables: FrameworkTables,
                              envelopes: Sequence[Envelope]) -> tuple[set[str], set[ParkedKey]]:
        """One statement (the envelopes as four arrays)."""
        return await self.record_in_inbox_unless_parked(uow, self._inbox_insert_unless_parked(tables),
                                                        inbox_params(envelopes), tables, envelopes)

    def _inbox_insert_unless_parked(self, tables: FrameworkTables) -> Any:
        """Insert ``ids`` (with ``types``, ``sources``, ``keys``) unless their key is parked; built once
        per table (building it costs more than running it)."""
        statement = self._inbox_inserts.get(tables.inbox)
        if statement is None:
            arrays = [bindparam(name, type_=ARRAY(Text)) for name in ("ids", "types", "sources", "keys")]
            v = (func.unnest(*arrays).table_valued("event_id", "type", "source", "partition_key")
                 .render_derived(name="v"))
            statement = self._inbox_inserts[tables.inbox] = self.inbox_insert_unless_parked(
                tables, postgresql.insert, v, event_id=v.c.event_id, type=v.c.type, source=v.c.source,
                partition_key=v.c.partition_key)
        return statement

    async def lock_key(self, uow: Executor, key: str) -> None:
        await uow.execute(_LOCK_KEY, {"k": key})

    def consumer_lanes(self, pool_size: int) -> int:
        """A few overlap their round trips; half the pool stays for the service's own requests."""
        return max(1, min(4, pool_size // 2))

    def inbox_gate(self, tables: FrameworkTables) -> InboxGate:
        """The inbox insert that skips parked keys, as a CTE (built once per table)."""
        gate = self._inbox_gates.get(tables.inbox)
        if gate is None:
            gate = self._inbox_gates[tables.inbox] = InboxGate(self._inbox_insert_unless_parked(tables))
        return gate
