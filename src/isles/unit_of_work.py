"""The unit of work: one transaction on one service's own database, with its outbox.

``uow.publish(event)`` does not send anything: it adds an outbox row that commits (or rolls
back) together with the state change. The relay sends committed rows later.
"""
from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import inspect as sa_inspect
from sqlalchemy import update
from sqlalchemy.exc import NoInspectionAvailable
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from isles.errors import ConfigurationError, EventError
from isles.events import Envelope, Event, current_traceparent, new_traceparent
from isles.outbox import outbox_row
from isles.runtime import ServiceRuntime


@dataclass(slots=True)
class _Pending:
    event: Event
    key: str | None
    version: int | None
    entity: Any
    parent: str | None  # the trace this event continues, taken when it is published


#: the units of work open on SQLite in this context, to catch one opened inside another
_open_on_sqlite: ContextVar[frozenset["UnitOfWork"]] = ContextVar("isles_open_on_sqlite", default=frozenset())


class UnitOfWork:
    """``async with service.unit_of_work() as uow:`` - commits on a clean exit, rolls back on error.

    ``uow.session`` is a SQLAlchemy ``AsyncSession`` bound to this service's engine only.
    While a handler runs, ``uow.incoming`` is the envelope being handled.
    """

    def __init__(self, runtime: ServiceRuntime):
        self.runtime = runtime
        self.service = runtime.name
        self.session = AsyncSession(bind=runtime.database.engine, expire_on_commit=False)
        self.incoming: Envelope | None = None
        self._pending: list[_Pending] = []
        self._published: list[Envelope] = []
        self._queued: dict[Any, list[dict[str, Any]]] = {}  # write_later(): statement -> parameter sets
        self._finished = False
        self._task: asyncio.Task[Any] | None = None  # set while open on SQLite (see _claim_sqlite)

    async def __aenter__(self) -> "UnitOfWork":
        if not self.runtime.dialect.concurrent_connections:
            self._claim_sqlite()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            if exc_type is None and not self._finished:
                await self.commit()
            elif not self._finished:
                await self.rollback()
        finally:
            await self.session.close()
            if self._task is not None:
                _open_on_sqlite.set(_open_on_sqlite.get() - {self})

    def _claim_sqlite(self) -> None:
        """Refuse a unit of work opened inside another of the same service that holds the connection.

        A SQLite database has one pooled connection. While an outer unit of work of this task holds
        it (its transaction has begun), an inner one would wait for it forever (until the pool
        timeout). An outer one that has not touched the database yet holds nothing, so that nesting
        (e.g. a token check before the route's first query) is fine. On PostgreSQL each unit of
        work takes its own connection and nesting is always allowed.
        """
        task = asyncio.current_task()
        for outer in _open_on_sqlite.get():
            if outer.service == self.service and outer._task is task and outer.session.in_transaction():
                raise ConfigurationError(
                    "a unit of work was opened inside another one of the same service, in the same task, "
                    "while the outer one holds its SQLite database's only connection: the inner one would "
                    "wait for it forever", service=self.service,
                    fix="pass the outer unit of work down (e.g. to a cache loader) instead of opening a new "
                        "one, or finish the outer one first")
        self._task = task
        _open_on_sqlite.set(_open_on_sqlite.get() | {self})

    # -- conveniences over the session ---------------------------------------------------------
    def add(self, instance: Any) -> None:
        self.session.add(instance)

    async def get(self, entity: Any, ident: Any, **kwargs: Any) -> Any:
        await self._write_queued()
        return await self.session.get(entity, ident, **kwargs)

    async def execute(self, statement: Any, params: Any = None) -> Any:
        await self._write_queued()
        return await self.session.execute(statement, params)

    async def scalar(self, statement: Any, params: Any = None) -> Any:
        await self._write_queued()
        return await self.session.scalar(statement, params)

    async def scalars(self, statement: Any, params: Any = None) -> Any:
        await self._write_queued()
        return await self.session.scalars(statement, params)

    async def flush(self) -> None:
        await self._write_queued()
        await self.session.flush()

    async def write_later(self, statement: Any, params: dict[str, Any]) -> None:
        """Queue a Core write whose result nobody reads; the queue goes out before the next read or commit.

        Each queued statement is sent once with all its parameter sets (an executemany). A
        consumer handling a batch of events thus writes a replica with one round trip, not one
        per event. Program order is kept where it can matter: pending ORM changes, or a second
        statement on a table that already has one queued, first send what came before.
        """
        session = self.session
        table = getattr(statement, "table", None)
        if session.new or session.dirty or session.deleted or (
                statement not in self._queued and any(getattr(q, "table", None) is table for q in self._queued)):
            await self.flush()
        self._queued.setdefault(statement, []).append(params)

    async def _write_queued(self) -> None:
        if self._queued:
            queued, self._queued = self._queued, {}
            connection = await self.session.connection()
            for statement, params in queued.items():
                await connection.execute(statement, params)

    # -- events ----------------------------------------------------------------------------------
    def publish(self, event: Event, *, entity: Any = None, key: str | None = None,
                version: int | None = None) -> None:
        """Record ``event`` in the outbox of this transaction.

        The partition key is ``key``, else the event's declared key field, else ``entity.id``;
        the entity version is ``version``, else ``entity.version`` read at commit (after the
        flush that bumps it). Every event must end up with both.
        """
        if not isinstance(event, Event) or not event.event_type:
            raise EventError(f"{event!r} is not an Event with a declared type", service=self.service,
                             fix="declare it as class X(Event, type='system.service.entity.action')")
        if event.event_type not in self.runtime.publishes:
            raise EventError(f"publishes {event.event_type!r}, which it does not declare", service=self.service,
                             fix=f"add {type(event).__name__} to the service's publishes=[...]")
        if self._finished:
            raise EventError("publish() after the unit of work finished", service=self.service,
                             fix="publish inside the `async with service.unit_of_work()` block")
        self._pending.append(_Pending(event, key, version, entity, current_traceparent.get()))

    def send(self, command: Any, *, key: str | None = None, version: int | None = None) -> str:
        """Record ``command`` (an isles.messaging.Command) in the outbox, routed to its target; return its id."""
        sent_in = getattr(command, "sent_in", None)  # isles.messaging.Command (which builds on this module)
        if sent_in is None:
            raise EventError(f"{command!r} is not a Command", service=self.service,
                             fix="declare it as class X(Command, type='system.service.action', target='service')")
        command_id: str = sent_in(self, key=key, version=version)
        return command_id

    async def _envelopes(self) -> list[Envelope]:
        """The envelopes of the pending events, each with its key and its own entity version."""
        resolved: list[tuple[_Pending, str, int]] = []
        for item in self._pending:
            key = item.key or item.event.key()
            if key is None and item.entity is not None:
                key = str(item.entity.id)
            version = item.version
            if version is None and item.entity is not None:
                version = getattr(item.entity, "version", None)
            if key is None or version is None:
                missing = "key" if key is None else "entity version"
                raise EventError(
                    f"event {item.event.event_type} has no {missing}", service=self.service,
                    fix="pass entity=<the changed row> (with a version column, e.g. isles.Versioned) "
                        "or key=/version= to uow.publish()")
            resolved.append((item, key, int(version)))
        await self._one_version_per_event(resolved)
        return [Envelope.wrap(item.event, source=self.runtime.source, key=key, version=version,
                              traceparent=new_traceparent(item.parent)) for item, key, version in resolved]

    async def _one_version_per_event(self, resolved: list[tuple[_Pending, str, int]]) -> None:
        """Give each event of an entity published several times in this transaction its own version.

        The entity's version is read at commit, so without this a create and a release in one
        transaction would both carry version n, and every copy would keep the first and drop the
        second as "not newer". Instead the k events of the entity get n, n+1, ..., n+k-1 in the
        order they were published, and the row moves on to n+k-1: versions stay the entity's
        positions, the row's version is its last event's, and later transactions continue from it.
        """
        by_entity: dict[int, list[int]] = {}
        for index, (item, _, _) in enumerate(resolved):
            if item.entity is not None and item.version is None:
                by_entity.setdefault(id(item.entity), []).append(index)
        for indexes in by_entity.values():
            if len(indexes) < 2:
                continue
            first, key, base = resolved[indexes[0]]
            await self._set_version(first.entity, base + len(indexes) - 1)
            for offset, index in enumerate(indexes):
                resolved[index] = (resolved[index][0], key, base + offset)

    async def _set_version(self, entity: Any, version: int) -> None:
        """Move ``entity``'s version column to ``version`` in this transaction, as the ORM's own value."""
        try:
            mapper = sa_inspect(entity).mapper
        except NoInspectionAvailable:
            raise EventError(f"{entity!r} published several events but is not a mapped row", service=self.service,
                             fix="pass entity=<an ORM row with a version column>, or key=/version= per event") from None
        column = mapper.version_id_col if mapper.version_id_col is not None else mapper.local_table.c.get("version")
        if column is None:
            raise EventError(f"{type(entity).__name__} published several events but has no version column",
                             service=self.service, fix="give the model a version column (isles.Versioned)")
        ids = mapper.primary_key_from_instance(entity)
        await self.session.execute(update(mapper.local_table)
                                   .where(*(c == v for c, v in zip(mapper.primary_key, ids, strict=True)))
                                   .values({column.name: version}))
        set_committed_value(entity, mapper.get_property_by_column(column).key, version)

    async def commit(self) -> Sequence[Envelope]:
        """Flush the changes, write the outbox rows, commit; return the envelopes published."""
        if self._finished:
            raise EventError("commit() called twice", service=self.service, fix="commit once per unit of work")
        published: list[Envelope] = []
        await self._write_queued()
        if self._pending:
            await self.session.flush()  # bumps entity versions before we read them
            published = await self._envelopes()
            # Outbox ids must follow per-key commit order (they otherwise follow insert order).
            await self.runtime.dialect.write_outbox(self, self.runtime.tables.outbox,
                                                    [outbox_row(e) for e in published], self.runtime.topic)
        await self.session.commit()
        self._finished = True
        self._pending.clear()
        self._published = published
        if published:
            self.runtime.committed(len(published))
        return published

    async def rollback(self) -> None:
        self._pending.clear()
        self._queued.clear()
        self._finished = True
        await self.session.rollback()

