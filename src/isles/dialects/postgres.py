"""PostgreSQL: many connections and relay instances, so order and ownership are made explicit.

* Same-key producer transactions queue on an advisory lock until commit, so outbox ids follow
  per-key commit order, and a NOTIFY at commit wakes the relays at once.
* Relay instances share an outbox through bucket claims (see :mod:`isles.relay_claims`).
* A consumer's batch enters the inbox in one statement that also skips parked keys.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Sequence

from sqlalchemy import ARRAY, BigInteger, ColumnElement, Table, Text, any_, bindparam, func, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from isles.dialects.base import Dialect, Executor, ParkedKey
from isles.events import Envelope
from isles.orm import utcnow
from isles.relay_claims import BucketClaims, notify_channel
from isles.tables import DEAD, WAITING, FrameworkTables

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

_LOCK_KEY = text(f"SELECT pg_advisory_xact_lock(hashtextextended(:k, {_CONSUMER_KEYS}))")


class PostgresDialect(Dialect):
    name = "postgresql"
    concurrent_connections = True

    def __init__(self) -> None:
        self._inbox_inserts: dict[Table, Any] = {}

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    async def order_outbox_keys(self, uow: Executor, keys: Sequence[str], topic: str) -> None:
        # Sorted, so two transactions sharing keys take their locks in one order (no deadlock).
        await uow.execute(_ORDER_KEYS, {"keys": sorted(set(keys)), "channel": notify_channel(topic)})

    def relay_claims(self, engine: AsyncEngine, topic: str, on_notify: Callable[[], None]) -> BucketClaims:
        return BucketClaims(engine, topic, on_notify)

    async def begin_pending_read(self, conn: AsyncConnection) -> None:
        await conn.execute(_WALK_PENDING_IN_ID_ORDER)

    def id_among(self, column: Any, ids: Iterable[int]) -> ColumnElement[bool]:
        """One array parameter: a batch is hundreds of ids."""
        return column == any_(bindparam("ids", sorted(ids), type_=ARRAY(BigInteger)))

    async def begin_mark(self, conn: AsyncConnection) -> None:
        await conn.execute(_ASYNC_COMMIT)

    async def record_in_inbox(self, uow: Executor, tables: FrameworkTables,
                              envelopes: Sequence[Envelope]) -> tuple[set[str], set[ParkedKey]]:
        """One statement; the parked keys are looked up only when some id was not inserted."""
        new = set(await uow.scalars(self._inbox_insert_unless_parked(tables), {
            "ids": [e.id for e in envelopes], "types": [e.type for e in envelopes],
            "sources": [e.source for e in envelopes], "keys": [e.partitionkey for e in envelopes],
            "now": utcnow()}))
        if len(new) == len(envelopes):
            return new, set()
        return new, await self.parked_keys(uow, tables, sorted({e.partitionkey for e in envelopes if e.id not in new}))

    def _inbox_insert_unless_parked(self, tables: FrameworkTables) -> Any:
        """Insert ``ids`` (with ``types``, ``sources``, ``keys``) unless their key is parked; built once
        per table (building it costs more than running it)."""
        statement = self._inbox_inserts.get(tables.inbox)
        if statement is not None:
            return statement
        inbox, dl = tables.inbox, tables.dead_letters
        arrays = [bindparam(name, type_=ARRAY(Text)) for name in ("ids", "types", "sources", "keys")]
        v = func.unnest(*arrays).table_valued("event_id", "type", "source", "partition_key").render_derived(name="v")
        parked = (select(dl.c.id).where(dl.c.source == v.c.source, dl.c.partition_key == v.c.partition_key,
                                        dl.c.status.in_((DEAD, WAITING))).exists())
        rows = select(v.c.event_id, v.c.type, v.c.source, v.c.partition_key,
                      bindparam("now", type_=inbox.c.processed_at.type)).where(~parked)
        statement = (postgresql.insert(inbox)
                     .from_select(["event_id", "type", "source", "partition_key", "processed_at"], rows)
                     .on_conflict_do_nothing(index_elements=["event_id"]).returning(inbox.c.event_id))
        self._inbox_inserts[tables.inbox] = statement
        return statement

    async def lock_key(self, uow: Executor, key: str) -> None:
        await uow.execute(_LOCK_KEY, {"k": key})

    def consumer_lanes(self, pool_size: int) -> int:
        """A few overlap their round trips; half the pool stays for the service's own requests."""
        return max(1, min(4, pool_size // 2))
