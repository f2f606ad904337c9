"""A service: a name, the tables it owns, the events it publishes and consumes, its HTTP API."""
from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import MetaData

from isles.audit_trail import install_audit_trail  # audit trail
from isles.config import validate_service_name
from isles.errors import ConfigurationError
from isles.events import Event
from isles.jobs import Job
from isles.messaging import CommandHandlers
from isles.projections.projection import Projection
from isles.projections.tables import install_projection_tables
from isles.replication import Replica, Snapshot
from isles.runtime import ServiceRuntime
from isles.sagas import Saga, SagaEngine
from isles.sagas import install as install_saga_tables
from isles.subscriptions import Handlers, Subscription
from isles.tables import install
from isles.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from fastapi import APIRouter

    from isles.idempotency import Idempotency


def _caller_package() -> str:
    frame = sys._getframe(2)
    module: str = frame.f_globals.get("__name__", "")
    package = frame.f_globals.get("__package__") or module.rpartition(".")[0]
    return package or module


class Service:
    """Declare a service once, at import time; a :class:`isles.System` runs it.

    ``metadata`` holds the service's own tables (isles adds its outbox, inbox and dead-letter
    tables to it). ``publishes`` lists the :class:`Event` types it may publish; ``handlers`` the
    events of others it consumes; ``replicas`` its replicated fields; ``projections`` its read
    models (see :mod:`isles.projections`); ``snapshots`` how its entities are described for other
    services' backfills; ``router`` its FastAPI routes; ``idempotency`` (an
    :class:`isles.idempotency.Idempotency`) makes its HTTP commands safe to retry with an
    ``Idempotency-Key`` header; ``commands`` the commands it carries out (:mod:`isles.messaging`);
    ``sagas`` the sagas it runs (:mod:`isles.sagas`); ``audit=True`` gives it an append-only
    audit trail (:mod:`isles.audit_trail`).
    """

    def __init__(self, name: str, *, metadata: MetaData, publishes: Iterable[type[Event]] = (),
                 handlers: Handlers | None = None, router: APIRouter | None = None,
                 replicas: Iterable[Replica] = (), snapshots: Iterable[Snapshot] = (), description: str = "",
                 package: str | None = None, commands: CommandHandlers | None = None, sagas: Iterable[Saga] = (),
                 idempotency: "Idempotency | None" = None, projections: Iterable[Projection] = (),
                 jobs: Iterable[Job] = (), audit: bool = False):
        validate_service_name(name)
        if not isinstance(metadata, MetaData):
            raise ConfigurationError(f"metadata={metadata!r} is not a SQLAlchemy MetaData", service=name,
                                     fix="pass the metadata of the service's declarative base (Base.metadata)")
        self.name = name
        self.metadata = metadata
        self.tables = install(metadata)
        self.publishes = list(publishes)
        self.handlers = handlers or Handlers()
        self.router = router
        self.replicas = list(replicas)
        self.snapshots = list(snapshots)
        self.description = description
        # commands it carries out (isles.messaging) and sagas it runs (isles.sagas)
        self.commands = commands or CommandHandlers()
        self.sagas = list(sagas)
        self.saga_engine = SagaEngine(name, self.sagas, install_saga_tables(metadata)) if self.sagas else None
        # read models fed by events, with their checkpoint and rebuild-lock tables
        self.projections = list(projections)
        self.projection_tables = install_projection_tables(metadata) if self.projections else None
        #: the Python package that holds the service's code (its migrations live in <package>/migrations)
        self.package = package or _caller_package()
        self._runtime: ServiceRuntime | None = None
        self.jobs = list(jobs)  # periodic jobs (isles.jobs), run by the System
        # POST/PUT/PATCH/DELETE honour Idempotency-Key (isles.idempotency); adds its table
        self.idempotency = idempotency
        if idempotency is not None:
            idempotency.attach(self)
        # audit trail: isles_audit_trail, append-only in the database (isles.audit_trail.audit writes it)
        self.audit = audit
        if audit:
            install_audit_trail(metadata)

    def __repr__(self) -> str:
        return f"Service({self.name!r})"

    @property
    def subscriptions(self) -> list[Subscription]:
        subs = list(self.handlers.subscriptions)
        for replica in self.replicas:
            subs.extend(replica.subscriptions())
        subs.extend(self.commands.subscriptions(self.name))
        if self.saga_engine is not None:
            subs.extend(self.saga_engine.subscriptions())
        return subs

    @property
    def runtime(self) -> ServiceRuntime:
        if self._runtime is None:
            raise ConfigurationError("is not running", service=self.name,
                                     fix="add it to a System and `await system.start()` (or use `isles run`)")
        return self._runtime

    def unit_of_work(self) -> UnitOfWork:
        """A new unit of work on this service's own database."""
        return UnitOfWork(self.runtime)

    async def uow(self) -> Any:
        """FastAPI dependency: ``uow: UnitOfWork = Depends(service.uow)``."""
        async with self.unit_of_work() as uow:
            yield uow
