"""A System: the services of one application and the infrastructure they share.

``System("mes", [material, work_order])`` validates the declarations (unique names, every
handled event type published by some service), then ``await system.start()`` gives each
service its own engine, relay and consumer. With nothing configured everything runs in this
process on SQLite files and the in-process transport; environment variables move each part to
PostgreSQL or a broker without code changes.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import re
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select

from isles import messaging, sagas
from isles.config import resolve_database
from isles.consumer import Consumer
from isles.contracts import check_contracts
from isles.database import Database, Health
from isles.dialects import dialect_for
from isles.drain import Watermarks
from isles.errors import ConfigurationError, UnknownEventType
from isles.events import EventRegistry
from isles.heap_trim import run_heap_trim
from isles.jobs import run_periodically
from isles.outbox import backlog
from isles.projections.wiring import check_projections, projection_subscriptions, projections_of
from isles.relay import Relay
from isles.replication import Snapshot
from isles.retention import retention_settings, run_inbox_purge
from isles.runtime import ServiceRuntime
from isles.service import Service
from isles.tables import DEAD, WAITING
from isles.tasks import cancel_and_wait
from isles.transport import Transport
from isles.transport.factory import transport_from_env

log = logging.getLogger("isles.system")
_SYSTEM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
Selection = bool | Iterable[str]


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    database: str
    topology: str
    healthy: bool
    detail: str
    outbox_backlog: int
    oldest_unpublished_age_s: float | None
    inbox: int
    dead_letters: int
    waiting: int


def _freeze_heap() -> None:
    """Move everything alive after start-up out of the cyclic garbage collector's reach.

    Modules, SQLAlchemy's compiled statements, Pydantic and FastAPI models are several hundred
    thousand objects that live as long as the process. Python's full (oldest-generation)
    collection walks them all: a 50-70 ms pause of the event loop, every few thousand events,
    and the whole of the latency p99 at a few hundred events/s. Frozen, they are skipped; the
    objects made while serving are still collected. ``System(..., freeze_heap=False)`` opts out.
    Done once per process: a later start (tests start many systems) would only freeze garbage-free
    leftovers of the earlier ones, after a full collection of its own.
    """
    global _heap_frozen
    if not _heap_frozen:
        _heap_frozen = True
        gc.collect()
        gc.freeze()


_heap_frozen = False


def _waker(relay: Relay) -> Any:
    """A runtime's ``on_commit``: a commit that wrote outbox rows wakes the relay at once."""
    def wake(events: int) -> None:
        relay.wake()
    return wake


class System:
    def __init__(self, name: str, services: Iterable[Service], *, transport: Transport | None = None,
                 env: Mapping[str, str] | None = None, relay_options: dict[str, Any] | None = None,
                 consumer_options: dict[str, Any] | None = None, freeze_heap: bool = True,
                 saga_options: dict[str, Any] | None = None, trim_heap: bool = True):
        if not _SYSTEM_NAME.match(name or ""):
            raise ConfigurationError(f"{name!r} is not a valid system name",
                                     fix="use lower-case letters, digits and underscores (e.g. 'mes')")
        self.name = name
        self.services: dict[str, Service] = {}
        for service in services:
            if service.name in self.services:
                raise ConfigurationError(f"is declared twice in system '{name}'", service=service.name,
                                         fix="give every service a unique name, or list it once")
            self.services[service.name] = service
        self.registry = EventRegistry()
        for service in self.services.values():
            for model in service.publishes:
                self.registry.register(service.name, model)
        messaging.register(self.registry, self.services.values())  # commands and their replies
        sagas.register(self.registry, self.services.values())  # sagas' dead letters
        self._check_subscriptions()
        check_projections(self.services.values(), self.registry)
        check_contracts(self.services.values(), self.registry)
        self._env = env
        self._transport = transport
        self.relay_options = relay_options or {}
        self.consumer_options = consumer_options or {}
        self.saga_options = saga_options or {}  # SagaWorker options (poll_interval, batch_size)
        self.freeze_heap = freeze_heap
        self.trim_heap = trim_heap  # hand the C heap's free pages back once a minute (isles.heap_trim)
        self.runtimes: dict[str, ServiceRuntime] = {}
        self.relays: dict[str, Relay] = {}
        self.consumers: dict[str, Consumer] = {}
        self._watermarks = Watermarks()
        self._tasks: list[asyncio.Task[Any]] = []
        self.transport: Transport | None = None

    def _check_subscriptions(self) -> None:
        for service in self.services.values():
            for sub in service.subscriptions:
                spec = self.registry.get(sub.type)
                if spec is None and sub.optional:
                    continue
                if spec is None:
                    near = [t for t in self.registry.types() if t.rsplit(".", 1)[0] == sub.type.rsplit(".", 1)[0]]
                    hint = f"did you mean {', '.join(near)}? " if near else ""
                    raise UnknownEventType(
                        f"handles event type {sub.type!r} ({sub.name}), which no service of system "
                        f"'{self.name}' publishes", service=service.name,
                        fix=f"{hint}correct the type name, or add the producing service (and its Event) to the system")

    @property
    def env(self) -> Mapping[str, str]:
        return os.environ if self._env is None else self._env

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise ConfigurationError(f"system '{self.name}' has no service {name!r}",
                                     fix=f"use one of: {', '.join(self.services)}") from None

    def topic(self, service: str) -> str:
        return f"{self.name}.{service}.events"

    def source(self, service: str) -> str:
        return f"/{self.name}/{service}"

    # -- lifecycle --------------------------------------------------------------------------------
    def _selected(self, selection: Selection, among: Iterable[str]) -> set[str]:
        among = set(among)
        if selection is True:
            return among
        if selection is False:
            return set()
        chosen = set(selection)
        for name in chosen:
            self.service(name)
        return chosen & among

    async def start(self, *, services: Selection = True, relays: Selection = True, consumers: Selection = True,
                    create_tables: bool = True) -> System:
        """Bind the selected services to their databases and start relays and consumers.

        A start that fails half-way (a setting, a database, the broker) closes what it opened:
        a pool or SQLite connection left open kept the command from exiting after its error."""
        try:
            return await self._start(services, relays, consumers, create_tables)
        except BaseException:
            await cancel_and_wait(self._tasks)
            self._tasks.clear()
            await self._dispose()
            raise

    async def _start(self, services: Selection, relays: Selection, consumers: Selection,
                     create_tables: bool) -> System:
        names = self._selected(services, self.services)
        retention = retention_settings(self.env, self.relay_options)  # the two windows
        self.transport = self._transport or transport_from_env(self.env)
        for name in sorted(names):
            service = self.services[name]
            database = Database(resolve_database(name, self.env))
            try:
                if create_tables:
                    await database.create_all(service.metadata)
            except BaseException:
                await database.dispose()
                await self._dispose()
                raise
            runtime = ServiceRuntime(name, database, dialect_for(database), service.tables, self.registry,
                                     self.source(name), self.topic(name),
                                     publishes=frozenset(m.event_type for m in service.publishes))
            messaging.wire_runtime(self, service, runtime)  # command routes, what it may send
            service._runtime = runtime
            self.runtimes[name] = runtime
        # in name order, as the databases: a setting refused at start names the same service every run
        for name in sorted(self._selected(relays, names)):
            runtime = self.runtimes[name]
            relay = self.relays[name] = Relay(runtime, self.transport,
                                              **{**self.relay_options, "retention": retention.outbox})
            runtime.on_commit = _waker(relay)
        for name in sorted(self._selected(consumers, names)):
            subs = [s for s in self.services[name].subscriptions if s.type in self.registry or not s.optional]
            subs += projection_subscriptions(self.services[name], self.registry)
            if not subs:
                continue
            consumer = self.consumers[name] = Consumer(self.runtimes[name], subs, inbox_retention=retention.inbox,
                                                       **self.consumer_options)
            topics = messaging.topics_for(self, name, subs)  # events topics + its command channel
            self.transport.subscribe(name, topics, consumer.deliver)
        await self.transport.start()
        for name, relay in self.relays.items():
            self._tasks.append(asyncio.create_task(relay.run(), name=f"isles-relay-{name}"))
        for name in self.consumers:  # each consumer purges its inbox
            self._tasks.append(asyncio.create_task(run_inbox_purge(self.runtimes[name], retention),
                                                   name=f"isles-inbox-purge-{name}"))
        self._tasks += sagas.start_workers(self)  # saga timers of services consuming here
        for name in sorted(names):  # each service's periodic jobs (isles.jobs)
            for job in self.services[name].jobs:
                self._tasks.append(asyncio.create_task(run_periodically(self.runtimes[name], job),
                                                       name=f"isles-job-{name}-{job.name}"))
        if self.trim_heap:
            self._tasks.append(asyncio.create_task(run_heap_trim(), name="isles-heap-trim"))
        if self.freeze_heap:
            _freeze_heap()
        return self

    async def stop(self, *, drain_timeout: float = 5.0) -> None:
        """Graceful shutdown: publish what is committed (bounded), stop relays, consumers, pools."""
        for name, relay in self.relays.items():
            if self.transport is not None:
                try:
                    await asyncio.wait_for(relay.drain(drain_timeout), drain_timeout)
                except Exception as exc:  # the rows stay in the outbox for the next start
                    log.warning("service '%s': outbox not drained at shutdown: %s", name, exc)
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        for relay in self.relays.values():
            await relay.close()
        if self.transport is not None:
            await self.transport.stop()
        for consumer in self.consumers.values():
            await consumer.close()
        await self._dispose()

    async def _dispose(self) -> None:
        for name, runtime in self.runtimes.items():
            await runtime.database.dispose()
            service = self.services[name]
            if service._runtime is runtime:
                service._runtime = None
        self.runtimes.clear()
        self._watermarks = Watermarks()
        self.relays.clear()
        self.consumers.clear()

    @asynccontextmanager
    async def running(self, **selection: Any) -> AsyncIterator[System]:
        """``async with system.running(relays=False):`` - start with ``selection`` (see ``start``), stop after."""
        await self.start(**selection)
        try:
            yield self
        finally:
            await self.stop()

    async def __aenter__(self) -> System:
        if not self.runtimes:
            await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- operations -------------------------------------------------------------------------------
    @property
    def projections(self) -> dict[str, tuple[Service, Any]]:
        """Every projection of the system by name, with its service."""
        return projections_of(self.services.values())

    def runtime(self, name: str) -> ServiceRuntime:
        self.service(name)
        try:
            return self.runtimes[name]
        except KeyError:
            raise ConfigurationError("is not started in this process", service=name,
                                     fix="start the system with this service selected") from None

    def relay(self, name: str) -> Relay | None:
        """The relay of service ``name`` in this process (None if it was started without one)."""
        self.runtime(name)
        return self.relays.get(name)

    def consumer(self, name: str) -> Consumer | None:
        """The consumer of service ``name`` in this process (None if it consumes nothing here)."""
        self.runtime(name)
        return self.consumers.get(name)

    async def drain(self, timeout: float = 30.0) -> None:
        """Publish every event committed so far and wait until every consumer has applied it.

        Exact on every transport: the consumers' inboxes are checked against the producers'
        outboxes (see :mod:`isles.drain`), for the services started in this process. Seeds,
        demos and tests call it before they read another service's copy.
        """
        deadline = time.monotonic() + timeout
        for relay in self.relays.values():
            await relay.drain(max(deadline - time.monotonic(), 0.1))
        for name, consumer in self.consumers.items():
            for producer in self.runtimes.values():
                await self._watermarks.wait(producer, self.runtimes[name], producer.publishes & consumer.types,
                                            deadline)

    async def health(self) -> list[Health]:
        return list(await asyncio.gather(*(r.database.health() for r in self.runtimes.values())))

    async def status(self) -> list[ServiceStatus]:
        return [await self._status(r) for r in self.runtimes.values()]

    async def _status(self, runtime: ServiceRuntime) -> ServiceStatus:
        health = await runtime.database.health()
        config = runtime.database.config
        if not health.ok:
            return ServiceStatus(runtime.name, config.display, config.topology, False, health.detail, 0, None, 0, 0, 0)
        count, oldest = await backlog(runtime)
        age = None
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            age = (datetime.now(UTC) - oldest).total_seconds()
        tables = runtime.tables
        async with runtime.database.engine.connect() as conn:
            inbox = await conn.scalar(select(func.count()).select_from(tables.inbox))
            dead = await conn.scalar(select(func.count()).where(tables.dead_letters.c.status == DEAD))
            waiting = await conn.scalar(select(func.count()).where(tables.dead_letters.c.status == WAITING))
        return ServiceStatus(runtime.name, config.display, config.topology, True, "ok", count, age,
                             int(inbox or 0), int(dead or 0), int(waiting or 0))

    async def resync(self, service: str, progress: Any = None) -> dict[str, int | ConfigurationError]:
        """Backfill a service's replicas from their owners' snapshots.

        Returns rows changed per replica, or - for a replica that cannot be backfilled (its owner
        declares no Snapshot) - the error saying how to fix it; the other replicas still run.
        """
        self.runtime(service)  # started here, or a clear error
        changed: dict[str, int | ConfigurationError] = {}
        for replica in self.services[service].replicas:
            label = f"{replica.table.name}.{replica.key}"
            spec = self.registry.get(replica.event_types[0])
            if spec is None and replica.optional:
                continue  # its source is not part of this system
            owner_name = self.registry.require(replica.event_types[0], service=service).service
            self.runtime(owner_name)
            owner_service = self.services[owner_name]
            snapshot: Snapshot | None = next((s for s in owner_service.snapshots if s.source == replica.source), None)
            if snapshot is None:
                changed[label] = ConfigurationError(
                    f"declares no Snapshot for {replica.source!r}, so {service}'s {label} cannot be backfilled",
                    service=owner_name, fix=f"add Snapshot('{replica.source}', Model, to_event) to its snapshots=[...]")
                continue
            changed[label] = rows = 0
            async with owner_service.unit_of_work() as read:
                total = await snapshot.count(read)
                task = progress.add_task(f"{service}: {label} <- {replica.source}", total=total) if progress else None
                async for page in snapshot.pages(read):
                    async with self.services[service].unit_of_work() as write:
                        for key, version, data in page:
                            rows += await replica.apply(write, key, version, data)
                    changed[label] = rows
                    if progress:
                        progress.advance(task, len(page))
        return changed
