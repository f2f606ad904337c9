"""Sagas (process managers): ordered steps across services, compensated in reverse on failure.

A saga lives in one service's database. It is declared as ordered steps; each step's action is a
command to a service (answered by a reply event, see :mod:`isles.messaging`) or a local change,
and its compensation undoes it::

    order_saga = Saga("order", version=1, steps=[
        Step("reserve", send=ReserveInventory, compensate=ReleaseInventory, timeout=30),
        Step("authorize", send=AuthorizePayment, compensate=VoidPayment, timeout=30),
        Step("ship", send=CreateShipment),
        Step("confirm", local=confirm_order),        # async def confirm_order(saga, uow)
    ])
    orders = Service("orders", metadata=..., sagas=[order_saga])

    async with orders.unit_of_work() as uow:           # e.g. in the POST /orders route
        uow.add(order)
        saga_id = await order_saga.start(uow, order_id=str(order.id), quantity=2, amount=100)

A command is built from the saga's data (the ``start`` keywords plus every reply's ``result``)
by field name; ``args=`` / ``compensate_args=`` (``fn(saga) -> dict``) add or override fields.

**One transaction per transition.** Starting, and every reply or timer that moves a saga, runs in
one unit of work of the saga's service: the saga's row (``isles_sagas``: status, step, data,
history, the command it waits for), the next command (an outbox row), and its timers
(``isles_saga_timers``) commit together. Replies arrive through the service's inbox, so each is
applied once; a crash anywhere leaves the last committed transition, and the saga resumes from
it without sending a step's command twice (the outbox re-sends the same command id and the
target's inbox drops the copy).

**Timeouts and compensation.** A step with ``timeout=`` gets a durable timer; the service's saga
worker (:class:`SagaWorker`, started by the System with the service's consumer) fires due timers.
A timed-out step compensates, starting with its own compensation: its command may still run, and
the target receives the compensation after it (one key, one channel, in order). A failed reply
compensates the steps before it. Compensations run in reverse order; a compensation that fails
(failed reply, or no reply within the step's timeout) is retried with exponential backoff, and
after ``max_compensation_attempts`` the saga becomes ``failed`` and a dead letter names it
(``isles dlq list``); ``isles sagas retry ID`` (or ``isles dlq retry``) resumes its compensation.
Compensations must therefore be idempotent (a retry may follow one that ran but did not answer).

**Versions.** An instance records the definition version it started on and finishes on it, as
long as the service still declares that version. A newer version may declare
``migrations={1: fn}`` (``fn(instance) -> None`` edits ``instance.data`` / ``instance.step``):
an instance of version 1 whose definition is gone is moved to the new version, in the transaction
that next touches it.
"""
from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
)

from pydantic import ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
    update,
)

from isles.backoff import backoff_delay
from isles.errors import ConfigurationError, EventError
from isles.events import Envelope, Event
from isles.messaging import Command, Replied, reply_model
from isles.orm import as_utc, utcnow
from isles.subscriptions import Subscription
from isles.tables import DEAD, RESOLVED

if TYPE_CHECKING:
    from isles.unit_of_work import UnitOfWork

log = logging.getLogger("isles.sagas")

SAGAS = "isles_sagas"
SAGA_TIMERS = "isles_saga_timers"

#: saga states: ``running`` waits for a step's reply; ``compensating`` undoes the steps done;
#: ``completed`` and ``compensated`` are final; ``failed``: a compensation kept failing (dead letter)
RUNNING, COMPENSATING, COMPLETED, COMPENSATED, FAILED = "running", "compensating", "completed", "compensated", "failed"
FINAL = frozenset({COMPLETED, COMPENSATED})
#: timer kinds: a step's ``timeout``; a ``retry`` of a failed compensation
TIMEOUT, RETRY = "timeout", "retry"

_Id = BigInteger().with_variant(Integer(), "sqlite")


@dataclass(frozen=True)
class SagaTables:
    sagas: Table
    timers: Table


def install(metadata: MetaData) -> SagaTables:
    """Add the saga tables to a service's metadata (idempotent); migrated by isles step ``sagas:1``."""
    if SAGAS in metadata.tables:
        return SagaTables(metadata.tables[SAGAS], metadata.tables[SAGA_TIMERS])
    sagas = Table(
        SAGAS, metadata,
        Column("id", String(36), primary_key=True),
        Column("name", String(100), nullable=False),
        Column("version", Integer, nullable=False),
        Column("status", String(16), nullable=False),
        Column("step", Integer, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("waiting_for", String(36)),
        Column("data", Text, nullable=False),
        Column("history", Text, nullable=False),
        Column("error", Text),
        Column("revision", Integer, nullable=False),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
        Index("idx_isles_sagas_status", "status"),
    )
    timers = Table(
        SAGA_TIMERS, metadata,
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("saga_id", String(36), nullable=False),
        Column("kind", String(16), nullable=False),
        Column("token", String(36), nullable=False),
        Column("due_at", DateTime(timezone=True), nullable=False),
        Index("idx_isles_saga_timers_due_at", "due_at"),
        Index("idx_isles_saga_timers_saga_id", "saga_id"),
    )
    return SagaTables(sagas, timers)


class StepFailed(Exception):
    """Raised by a local action (before it changes anything) to fail its step: the saga compensates."""


class SagaStuck(Event, type="isles.saga.compensation.failed"):
    """The dead letter of a saga whose compensation kept failing; replaying it resumes compensation."""

    #: never published: it only lives in the dead-letter table
    internal: ClassVar[bool] = True
    saga_id: str
    saga: str
    step: str
    reason: str


# -- declarations -----------------------------------------------------------------------------------
LocalFn = Callable[["SagaInstance", "UnitOfWork"], Awaitable[Mapping[str, Any] | None]]
ArgsFn = Callable[["SagaInstance"], Mapping[str, Any]]


@dataclass(frozen=True)
class Step:
    """One step: an action (``send=`` a command, or ``local=`` a change) and its compensation
    (``compensate=`` a command, or ``undo=`` a local change); ``timeout`` in seconds."""

    name: str
    send: type[Command] | None = None
    compensate: type[Command] | None = None
    local: LocalFn | None = None
    undo: LocalFn | None = None
    timeout: float | None = None
    args: ArgsFn | None = None
    compensate_args: ArgsFn | None = None

    def commands(self) -> list[type[Command]]:
        return [c for c in (self.send, self.compensate) if c is not None]


@dataclass
class SagaInstance:
    """One saga as stored: what actions, compensations and migrations see and change."""

    id: str
    name: str
    version: int
    status: str
    step: int
    attempts: int
    waiting_for: str | None
    data: dict[str, Any]
    history: list[dict[str, Any]]
    error: str | None
    revision: int
    started_at: datetime
    updated_at: datetime

    def note(self, what: str, **detail: Any) -> None:
        self.history.append({"at": utcnow().isoformat(), "event": what,
                             **{k: v for k, v in detail.items() if v is not None}})


Migration = Callable[[SagaInstance], None]


class Saga:
    """A saga definition: a name, a version and ordered steps (see the module docstring)."""

    def __init__(self, name: str, *, steps: Sequence[Step], version: int = 1,
                 migrations: Mapping[int, Migration] | None = None, max_compensation_attempts: int = 5,
                 retry_backoff: float = 0.5, max_retry_backoff: float = 60.0):
        if not name or not name.replace("_", "").isalnum() or not name[0].isalpha():
            raise ConfigurationError(f"saga name {name!r} is not a simple name", fix="use e.g. 'order' or 'order_saga'")
        if not steps:
            raise ConfigurationError(f"saga {name!r} has no steps", fix="declare steps=[Step(...), ...]")
        seen = set()
        for step in steps:
            if step.name in seen:
                raise ConfigurationError(f"saga {name!r} has two steps named {step.name!r}", fix="name each step once")
            seen.add(step.name)
            if (step.send is None) == (step.local is None):
                raise ConfigurationError(f"saga {name!r}, step {step.name!r}: give exactly one action, send= or local=",
                                         fix="send=ACommand (to a service) or local=async_fn (a change here)")
            if step.compensate is not None and step.undo is not None:
                raise ConfigurationError(f"saga {name!r}, step {step.name!r} has both compensate= and undo=",
                                         fix="keep one compensation")
            for fn in (step.local, step.undo):
                if fn is not None and not inspect.iscoroutinefunction(fn):
                    raise ConfigurationError(f"saga {name!r}, step {step.name!r}: {fn!r} is not `async def`",
                                             fix="declare it as `async def fn(saga, uow)`")
            for command in step.commands():
                reply_model(command)  # a Command with type and target, or a clear error
        self.name = name
        self.version = version
        self.steps = list(steps)
        self.migrations = dict(migrations or {})
        self.max_compensation_attempts = max_compensation_attempts
        self.retry_backoff = retry_backoff
        self.max_retry_backoff = max_retry_backoff
        self._engine: SagaEngine | None = None

    def __repr__(self) -> str:
        return f"Saga({self.name!r}, version={self.version})"

    def commands(self) -> list[type[Command]]:
        return [c for step in self.steps for c in step.commands()]

    async def start(self, uow: UnitOfWork, saga_id: str | None = None, **data: Any) -> str:
        """Start an instance in ``uow`` (commits with the caller's change); return its id."""
        if self._engine is None:
            raise ConfigurationError(f"saga {self.name!r} is not declared by a service",
                                     fix="pass it to Service(..., sagas=[...])")
        return await self._engine.start(uow, self, data, saga_id)


# -- the engine -----------------------------------------------------------------------------------
class SagaEngine:
    """A service's sagas: starts them, applies replies and timers (one transaction each)."""

    def __init__(self, service: str, sagas: Iterable[Saga], tables: SagaTables):
        self.service = service
        self.tables = tables
        self.definitions: dict[tuple[str, int], Saga] = {}
        for saga in sagas:
            if (saga.name, saga.version) in self.definitions:
                raise ConfigurationError(f"declares saga {saga.name!r} version {saga.version} twice", service=service,
                                         fix="give each version of a saga one definition")
            self.definitions[(saga.name, saga.version)] = saga
            saga._engine = self

    # -- subscriptions ----------------------------------------------------------------------------
    def subscriptions(self) -> list[Subscription]:
        commands = {c for saga in self.definitions.values() for c in saga.commands()}
        subs = [Subscription(reply_model(c).event_type, reply_model(c), self.on_reply, f"saga reply {c.event_type}")
                for c in sorted(commands, key=lambda c: c.event_type)]
        subs.append(Subscription(SagaStuck.event_type, SagaStuck, self._on_stuck_replayed, "saga retry"))
        return subs

    # -- storage ------------------------------------------------------------------------------------
    async def _load(self, uow: UnitOfWork, saga_id: str) -> SagaInstance | None:
        row = (await uow.execute(select(self.tables.sagas).where(self.tables.sagas.c.id == saga_id)
                                 .with_for_update())).first()
        return None if row is None else _instance(row)

    async def _save(self, uow: UnitOfWork, st: SagaInstance, *, new: bool = False) -> None:
        st.updated_at = utcnow()
        values = {"name": st.name, "version": st.version, "status": st.status, "step": st.step,
                  "attempts": st.attempts, "waiting_for": st.waiting_for, "data": json.dumps(st.data),
                  "history": json.dumps(st.history), "error": st.error, "updated_at": st.updated_at}
        sagas = self.tables.sagas
        if new:
            await uow.execute(insert(sagas).values(id=st.id, revision=st.revision, started_at=st.started_at, **values))
            return
        done = await uow.execute(update(sagas).where(sagas.c.id == st.id, sagas.c.revision == st.revision)
                                 .values(revision=st.revision + 1, **values))
        if done.rowcount != 1:  # a concurrent transition: this one rolls back and is retried
            raise EventError(f"saga {st.id} changed while this transition ran", service=self.service,
                             fix="nothing: the transition is retried")
        st.revision += 1

    async def _timer(self, uow: UnitOfWork, st: SagaInstance, kind: str, token: str, seconds: float) -> None:
        await uow.execute(insert(self.tables.timers).values(
            saga_id=st.id, kind=kind, token=token, due_at=utcnow() + timedelta(seconds=seconds)))

    async def _clear_timers(self, uow: UnitOfWork, st: SagaInstance) -> None:
        await uow.execute(delete(self.tables.timers).where(self.tables.timers.c.saga_id == st.id))

    def definition(self, st: SagaInstance) -> Saga:
        """The definition ``st`` runs on: its own version, else a newer one that declares how to move it."""
        saga = self.definitions.get((st.name, st.version))
        if saga is not None:
            return saga
        movers = sorted((s for (name, _), s in self.definitions.items()
                         if name == st.name and st.version in s.migrations), key=lambda s: s.version)
        if not movers:
            raise ConfigurationError(
                f"saga {st.id} ({st.name}) started on version {st.version}, which this service no longer declares",
                service=self.service, fix=f"keep declaring Saga({st.name!r}, version={st.version}, ...) until its "
                                          f"instances finish, or declare migrations={{{st.version}: fn}} "
                                          f"on the new version")
        target = movers[-1]
        before = st.version
        target.migrations[before](st)
        st.version = target.version
        st.note("migrated", detail=f"version {before} -> {target.version}")
        return target

    # -- transitions ----------------------------------------------------------------------------------
    async def start(self, uow: UnitOfWork, saga: Saga, data: Mapping[str, Any], saga_id: str | None) -> str:
        now = utcnow()
        st = SagaInstance(id=saga_id or str(uuid.uuid4()), name=saga.name, version=saga.version, status=RUNNING,
                          step=0, attempts=0, waiting_for=None, data=dict(data), history=[], error=None,
                          revision=1, started_at=now, updated_at=now)
        st.note("started", detail=f"version {saga.version}")
        await self._forward(uow, saga, st)
        await self._save(uow, st, new=True)
        return st.id

    async def on_reply(self, reply: Replied, uow: UnitOfWork) -> None:
        """A reply event arrived (through the inbox): move its saga on."""
        envelope = uow.incoming
        if reply.requester != uow.runtime.source or envelope is None:
            return  # a reply to a command another service sent
        st = await self._load(uow, envelope.partitionkey)
        if st is None:
            return  # a reply to a command sent outside a saga
        if st.waiting_for != reply.command_id:
            st.note("ignored", type=reply.command_type, id=reply.command_id, ok=reply.ok,
                    detail="late reply: the saga no longer waits for it")
            await self._save(uow, st)
            return
        saga = self.definition(st)
        step = saga.steps[st.step]
        st.note("received", step=step.name, type=envelope.type, id=envelope.id, ok=reply.ok, reason=reply.reason)
        st.waiting_for = None
        await self._clear_timers(uow, st)
        if st.status == RUNNING:
            if reply.ok:
                st.data.update(reply.result)
                st.step += 1
                await self._forward(uow, saga, st)
            else:
                st.error = f"step {step.name} failed: {reply.reason}"
                st.step -= 1  # the failed step did nothing to undo
                await self._begin_compensation(uow, saga, st)
        elif st.status == COMPENSATING:
            if reply.ok:
                st.attempts = 0
                st.step -= 1
                await self._compensate(uow, saga, st)
            else:
                await self._compensation_failed(uow, saga, st, f"compensation of {step.name} failed: {reply.reason}")
        await self._save(uow, st)

    async def fire(self, uow: UnitOfWork, timer_id: int) -> bool:
        """Fire one due timer in ``uow``; False when another worker (or a reply) got there first."""
        timers = self.tables.timers
        timer = (await uow.execute(select(timers).where(timers.c.id == timer_id))).first()
        if timer is None:
            return False
        st = await self._load(uow, timer.saga_id)  # the saga first: the same lock order as a reply
        taken = await uow.execute(delete(timers).where(timers.c.id == timer_id))
        if taken.rowcount != 1 or st is None:
            return False
        saga = self.definition(st)
        if timer.kind == TIMEOUT and st.waiting_for == timer.token:
            step = saga.steps[st.step]
            st.note("timeout", step=step.name, id=timer.token)
            st.waiting_for = None
            if st.status == RUNNING:
                st.error = f"step {step.name} timed out"
                await self._begin_compensation(uow, saga, st)  # from this step: its command may have run
            else:
                await self._compensation_failed(uow, saga, st, f"compensation of {step.name} timed out")
        elif timer.kind == RETRY and st.status == COMPENSATING and st.waiting_for is None:
            st.note("retry", step=saga.steps[st.step].name, detail=f"attempt {st.attempts + 1}")
            await self._compensate(uow, saga, st)
        else:
            return True  # stale: the saga moved on
        await self._save(uow, st)
        return True

    async def retry(self, uow: UnitOfWork, saga_id: str) -> bool:
        """Resume the compensation of a ``failed`` saga (``isles sagas retry``); False if it is not failed."""
        st = await self._load(uow, saga_id)
        if st is None or st.status != FAILED:
            return False
        saga = self.definition(st)
        st.status, st.attempts = COMPENSATING, 0
        st.note("retry", step=saga.steps[st.step].name, detail="asked by an operator")
        await self._compensate(uow, saga, st)
        await self._save(uow, st)
        dl = uow.runtime.tables.dead_letters
        await uow.execute(update(dl).where(dl.c.partition_key == saga_id, dl.c.type == SagaStuck.event_type,
                                           dl.c.status == DEAD).values(status=RESOLVED, resolved_at=utcnow()))
        return True

    async def _on_stuck_replayed(self, stuck: SagaStuck, uow: UnitOfWork) -> None:
        await self.retry(uow, stuck.saga_id)

    # -- moving forward and back ----------------------------------------------------------------
    async def _forward(self, uow: UnitOfWork, saga: Saga, st: SagaInstance) -> None:
        """Run steps from ``st.step``: local ones here, until one sends a command (or all are done)."""
        while st.step < len(saga.steps):
            step = saga.steps[st.step]
            if step.local is not None:
                try:
                    result = await step.local(st, uow)
                except StepFailed as exc:
                    st.note("failed", step=step.name, reason=str(exc))
                    st.error = f"step {step.name} failed: {exc}"
                    st.step -= 1
                    await self._begin_compensation(uow, saga, st)
                    return
                st.data.update(result or {})
                st.note("local", step=step.name)
                st.step += 1
                continue
            assert step.send is not None
            await self._send(uow, st, step, step.send, step.args, "sent")
            return
        st.status = COMPLETED
        st.note("completed")

    async def _begin_compensation(self, uow: UnitOfWork, saga: Saga, st: SagaInstance) -> None:
        st.status, st.attempts = COMPENSATING, 0
        await self._compensate(uow, saga, st)

    async def _compensate(self, uow: UnitOfWork, saga: Saga, st: SagaInstance) -> None:
        """Undo steps from ``st.step`` down: local ones here, until one sends a command (or all are undone)."""
        while st.step >= 0:
            step = saga.steps[st.step]
            if step.undo is not None:
                await step.undo(st, uow)
                st.note("undone", step=step.name)
            elif step.compensate is not None:
                await self._send(uow, st, step, step.compensate, step.compensate_args, "compensating")
                return
            st.step -= 1
        st.status = COMPENSATED
        st.note("compensated")

    async def _compensation_failed(self, uow: UnitOfWork, saga: Saga, st: SagaInstance, reason: str) -> None:
        st.attempts += 1
        st.error = reason
        if st.attempts < saga.max_compensation_attempts:
            delay = backoff_delay(st.attempts, base=saga.retry_backoff, cap=saga.max_retry_backoff)
            await self._timer(uow, st, RETRY, str(st.attempts), delay)
            st.note("will retry", step=saga.steps[st.step].name, detail=f"in {delay:.2f}s", reason=reason)
            return
        st.status = FAILED
        st.note("failed", step=saga.steps[st.step].name, reason=reason,
                detail=f"{st.attempts} attempts; dead-lettered: `isles sagas retry {st.id}`")
        log.error("service '%s': saga %s (%s) could not compensate step %s after %d attempts: %s",
                  self.service, st.id, st.name, saga.steps[st.step].name, st.attempts, reason)
        stuck = SagaStuck(saga_id=st.id, saga=st.name, step=saga.steps[st.step].name, reason=reason)
        envelope = Envelope.wrap(stuck, source=f"{uow.runtime.source}/sagas", key=st.id, version=st.revision)
        await uow.execute(insert(uow.runtime.tables.dead_letters).values(
            event_id=envelope.id, type=envelope.type, source=envelope.source, partition_key=st.id,
            envelope=envelope.to_structured().decode(), status=DEAD, attempts=st.attempts, failed_at=utcnow(),
            error=(f"saga {st.id} ({st.name}): {reason}\n  fix: make the compensation succeed, then "
                   f"`isles sagas retry {st.id}`")))

    async def _send(self, uow: UnitOfWork, st: SagaInstance, step: Step, command: type[Command],
                    args: ArgsFn | None, what: str) -> None:
        values = dict(st.data)
        if args is not None:
            values.update(args(st))
        fields = {name: values[name] for name in command.model_fields if name in values}
        try:
            message = command.model_validate(fields)
        except ValidationError as exc:
            raise ConfigurationError(
                f"saga {st.id} ({st.name}), step {step.name}: cannot build {command.__name__} from the saga's data "
                f"({'; '.join(str(e['loc'][0]) + ': ' + e['msg'] for e in exc.errors()[:3])})", service=self.service,
                fix="start the saga with those fields, return them in an earlier reply's result, or pass args= / "
                    "compensate_args= (a compensation of a timed-out step has no result of its own)") from None
        command_id = uow.send(message, key=st.id, version=st.revision)
        st.waiting_for = command_id
        st.note(what, step=step.name, type=command.event_type, id=command_id)
        if step.timeout is not None:
            await self._timer(uow, st, TIMEOUT, command_id, step.timeout)


def _instance(row: Any) -> SagaInstance:
    return SagaInstance(id=row.id, name=row.name, version=row.version, status=row.status, step=row.step,
                        attempts=row.attempts, waiting_for=row.waiting_for, data=json.loads(row.data),
                        history=json.loads(row.history), error=row.error, revision=row.revision,
                        started_at=as_utc(row.started_at), updated_at=as_utc(row.updated_at))


# -- reading (the CLI) ------------------------------------------------------------------------------
async def instances(runtime: Any, *, status: str | None = None, saga_id: str | None = None) -> list[SagaInstance]:
    """The sagas stored in a started service's database (newest first)."""
    tables = install(_metadata_of(runtime))
    query = select(tables.sagas).order_by(tables.sagas.c.started_at.desc(), tables.sagas.c.id)
    if status is not None:
        query = query.where(tables.sagas.c.status == status)
    if saga_id is not None:
        query = query.where(tables.sagas.c.id == saga_id)
    async with runtime.database.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
        await conn.rollback()
    return [_instance(row) for row in rows]


def _metadata_of(runtime: Any) -> MetaData:
    metadata: MetaData = runtime.tables.outbox.metadata
    if SAGAS not in metadata.tables:
        raise ConfigurationError("declares no sagas", service=runtime.name, fix="pass sagas=[...] to its Service")
    return metadata


# -- the worker ------------------------------------------------------------------------------------------
class SagaWorker:
    """Fires a service's due saga timers (timeouts, compensation retries), one transaction each."""

    def __init__(self, runtime: Any, engine: SagaEngine, *, poll_interval: float = 0.5, batch_size: int = 100):
        self.runtime = runtime
        self.engine = engine
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.fired = 0

    async def run(self) -> None:
        import asyncio
        while True:
            try:
                await self.fire_due()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - database down or a transition failed: next poll retries
                log.warning("service '%s': saga worker: %s", self.runtime.name,
                            str(exc).splitlines()[0] if str(exc) else exc)
            await asyncio.sleep(self.poll_interval)

    async def fire_due(self, now: datetime | None = None) -> int:
        """Fire every timer due by ``now``; return how many moved a saga."""
        from isles.unit_of_work import UnitOfWork
        timers = self.engine.tables.timers
        moment = now or utcnow()
        async with self.runtime.database.engine.connect() as conn:
            due = list((await conn.scalars(select(timers.c.id).where(timers.c.due_at <= moment)
                                           .order_by(timers.c.due_at).limit(self.batch_size))).all())
            await conn.rollback()
        fired = 0
        for timer_id in due:
            async with UnitOfWork(self.runtime) as uow:
                fired += await self.engine.fire(uow, timer_id)
        self.fired += fired
        return fired


def register(registry: Any, services: Iterable[Any]) -> None:
    """Register the saga dead letter's type, so `isles dlq retry` can replay it."""
    for service in services:
        if getattr(service, "saga_engine", None) is not None:
            registry.register(service.name, SagaStuck)


def start_workers(system: Any) -> list[Any]:
    """The System's hook: a worker task for each started service with sagas and a consumer here."""
    import asyncio
    options = dict(getattr(system, "saga_options", None) or {})
    tasks = []
    for name in system.consumers:
        engine = getattr(system.services[name], "saga_engine", None)
        if engine is not None:
            worker = SagaWorker(system.runtimes[name], engine, **options)
            tasks.append(asyncio.create_task(worker.run(), name=f"isles-sagas-{name}"))
    return tasks


__all__ = ["Saga", "SagaEngine", "SagaInstance", "SagaStuck", "SagaWorker", "Step", "StepFailed", "instances"]
