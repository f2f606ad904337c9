"""The relay: moves committed outbox rows to the transport, in per-key commit order.

It never remembers "the highest id sent": ids are assigned before commit, so a row with a
smaller id can commit after a larger one. Instead every pass asks for the rows that are still
unpublished, oldest first. A row that fails is retried with backoff and holds back only the
later rows of its own key; a transport that is down holds back everything and is retried with
exponential backoff plus jitter. Published rows stay for ``retention`` (the outbox doubles as the
service's replayable event log) and are then deleted.

On PostgreSQL the relay works on several batches at once. While one batch is being handed to the
transport, the next is read (leaving this one's ids out); the transport's acknowledgements and
the mark that records them are awaited in the background, up to ``BATCHES_IN_FLIGHT`` batches.
Ids handed over stay out of the reads until their mark commits. A key with a row not yet
acknowledged waits: its later rows are left for a later batch, so if that row fails, nothing
later of its key has gone out. On the relay's own connection the mark rides on the next read
(one statement: the UPDATE as a CTE beside the SELECT), or is written alone when no read comes
within ``mark_linger``: one round trip a pass instead of two. Losing a mark - a crash, a failed
mark - only means sending those rows again. The first copy already went out in order, before the
rows its key committed later; the consumers' inboxes drop the second.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta
from typing import Any, Awaitable, Iterable, Sequence

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.sql import Select

from isles.backoff import backoff_delay
from isles.config import env_prefix
from isles.errors import ConfigurationError
from isles.orm import as_utc, utcnow
from isles.outbox import ID as _ID
from isles.outbox import KEY as _KEY
from isles.outbox import SENT_COLUMNS, envelope_from_row
from isles.relay_claims import BUCKETS
from isles.routing import submit_routed
from isles.runtime import ServiceRuntime
from isles.transport.base import Transport, settled

log = logging.getLogger("isles.relay")


class Relay:
    def __init__(self, runtime: ServiceRuntime, transport: Transport, *, batch_size: int = 256,
                 poll_interval: float = 1.0, retention: timedelta = timedelta(days=7),
                 purge_interval: float = 60.0, base_backoff: float = 0.05, max_backoff: float = 30.0,
                 rebalance_interval: float = 2.0, mark_linger: float = 0.05):
        self.runtime = runtime
        self.transport = transport
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self.purge_interval = purge_interval
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.published_total = 0
        self._wake = asyncio.Event()
        self._outage_attempts = 0
        # One pass at a time: a drain() beside the background loop must not send rows twice.
        self._pass = asyncio.Lock()
        # On PostgreSQL several relay instances may share the outbox: each owns some key buckets.
        self.claims = runtime.dialect.relay_claims(runtime.database.engine, runtime.topic, self.wake)
        pool_max = runtime.database.config.pool.max
        if self.claims is not None and pool_max < _SMALLEST_POOL:
            raise ConfigurationError(
                f"its connection pool holds at most {pool_max}: the relay keeps one for its bucket claims and "
                "wake-ups, which would leave none for the service's requests, consumer and relay reads",
                service=runtime.name,
                fix=f"let the pool hold at least {_SMALLEST_POOL} ({env_prefix(runtime.name)}_DB_POOL_MAX, or "
                    "connection_limit in the database URL; 10 by default)")
        #: reads and marks on a connection of their own, one round trip each (PostgreSQL), when the
        #: pool can spare it; else each read and mark takes a pooled one
        self._conn = (runtime.dialect.relay_connection(runtime.database.engine)
                      if pool_max >= HOLD_FROM_POOL_MAX else None)
        #: the pending-rows query per set of buckets held (None: all), built once each
        self._pending_queries: dict[frozenset[int] | None, Select[Any]] = {}
        self._marks: tuple[Any, Any] | None = None  # (published, failed) mark statements, built once
        #: each pending-rows query with the mark of ``_to_mark`` in front of it, built once each
        self._marking_reads: dict[Select[Any], Select[Any]] = {}
        #: ids acknowledged whose mark waits for the next read (or mark_linger)
        self._to_mark: list[int] = []
        self._mark_timer: asyncio.TimerHandle | None = None
        #: how long an acknowledged batch's mark waits for the next read to carry it before it is
        #: written alone (seconds); under steady traffic the next read comes sooner
        self.mark_linger = mark_linger
        #: overlap reading, handing over and marking batches (needs more than one connection)
        self._overlap = runtime.dialect.concurrent_connections
        self.rebalance_interval = rebalance_interval
        self._last_rebalance = -1e9
        #: partition key -> when its failed row may be retried; later rows of the key wait too
        self._holds: dict[str, datetime] = {}
        self._holds_for: frozenset[int] | None = None  # the buckets the holds were loaded for
        #: background outcomes (acknowledgements, then the mark) of the last batches, oldest first
        self._marking: list[asyncio.Task[Any]] = []
        self._in_flight: set[int] = set()  # ids handed over whose mark has not committed yet
        #: per batch not acknowledged yet (oldest first): its keys, by the event set once it is
        self._unconfirmed: dict[asyncio.Event, frozenset[str]] = {}
        #: the next batch, read while the current one is handed over (PostgreSQL, backlog), and
        #: the buckets it was read for
        self._prefetch: tuple[asyncio.Task[Sequence[Any]], frozenset[int] | None] | None = None

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows, so latency does not wait for the poll."""
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled."""
        last_purge = time.monotonic()
        while True:
            self._wake.clear()
            try:
                sent = await self.publish_pending()
                self._outage_attempts = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # transport or database down: back off, keep every row
                self._outage_attempts += 1
                delay = backoff_delay(self._outage_attempts, base=self.base_backoff, cap=self.max_backoff)
                log.warning("service '%s': relay could not publish (attempt %d, retrying in %.2fs): %s",
                            self.runtime.name, self._outage_attempts, delay, _one_line(exc))
                await asyncio.sleep(delay)
                continue
            if time.monotonic() - last_purge >= self.purge_interval:
                last_purge = time.monotonic()
                try:
                    await self.purge_published()
                except Exception as exc:
                    log.warning("service '%s': outbox purge failed: %s", self.runtime.name, _one_line(exc))
            if sent >= self.batch_size:
                continue  # more is probably waiting
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except asyncio.TimeoutError:
                pass

    async def publish_pending(self) -> int:
        """One pass: hand up to ``batch_size`` ready rows to the transport; return how many.

        On PostgreSQL their acknowledgement and mark may still be on the way when this returns
        (``wait_for_marks`` waits for them); elsewhere they are done.
        """
        async with self._pass:
            if self.claims is not None and time.monotonic() - self._last_rebalance >= self.rebalance_interval:
                await self.wait_for_marks()  # a bucket given away must not carry rows sent but unmarked
                try:
                    await self.claims.rebalance()
                except Exception:
                    await self.claims.close()  # a broken claim connection holds nothing any more
                    raise
                self._last_rebalance = time.monotonic()
            return await self._publish_pending()

    async def close(self) -> None:
        """Give back this instance's buckets (other instances take them on their next rebalance)."""
        await self._take_prefetched()
        await self.wait_for_marks()
        if self._conn is not None:
            await self._conn.close()
        if self.claims is not None:
            await self.claims.close()

    async def _publish_pending(self) -> int:
        if self.claims is not None and not self.claims.held:
            return 0  # other instances hold every bucket; we stand by
        now = utcnow()
        await self._refresh_holds(now)
        rows = await self._next_batch()
        if not rows:
            return 0
        if len(rows) == self.batch_size and self._overlap:
            # A backlog: read the next batch while this one is sent (SQLite has one connection).
            read = self._fetch(self._pending_query(skip=[row[_ID] for row in rows]))
            self._prefetch = (asyncio.create_task(read), self._owned())
        try:
            return await self._send(rows, now)
        except BaseException:
            # This batch was not (all) handed over: the next must not overtake it. Read it again.
            if self._prefetch is not None:
                self._prefetch = (self._prefetch[0], None)
            raise

    async def _next_batch(self) -> Sequence[Any]:
        """The rows to send now: read ahead or read now, less the keys that must wait.

        A key waits while it has a failed row (``_holds``) or a row on its way that the transport
        has not acknowledged yet (``_unconfirmed``): should that row fail, nothing later of its
        key may have gone out.
        """
        while True:
            # An empty read-ahead may predate new commits: only a read made now says nothing is ready.
            rows = await self._take_prefetched() or await self._fetch(self._pending_query())
            waiting = self._holds.keys() | set().union(*self._unconfirmed.values())
            ready = [row for row in rows if row[_KEY] not in waiting] if waiting else rows
            if ready or not rows or not self._unconfirmed:
                return ready
            # Everything read waits behind a batch on its way: wait for its acknowledgement (not
            # its mark; the ids stay out of the reads until that commits).
            await next(iter(self._unconfirmed)).wait()

    async def _send(self, rows: Sequence[Any], now: datetime) -> int:
        """Hand ``rows`` to the transport in order; return how many were handed over.

        On PostgreSQL the outcome - acknowledgements, then the mark - is awaited in the background
        while the next batches are read and handed over (a bounded number at a time).
        """
        envelopes, sendable, unreadable = [], [], []
        broken: set[str] = set()
        for row in rows:
            if row[_KEY] in broken:
                continue  # behind its key's unreadable row
            try:
                envelopes.append(envelope_from_row(row))
                sendable.append(row)
            except Exception as exc:  # a row we cannot even read: retry it later, alone
                unreadable.append((row, exc))
                broken.add(row[_KEY])
        failed_marks = self._failed(unreadable, now)
        background = self._overlap
        if background:
            while len(self._marking) >= BATCHES_IN_FLIGHT:
                await self._wait_for(self._marking[0])
        # isles.routing: commands go to their target's command channel, events to runtime.topic
        outcome = await submit_routed(self.transport, self.runtime, envelopes) if envelopes else settled([])
        self._in_flight.update(row[_ID] for row in sendable)  # left out of the reads until marked
        acknowledged = asyncio.Event()
        self._unconfirmed[acknowledged] = frozenset(row[_KEY] for row in sendable)
        record = self._record(sendable, acknowledged, outcome, failed_marks, now)
        if background:
            self._marking.append(asyncio.create_task(record))
        else:  # one connection: nothing to overlap with
            await record
        return len(sendable)

    async def _record(self, rows: list[Any], acknowledged: asyncio.Event, outcome: Awaitable[list[Any]],
                      failed_marks: list[dict[str, Any]], now: datetime) -> None:
        """Wait for the transport's outcome of ``rows``, hold the keys that failed, mark the rows."""
        ok_ids: list[int] = []
        try:
            results = await outcome
            failed: list[tuple[Any, BaseException]] = []
            failed_keys = set()
            for row, result in zip(rows, results, strict=True):
                if result is None:
                    ok_ids.append(row[_ID])
                elif row[_KEY] not in failed_keys:
                    failed.append((row, result))
                    failed_keys.add(row[_KEY])
                # else: held back behind its key's failed row, which alone carries the retry time
            failed_marks = failed_marks + self._failed(failed, now)
        except BaseException as exc:  # no outcome at all: every row failed
            failed_marks = failed_marks + self._failed(_first_of_each_key(rows, exc), now)
            if not isinstance(exc, Exception):
                raise
        finally:
            # The holds are in place before the keys stop waiting for this batch.
            del self._unconfirmed[acknowledged]
            acknowledged.set()
            self._in_flight.difference_update({row[_ID] for row in rows}.difference(ok_ids))
        self.published_total += len(ok_ids)
        if self._conn is None:
            await self._mark(ok_ids, failed_marks, now)
            return
        if failed_marks:
            await self._mark([], failed_marks, now)
        self._defer_mark(ok_ids)

    def _defer_mark(self, ids: list[int]) -> None:
        """Leave the mark of ``ids`` to the next read, or to a mark of its own after ``mark_linger``."""
        if not ids:
            return
        self._to_mark.extend(ids)
        if self._mark_timer is None:
            self._mark_timer = asyncio.get_running_loop().call_later(self.mark_linger, self._mark_alone)

    def _mark_alone(self) -> None:
        self._mark_timer = None
        self._marking.append(asyncio.create_task(self._flush_marks()))

    def _take_marks(self) -> list[int]:
        """The ids of the deferred mark, now taken by whoever writes it (published "now": when the
        mark is written, at most ``mark_linger`` after the acknowledgement)."""
        if self._mark_timer is not None:
            self._mark_timer.cancel()
            self._mark_timer = None
        ids, self._to_mark = self._to_mark, []
        return ids

    async def _flush_marks(self) -> None:
        ids = self._take_marks()
        if ids:
            await self._mark(ids, [], utcnow())

    def _failed(self, failures: Sequence[tuple[Any, BaseException]], now: datetime) -> list[dict[str, Any]]:
        """Hold the key of each failed row until its retry time; return the rows' failure marks."""
        marks = []
        for row, exc in failures:
            attempts = row.attempts + 1
            retry_at = now + timedelta(seconds=backoff_delay(attempts, base=self.base_backoff, cap=self.max_backoff))
            self._holds[row.partition_key] = retry_at
            marks.append({"b_id": row.id, "b_attempts": attempts, "b_error": _one_line(exc)[:2000],
                          "b_retry_at": retry_at})
        if failures:
            log.warning("service '%s': %d outbox row(s) failed to publish and will be retried; first: %s",
                        self.runtime.name, len(failures), _one_line(failures[0][1]))
        return marks

    def _owned(self) -> frozenset[int]:
        return frozenset(self.claims.held) if self.claims is not None else frozenset()

    async def _take_prefetched(self) -> Sequence[Any]:
        """The batch read ahead; [] if there is none, or it was set aside."""
        if self._prefetch is None:
            return []
        (task, owned), self._prefetch = self._prefetch, None
        try:
            rows = await task
        except Exception:  # read again now: a real outage shows up there
            return []
        if owned != self._owned():
            return []  # set aside (its batch was not sent), or read for buckets no longer held
        return rows

    def _pending_query(self, skip: Iterable[int] = ()) -> tuple[Select[Any], dict[str, Any]]:
        """Ready rows of this relay's buckets, oldest first, without held keys, rows in flight and
        ``skip``: the statement (built once per set of buckets) and its parameters."""
        owned = self.claims.held if self.claims is not None and len(self.claims.held) < BUCKETS else None
        shape = frozenset(owned) if owned is not None else None
        query = self._pending_queries.get(shape)
        if query is None:
            outbox, dialect = self.runtime.tables.outbox, self.runtime.dialect
            query = (select(*(outbox.c[name] for name in SENT_COLUMNS))
                     .where(outbox.c.published_at.is_(None), dialect.not_among(outbox.c.partition_key, "held"),
                            dialect.not_among(outbox.c.id, "skip"))
                     .order_by(outbox.c.id).limit(bindparam("batch")))
            if self.claims is not None:
                buckets = self.claims.owned("partition_key")
                if buckets is not None:
                    query = query.where(buckets)
            if len(self._pending_queries) >= 8:  # buckets held before a rebalance: forget them
                self._pending_queries.clear()
            self._pending_queries[shape] = query
        return query, {"held": list(self._holds), "skip": list(self._in_flight.union(skip)), "batch": self.batch_size}

    async def _fetch(self, read: tuple[Select[Any], dict[str, Any]]) -> Sequence[Any]:
        query, params = read
        if self._conn is not None:
            marks = self._take_marks()
            if marks:
                return await self._fetch_and_mark(query, params, marks)
            return (await self._conn.execute(query, params)).all()
        async with self.runtime.database.engine.connect() as conn:
            await self.runtime.dialect.begin_pending_read(conn)
            rows: Sequence[Any] = (await conn.execute(query, params)).all()
            await conn.rollback()
        return rows

    async def _fetch_and_mark(self, query: Select[Any], params: dict[str, Any], ids: list[int]) -> Sequence[Any]:
        """The read, with the mark of ``ids`` in the same statement (they are in flight: not read)."""
        assert self._conn is not None
        try:
            rows = (await self._conn.execute(self._marking_read(query),
                                             {**params, "mark_ids": ids, "mark_now": utcnow()})).all()
        except Exception as exc:
            # The rows stay unpublished and are sent again (inboxes absorb it). The read is made
            # again without the mark, so a mark that keeps failing cannot stop the relay.
            log.warning("service '%s': could not mark %d published outbox row(s); they will be sent again: %s",
                        self.runtime.name, len(ids), _one_line(exc))
            self._in_flight.difference_update(ids)
            unmarked = set(ids)
            skip = [i for i in params["skip"] if i not in unmarked]
            return (await self._conn.execute(query, {**params, "skip": skip})).all()
        self._in_flight.difference_update(ids)
        return rows

    def _marking_read(self, query: Select[Any]) -> Select[Any]:
        """``query`` with the published mark of ``mark_ids`` in front: one statement, one commit."""
        marking = self._marking_reads.get(query)
        if marking is None:
            outbox = self.runtime.tables.outbox
            mark = (update(outbox).where(self.runtime.dialect.among(outbox.c.id, "mark_ids"))
                    .values(published_at=bindparam("mark_now", type_=outbox.c.published_at.type))
                    .returning(outbox.c.id).cte("marked"))
            marking = query.add_cte(mark)
            if len(self._marking_reads) >= 16:  # queries of buckets no longer held
                self._marking_reads.clear()
            self._marking_reads[query] = marking
        return marking

    def _mark_statements(self) -> tuple[Any, Any]:
        if self._marks is None:
            outbox = self.runtime.tables.outbox
            self._marks = (
                update(outbox).where(self.runtime.dialect.among(outbox.c.id, "ids"))
                .values(published_at=bindparam("now", type_=outbox.c.published_at.type)),
                update(outbox).where(outbox.c.id == bindparam("b_id")).values(
                    attempts=bindparam("b_attempts"), last_error=bindparam("b_error"),
                    next_attempt_at=bindparam("b_retry_at")))
        return self._marks

    async def _mark(self, ok_ids: list[int], failed: list[dict[str, Any]], now: datetime) -> None:
        """Record what was published (and which rows failed, when to retry them)."""
        published, failures = self._mark_statements()
        try:
            if self._conn is not None:  # each statement commits alone: either one lost only resends rows
                if ok_ids:
                    await self._conn.execute(published, {"ids": ok_ids, "now": now})
                if failed:
                    await self._conn.execute(failures, failed)
            else:
                async with self.runtime.database.engine.begin() as conn:
                    await self.runtime.dialect.begin_mark(conn)
                    if ok_ids:
                        await conn.execute(published, {"ids": ok_ids, "now": now})
                    if failed:
                        await conn.execute(failures, failed)
        except Exception as exc:
            if not self._overlap:  # marked in the foreground: the pass fails and is retried
                raise
            # The rows stay unpublished in the database and are sent again (inboxes absorb it).
            log.warning("service '%s': could not mark %d published outbox row(s); they will be sent again: %s",
                        self.runtime.name, len(ok_ids), _one_line(exc))
        finally:
            self._in_flight.difference_update(ok_ids)

    async def wait_for_marks(self) -> None:
        """Wait for the outcome (acknowledgements, then the mark) of every batch handed over."""
        while self._marking:
            await self._wait_for(self._marking[0])
        await self._flush_marks()

    async def _wait_for(self, marking: asyncio.Task[Any]) -> None:
        await asyncio.shield(marking)  # a caller cancelled here leaves it for close() to wait for
        if marking in self._marking:
            self._marking.remove(marking)

    async def _refresh_holds(self, now: datetime) -> None:
        """Keep ``_holds`` (keys whose failed row waits for its retry time) current.

        The database is the truth (``next_attempt_at`` of unpublished rows), read again whenever
        the set of buckets this relay owns changes, since a bucket taken over may carry another
        instance's holds. Between reloads, this relay is the only one that fails rows of its
        buckets, so it keeps them in memory: asking the database every pass meant scanning the
        whole backlog every pass.
        """
        owned = self._owned()
        if owned != self._holds_for:
            await self.wait_for_marks()  # the failures it records must be in the database we read
            outbox = self.runtime.tables.outbox
            async with self.runtime.database.engine.connect() as conn:
                rows = (await conn.execute(
                    select(outbox.c.partition_key, func.max(outbox.c.next_attempt_at))
                    .where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at > now)
                    .group_by(outbox.c.partition_key))).all()
                await conn.rollback()
            self._holds = {key: as_utc(until) for key, until in rows}
            self._holds_for = owned
        for key in [k for k, until in self._holds.items() if until <= now]:
            del self._holds[key]

    async def drain(self, timeout: float = 30.0) -> None:
        """Publish until nothing is ready (used by tests, demos and graceful shutdown)."""
        deadline = time.monotonic() + timeout
        while await self.publish_pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"service '{self.runtime.name}': outbox did not drain in {timeout}s")
        await self.wait_for_marks()

    async def purge_published(self) -> int:
        """Delete rows published longer ago than the retention window - but never the newest row.

        SQLite gives a new row the highest id in the table plus one: once the newest rows were
        purged, new events would take ids that positions already passed (a projection's
        checkpoint, ``System.drain``'s watermark) and be skipped. Keeping the newest row keeps ids
        rising; PostgreSQL's sequence never goes back anyway, and one row more costs nothing.
        """
        outbox = self.runtime.tables.outbox
        cutoff = utcnow() - self.retention
        newest = select(func.max(outbox.c.id)).scalar_subquery()
        async with self.runtime.database.engine.begin() as conn:
            result = await conn.execute(delete(outbox).where(outbox.c.published_at < cutoff, outbox.c.id < newest))
        return result.rowcount or 0


#: The smallest pool of a service whose relay claims buckets (PostgreSQL): the claim connection,
#: and one for everything else.
_SMALLEST_POOL = 2
#: The smallest pool the relay keeps a read/mark connection of: with the claim connection two are
#: held, and the service's requests, consumer and background marks keep the rest.
HOLD_FROM_POOL_MAX = 3

#: Batches handed over whose outcome (acknowledgements, then the mark) is still awaited
#: (PostgreSQL). With a backlog, acknowledgement and mark take longer than handing over the next
#: batch; four keep the relay busy with the next while earlier ones settle.
BATCHES_IN_FLIGHT = 4


def _first_of_each_key(rows: list[Any], exc: BaseException) -> list[tuple[Any, BaseException]]:
    firsts: dict[str, Any] = {}
    for row in rows:
        firsts.setdefault(row[_KEY], row)
    return [(row, exc) for row in firsts.values()]


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
