"""Sharing one service's outbox between several relay instances on PostgreSQL.

``FOR UPDATE SKIP LOCKED`` alone would let instance A publish version 5 of an entity while
instance B, skipping A's locked row, publishes version 6 first. Instead the key space is cut
into ``BUCKETS`` buckets (a hash of the partition key) and each bucket is owned by one relay at
a time through a session-level advisory lock on a dedicated connection:

* a relay publishes only rows of the buckets it holds, so one key is only ever published by one
  instance, in id (= per-key commit) order;
* a relay that dies loses its connection and PostgreSQL releases its buckets at once - no lease
  to time out;
* every ``rebalance_interval`` each relay counts the instances holding this service's buckets and
  keeps its fair share (releasing extras between passes, never during one).

The same connection LISTENs on the service's channel: commits ``NOTIFY`` it (see UnitOfWork), so
a relay wakes on commit instead of waiting for its poll interval. The module knows only an
engine and a topic name, so the PostgreSQL dialect and the relay can both use it.
"""
from __future__ import annotations

import logging
import math
import zlib
from typing import Callable

from sqlalchemy import ColumnElement, TextClause, false, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("isles.relay")

BUCKETS = 32
PRESENCE = BUCKETS  # every live relay holds this lock in shared mode: counting holders counts relays


def lock_class(topic: str) -> int:
    """The advisory lock class (first int4 key) of the buckets of the outbox feeding ``topic``:
    stable across processes."""
    return zlib.crc32(f"isles-relay:{topic}".encode()) & 0x7FFFFFFF


def notify_channel(topic: str) -> str:
    """The LISTEN/NOTIFY channel that commits to the outbox feeding ``topic`` wake its relays on."""
    return f"isles_outbox_{zlib.crc32(topic.encode()):08x}"


def bucket_sql(column: str) -> str:
    """SQL for a partition key's bucket (computed by the database, no extra column needed)."""
    return f"mod(abs(hashtext({column})), {BUCKETS})"


class BucketClaims:
    """The buckets one relay instance holds, on its own connection."""

    def __init__(self, engine: AsyncEngine, topic: str, on_notify: Callable[[], None]):
        self.engine = engine
        self.topic = topic
        self.on_notify = on_notify
        self.held: set[int] = set()
        self._conn: AsyncConnection | None = None
        self._class = lock_class(topic)

    def owned(self, column: str) -> ColumnElement[bool] | TextClause | None:
        """SQL keeping the rows whose ``column`` (partition key) falls in a bucket held here; None
        when every bucket is.

        The bucket numbers are written into the SQL (they are our own small ints): as a parameter,
        PostgreSQL's generic plan for the prepared statement sorted the whole backlog each pass
        instead of walking the pending index in id order.
        """
        if len(self.held) >= BUCKETS:
            return None
        if not self.held:
            return false()
        buckets = ", ".join(str(int(b)) for b in sorted(self.held))
        return text(f"{bucket_sql(column)} IN ({buckets})")

    async def open(self) -> None:
        self._conn = await self.engine.connect()
        await self._conn.execution_options(isolation_level="AUTOCOMMIT")
        await self._conn.execute(text("SELECT pg_advisory_lock_shared(:cls, :presence)"),
                                 {"cls": self._class, "presence": PRESENCE})
        raw = await self._conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None  # an open connection has its asyncpg connection
        await driver.add_listener(notify_channel(self.topic), lambda *_: self.on_notify())

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        self.held.clear()
        if conn is None:
            return
        try:
            # Closing returns the connection to the pool, and session-level advisory locks outlive
            # that (the pool only rolls back): drop the session instead, which releases them all.
            await conn.invalidate()
        except Exception as exc:  # already broken: the server released them anyway
            log.debug("closing relay claim connection: %s", exc)
        finally:
            await conn.close()

    async def rebalance(self) -> set[int]:
        """Take or give back buckets so each live relay of the service holds a fair share."""
        if self._conn is None:
            await self.open()
        assert self._conn is not None
        relays = await self._conn.scalar(text(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype = 'advisory' AND classid = :cls "
            "AND objid = :presence AND granted AND database = (SELECT oid FROM pg_database "
            "WHERE datname = current_database())"), {"cls": self._class, "presence": PRESENCE})
        fair = math.ceil(BUCKETS / max(int(relays or 0), 1))
        for bucket in sorted(self.held)[fair:]:
            await self._conn.execute(text("SELECT pg_advisory_unlock(:cls, :b)"), {"cls": self._class, "b": bucket})
            self.held.discard(bucket)
        for bucket in range(BUCKETS):
            if len(self.held) >= fair:
                break
            if bucket in self.held:
                continue
            got = await self._conn.scalar(text("SELECT pg_try_advisory_lock(:cls, :b)"),
                                          {"cls": self._class, "b": bucket})
            if got:
                self.held.add(bucket)
        return self.held
