"""Consumers: handlers that run in the consuming service's own unit of work, exactly once.

For each delivered envelope, in one transaction of the consuming service:

1. if its key is parked (an earlier event of the key is dead), store it as ``waiting``;
2. insert its id into the inbox - if it is already there, this is a redelivery: do nothing;
3. run the handlers; commit.

A handler that raises is retried with backoff; after ``max_attempts`` the event becomes a
dead letter (with its error) and parks its key, so the key's later events wait in order while
other keys keep flowing. An event of an unknown type or with invalid data is dead-lettered at
once. ``retry`` replays a parked key's dead and waiting events in order.

Transports hand over what they have at hand - a shard's envelopes, in order - in one
``deliver`` call, and the calls that wait side by side share one transaction (a group commit):
one inbox statement that also skips parked keys, the handlers of each event in
arrival order, one commit. If anything in a shared transaction fails, it rolls back and each of
its envelopes is delivered alone as above, so retries, dead letters and parking stay per event.
``batch_size=1`` gives every event its own transaction.

A lone event whose handlers are all replicas (and version-guarded cache follows) goes further: on
PostgreSQL its inbox row and every write in one statement, sent in autocommit - one round trip
instead of BEGIN, the inbox insert, one per write and COMMIT (:mod:`isles.dialects.inbox_gate`);
on SQLite the same statements in one transaction sent straight to the ``sqlite3`` connection,
without SQLAlchemy's session and execution machinery around each (:mod:`isles.dialects.sqlite_gate`).
A duplicate, a parked key or any error there falls back to the transaction above.
"""
from __future__ import annotations

import asyncio
import logging
import traceback
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from typing import Any, Sequence

from sqlalchemy import bindparam, select, update

from isles.backoff import backoff_delay
from isles.database import is_connection_error
from isles.errors import ConfigurationError, EventError, UnknownEventType
from isles.events import Envelope, current_traceparent
from isles.held_connection import HeldConnection
from isles.orm import utcnow
from isles.relay import HOLD_FROM_POOL_MAX as RELAY_HOLDS_FROM_POOL_MAX
from isles.retention import too_old
from isles.runtime import ServiceRuntime
from isles.subscriptions import Subscription
from isles.tables import DEAD, RESOLVED, WAITING
from isles.unit_of_work import UnitOfWork

log = logging.getLogger("isles.consumer")

#: the smallest pool a consumer keeps a connection of for its one-statement deliveries: one more
#: than the relay needs to hold its two (claims, reads and marks), so requests keep the rest
_HOLD_FROM_POOL_MAX = RELAY_HOLDS_FROM_POOL_MAX + 1


@dataclass(slots=True)
class _Delivery:
    envelope: Envelope
    subs: list[Subscription]
    payloads: list[Any]
    taken: bool = False  # a shared transaction has it
    #: True: handled (or a duplicate), committed. False: deliver it alone.
    outcome: asyncio.Future[bool] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


async def _run_handlers(uow: "UnitOfWork | _NoDatabase", envelope: Envelope, subs: list[Subscription],
                        payloads: list[Any]) -> None:
    """Run ``envelope``'s handlers in ``uow``: ``uow.incoming`` is the envelope meanwhile, and the
    events they publish continue its trace."""
    token = current_traceparent.set(envelope.traceparent)
    uow.incoming = envelope
    try:
        for sub, payload in zip(subs, payloads, strict=True):
            await sub.fn(payload, uow)
    finally:
        uow.incoming = None
        current_traceparent.reset(token)


class _NoDatabase:
    """What a repeatable handler gets for a unit of work in a one-statement delivery: it must not
    touch the database (see :attr:`Subscription.repeatable`); if it does, the delivery goes the
    usual way, where it has a real one."""

    def __init__(self, runtime: ServiceRuntime):
        self.runtime = runtime
        self.service = runtime.name
        self.incoming: Envelope | None = None

    def __getattr__(self, name: str) -> Any:
        raise ConfigurationError(f"a handler declared repeatable used uow.{name}", service=self.service,
                                 fix="declare it repeatable only if it never touches the database")


@dataclass
class RetryReport:
    resolved: int = 0
    failed: list[tuple[int, str]] = field(default_factory=list)
    keys: int = 0


class Consumer:
    """Delivers envelopes to one service's handlers with inbox de-duplication."""

    def __init__(self, runtime: ServiceRuntime, subscriptions: list[Subscription], *, max_attempts: int = 5,
                 base_backoff: float = 0.02, max_backoff: float = 2.0, batch_size: int = 100,
                 inbox_retention: timedelta | None = None):
        self.runtime = runtime
        #: events older than this are refused (isles.retention); None: the inbox is never purged
        self.inbox_retention = inbox_retention
        self.by_type: dict[str, list[Subscription]] = {}
        for sub in subscriptions:
            self.by_type.setdefault(sub.type, []).append(sub)
        self.max_attempts = max_attempts
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        if batch_size < 1:
            raise ConfigurationError(f"consumer batch_size is {batch_size}", service=runtime.name,
                                     fix="use 1 (one transaction per event) or more")
        self.batch_size = batch_size
        #: for one-statement deliveries (None where the database cannot), and the connection they
        #: run on when the pool has room for one to be held (it opens on first use)
        self._gate = runtime.dialect.inbox_gate(runtime.tables)
        self._held = (HeldConnection(runtime.database.engine)
                      if self._gate is not None and runtime.dialect.concurrent_connections
                      and runtime.database.config.pool.max >= _HOLD_FROM_POOL_MAX else None)
        self._waiting: list[list[_Delivery]] = []  # chunks waiting for the next shared transaction
        # Shared transactions run at most this many at a time; the next one gathers meanwhile.
        # SQLite has one connection; on PostgreSQL a few overlap their round trips.
        self._turn = asyncio.Semaphore(runtime.dialect.consumer_lanes(runtime.database.config.pool_size))
        self.batches = 0
        self.in_one_statement = 0  # events handled with one statement (see the module doc)
        self.handled = 0
        self.duplicates = 0
        self.dead_lettered = 0

    @property
    def types(self) -> set[str]:
        return set(self.by_type)

    # -- delivery ---------------------------------------------------------------------------------
    async def deliver(self, envelopes: Sequence[Envelope]) -> None:
        """Handle envelopes of one shard, in order; returns once every outcome is committed.

        The transport may then acknowledge them all. If this raises (our database is down), none
        should be: those already committed come again and the inbox drops them.
        """
        run: list[_Delivery] = []
        for envelope in envelopes:
            subs = self.by_type.get(envelope.type)
            if subs is None and envelope.type in self.runtime.registry:
                continue  # a known type this service does not handle
            # older than the inbox remembers, it may be a duplicate - refuse it
            refused = too_old(envelope, self.inbox_retention, service=self.runtime.name)
            if refused is not None:
                error: Exception = refused
            elif subs is None:
                error = UnknownEventType(
                    f"received event {envelope.id} of type {envelope.type!r}, which no service of the system "
                    "declares", service=self.runtime.name,
                    fix="deploy the producer's declaration of this type (or stop publishing it), "
                        "then `isles dlq retry`")
            else:
                try:
                    current = self.runtime.registry.upcast(envelope, service=self.runtime.name)
                    run.append(_Delivery(envelope, subs, [sub.parse(current, self.runtime.name) for sub in subs]))
                    continue
                except EventError as exc:
                    error = exc
            await self._deliver_run(run)  # the events before it first: dead-lettering parks the key
            run = []
            await self._dead_letter(envelope, error, attempts=1)
        await self._deliver_run(run)

    async def _deliver_run(self, run: list["_Delivery"]) -> None:
        for start in range(0, len(run), self.batch_size):
            chunk = run[start:start + self.batch_size]
            if self.batch_size > 1:
                await self._deliver_together(chunk)
            for delivery in chunk:  # in order: a key's later events wait for its earlier ones
                if not (delivery.outcome.done() and delivery.outcome.result()):
                    await self._deliver_alone(delivery)

    async def _deliver_alone(self, delivery: "_Delivery") -> None:
        """One transaction for one event, retried with backoff, dead-lettered after ``max_attempts``."""
        envelope = delivery.envelope
        attempt = 0
        while True:
            attempt += 1
            try:
                await self._handle(envelope, delivery.subs, delivery.payloads, replaying=None)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_connection_error(exc):
                    raise  # our own database is down: do not acknowledge; the event comes again
                if attempt >= self.max_attempts:
                    log.error("service '%s': handler failed %d times for %s %s (key %s); dead-lettered: %s",
                              self.runtime.name, attempt, envelope.type, envelope.id, envelope.partitionkey,
                              _summary(exc))
                    await self._dead_letter(envelope, exc, attempts=attempt)
                    return
                await asyncio.sleep(backoff_delay(attempt, base=self.base_backoff, cap=self.max_backoff))

    async def _handle(self, envelope: Envelope, subs: list[Subscription], payloads: list[Any],
                      replaying: int | None) -> bool:
        """One try in one transaction. Returns False when it was a duplicate or was parked."""
        async with UnitOfWork(self.runtime) as uow:
            if replaying is not None:
                await self._lock_key(uow, envelope)  # serialise with deliveries parking this key
            elif await self._park_if_needed(uow, envelope):
                return False
            inserted = await uow.execute(self._inbox_insert, self.runtime.dialect.inbox_row(envelope))
            if inserted.rowcount == 0:
                self.duplicates += 1
                if replaying is not None:
                    await self._resolve(uow, replaying)
                    return True
                await uow.rollback()
                return False
            await _run_handlers(uow, envelope, subs, payloads)
            if replaying is not None:
                await self._resolve(uow, replaying)
        self.handled += 1
        return True

    # -- group commit ------------------------------------------------------------------------------
    async def _deliver_together(self, chunk: list["_Delivery"]) -> None:
        """Handle ``chunk`` in a transaction shared with the chunks other shards are delivering.

        Each delivery's ``outcome`` ends True once it is committed, or False when it must be
        delivered alone (its key is parked, or the shared transaction failed). A chunk is never
        split between transactions, so an outcome never skips ahead of an earlier event's.
        """
        self._waiting.append(chunk)
        async with self._turn:
            while not chunk[0].taken:  # lead the next transaction (and any before ours)
                batch: list[_Delivery] = []
                while self._waiting and (not batch or len(batch) + len(self._waiting[0]) <= self.batch_size):
                    batch.extend(self._waiting.pop(0))
                for member in batch:
                    member.taken = True
                await self._lead(batch)
        await asyncio.gather(*(d.outcome for d in chunk))

    async def _lead(self, batch: list["_Delivery"]) -> None:
        try:
            await self._handle_batch(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_connection_error(exc):
                raise
            log.debug("service '%s': shared transaction of %d events failed, delivering them one by one: %s",
                      self.runtime.name, len(batch), _summary(exc))
        finally:
            for member in batch:
                if not member.outcome.done():
                    member.outcome.set_result(False)

    async def _handle_batch(self, batch: list["_Delivery"]) -> None:
        """One transaction for ``batch``; sets each delivery's outcome once it is committed."""
        if len(batch) == 1 and await self._in_one_statement(batch[0]):
            self.batches += 1
            self.handled += 1
            self.in_one_statement += 1
            if not batch[0].outcome.done():
                batch[0].outcome.set_result(True)
            return
        async with UnitOfWork(self.runtime) as uow:
            new, todo = await self._record_in_inbox(uow, batch)
            if not todo:
                return
            handled = 0
            for delivery in todo:
                envelope = delivery.envelope
                if envelope.id not in new:
                    continue  # handled before (or a second copy in this batch)
                new.discard(envelope.id)
                await _run_handlers(uow, envelope, delivery.subs, delivery.payloads)
                handled += 1
        self.batches += 1
        self.handled += handled
        self.duplicates += len(todo) - handled
        for delivery in todo:
            if not delivery.outcome.done():  # (cancelled if its transport stopped waiting)
                delivery.outcome.set_result(True)

    async def _in_one_statement(self, delivery: "_Delivery") -> bool:
        """Handle a lone event with one statement, if its handlers allow (see the module doc).

        True once it is committed; False when it must go the usual way: a handler that is not a
        replica (nor repeatable), a duplicate, a parked key, or an error (which the usual way
        meets again, with its retries and dead letters).
        """
        gate = self._gate
        if gate is None or not all(sub.gated_writes is not None or sub.repeatable for sub in delivery.subs):
            return False
        envelope = delivery.envelope
        writes: list[tuple[Any, dict[str, Any]]] = []
        for i, sub in enumerate(delivery.subs):
            if sub.gated_writes is None:
                continue
            gated = sub.gated_writes(envelope, self.runtime.dialect, gate.condition, f"s{i}_")
            if gated is None:
                return False
            writes.extend(gated)
        repeatable = [i for i, sub in enumerate(delivery.subs) if sub.repeatable]
        try:
            if repeatable:
                await _run_handlers(_NoDatabase(self.runtime), envelope, [delivery.subs[i] for i in repeatable],
                                    [delivery.payloads[i] for i in repeatable])
            inserted = await gate.deliver(envelope, writes, self.runtime.database.engine, self._held)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_connection_error(exc):
                raise
            log.debug("service '%s': %s %s in one statement failed, delivering it in a transaction: %s",
                      self.runtime.name, envelope.type, envelope.id, _summary(exc))
            return False
        return inserted

    async def close(self) -> None:
        """Give back the connection held for one-statement deliveries."""
        if self._held is not None:
            await self._held.close()

    async def _record_in_inbox(self, uow: UnitOfWork, batch: list["_Delivery"]) -> tuple[set[str], list["_Delivery"]]:
        """Insert the batch's event ids into the inbox, but none of a parked key.

        Returns the ids inserted (the events to handle now) and the deliveries that are not
        parked (handled now, or duplicates).
        """
        new, parked = await self.runtime.dialect.record_in_inbox(uow, self.runtime.tables,
                                                                 [d.envelope for d in batch])
        if not parked:
            return new, batch
        return new, [d for d in batch if (d.envelope.source, d.envelope.partitionkey) not in parked]

    # The two statements every delivery runs, built once: building costs more than running them.
    @cached_property
    def _inbox_insert(self) -> Any:
        insert = self.runtime.dialect.insert(self.runtime.tables.inbox)
        return insert.on_conflict_do_nothing(index_elements=["event_id"])

    @cached_property
    def _parked_query(self) -> Any:
        dl = self.runtime.tables.dead_letters
        return (select(dl.c.id).where(dl.c.source == bindparam("source"), dl.c.partition_key == bindparam("key"),
                                      dl.c.status.in_((DEAD, WAITING))).limit(1))

    async def _lock_key(self, uow: UnitOfWork, envelope: Envelope) -> None:
        await self.runtime.dialect.lock_key(uow, f"{envelope.source}|{envelope.partitionkey}")

    async def _parked(self, uow: UnitOfWork, envelope: Envelope) -> bool:
        hit = await uow.scalar(self._parked_query, {"source": envelope.source, "key": envelope.partitionkey})
        return hit is not None

    async def _park_if_needed(self, uow: UnitOfWork, envelope: Envelope) -> bool:
        if not await self._parked(uow, envelope):
            return False
        await self._lock_key(uow, envelope)  # serialise with a concurrent `dlq retry` of this key
        if not await self._parked(uow, envelope):
            return False
        dl = self.runtime.tables.dead_letters
        known = await uow.scalar(select(dl.c.id).where(dl.c.event_id == envelope.id).limit(1))
        if known is None:
            await uow.execute(dl.insert().values(
                event_id=envelope.id, type=envelope.type, source=envelope.source,
                partition_key=envelope.partitionkey, envelope=envelope.to_structured().decode(),
                status=WAITING, error="waiting: an earlier event of this key is dead-lettered",
                attempts=0, failed_at=utcnow()))
            log.info("service '%s': %s %s waits behind a dead letter of key %s",
                     self.runtime.name, envelope.type, envelope.id, envelope.partitionkey)
        await uow.commit()
        return True

    async def _dead_letter(self, envelope: Envelope, error: BaseException, *, attempts: int) -> None:
        dl = self.runtime.tables.dead_letters
        inbox = self.runtime.tables.inbox
        async with UnitOfWork(self.runtime) as uow:
            await self._lock_key(uow, envelope)
            done = await uow.scalar(select(inbox.c.event_id).where(inbox.c.event_id == envelope.id))
            known = await uow.scalar(select(dl.c.id).where(dl.c.event_id == envelope.id).limit(1))
            if done is not None or known is not None:
                return  # handled or dead-lettered by an earlier delivery
            await uow.execute(dl.insert().values(
                event_id=envelope.id, type=envelope.type, source=envelope.source,
                partition_key=envelope.partitionkey, envelope=envelope.to_structured().decode(),
                status=DEAD, error=_describe(error), attempts=attempts, failed_at=utcnow()))
        self.dead_lettered += 1

    async def _resolve(self, uow: UnitOfWork, dead_letter_id: int) -> None:
        dl = self.runtime.tables.dead_letters
        await uow.execute(update(dl).where(dl.c.id == dead_letter_id).values(status=RESOLVED, resolved_at=utcnow()))

    # -- replay -------------------------------------------------------------------------------------
    async def retry(self, dead_letter_id: int | None = None) -> RetryReport:
        """Replay dead letters: the key of ``dead_letter_id``, or every parked key when None.

        Each key's dead and waiting events are replayed in arrival order; the first that fails
        again stays dead (with its new error) and keeps the key parked.
        """
        dl = self.runtime.tables.dead_letters
        query = select(dl.c.source, dl.c.partition_key).where(dl.c.status == DEAD)
        if dead_letter_id is not None:
            query = select(dl.c.source, dl.c.partition_key).where(dl.c.id == dead_letter_id,
                                                                  dl.c.status.in_((DEAD, WAITING)))
        async with self.runtime.database.engine.connect() as conn:
            keys = list(dict.fromkeys((await conn.execute(query.order_by(dl.c.id))).all()))
        report = RetryReport(keys=len(keys))
        for source, key in keys:
            await self._retry_key(source, key, report)
        return report

    async def _retry_key(self, source: str, key: str, report: RetryReport) -> None:
        dl = self.runtime.tables.dead_letters
        while True:
            async with self.runtime.database.engine.connect() as conn:
                row = (await conn.execute(select(dl).where(
                    dl.c.source == source, dl.c.partition_key == key, dl.c.status.in_((DEAD, WAITING)))
                    .order_by(dl.c.id).limit(1))).first()
            if row is None:
                return
            envelope = Envelope.from_structured(row.envelope.encode())
            subs = self.by_type.get(envelope.type)
            try:
                refused = too_old(envelope, self.inbox_retention, service=self.runtime.name)  # isles.retention
                if refused is not None:
                    raise refused
                if subs is None:
                    if envelope.type not in self.runtime.registry:
                        raise UnknownEventType(f"event type {envelope.type!r} is still unknown",
                                               service=self.runtime.name,
                                               fix="deploy the producer's declaration of this type")
                    payloads: list[Any] = []
                    subs = []
                else:
                    current = self.runtime.registry.upcast(envelope, service=self.runtime.name)
                    payloads = [sub.parse(current, self.runtime.name) for sub in subs]
                await self._handle(envelope, subs, payloads, replaying=row.id)
                report.resolved += 1
            except Exception as exc:
                async with self.runtime.database.engine.begin() as conn:
                    await conn.execute(update(dl).where(dl.c.id == row.id).values(
                        status=DEAD, error=_describe(exc), attempts=row.attempts + 1, failed_at=utcnow()))
                report.failed.append((row.id, _summary(exc)))
                return


def _summary(exc: BaseException) -> str:
    text_ = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text_[0] if text_ else ''}"


def _describe(exc: BaseException) -> str:
    """The error as stored with a dead letter: summary plus the innermost frames."""
    frames = traceback.format_exception(type(exc), exc, exc.__traceback__, limit=-3)
    return (str(exc) if isinstance(exc, EventError) else _summary(exc) + "\n" + "".join(frames))[:4000]


__all__ = ["Consumer", "RetryReport"]
