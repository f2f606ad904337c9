"""Live application: a projection's events arrive through its service's normal consumer.

The projection subscribes to every event type of the services it follows, so the inbox gives
exactly-once and per-key order, and an event it has no handler for still moves its checkpoint
(its lag stays honest). In the consumer's transaction, for each event: take the projection's
shared lock (a rebuild's swap takes it exclusively, so live application pauses for the swap
only), lock and read the checkpoints once, skip an event a rebuild already applied, run the
handlers against the live tables, and queue the checkpoint update - all committed together.
"""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import text

from isles.errors import UnknownEventType
from isles.events import Envelope, EventRegistry
from isles.projections.checkpoint import Checkpoint, ensure_rows, load, save
from isles.projections.projection import Projection, ProjectionUow
from isles.projections.tables import ProjectionTables
from isles.subscriptions import Subscription
from isles.unit_of_work import UnitOfWork

#: the second key of PostgreSQL advisory locks taken for projections (live: shared; swap: exclusive)
LOCK_CLASS = 0x15135
_LOCK_SHARED = text(f"SELECT pg_advisory_xact_lock_shared(hashtextextended(:k, {LOCK_CLASS}))")
LOCK_EXCLUSIVE = text(f"SELECT pg_advisory_xact_lock(hashtextextended(:k, {LOCK_CLASS}))")


def followed_sources(projection: Projection, registry: EventRegistry, *, service: str) -> list[str]:
    """The services whose streams ``projection`` follows: each handled type's owner, plus ``sources``."""
    owners = set(projection.sources)
    for type_name in projection.handled_types():
        spec = registry.get(type_name)
        if spec is None:
            raise UnknownEventType(
                f"projection {projection.name!r} handles event type {type_name!r}, which no service of the "
                "system publishes", service=service,
                fix="correct the type name, or add the producing service (and its Event) to the system")
        owners.add(spec.service)
    return sorted(owners)


def types_of(registry: EventRegistry, owners: Iterable[str]) -> list[str]:
    wanted = set(owners)
    return sorted(t for t in registry.types() if registry.require(t, service="").service in wanted)


class LiveProjection:
    """The consumer-side half of one projection of one service."""

    def __init__(self, projection: Projection, tables: ProjectionTables, registry: EventRegistry, service: str):
        self.projection = projection
        self.tables = tables
        self.registry = registry
        self.service = service
        self.owners = followed_sources(projection, registry, service=service)
        self.handlers: dict[str, list[Subscription]] = {}
        for sub in projection.subscriptions:
            self.handlers.setdefault(sub.type, []).append(sub)
        self.targets = {t.name: t for t in projection.tables}

    def subscriptions(self) -> list[Subscription]:
        return [Subscription(t, None, self.apply, f"projection:{self.projection.name}")
                for t in types_of(self.registry, self.owners)]

    async def apply(self, envelope: Envelope, uow: UnitOfWork) -> None:
        owner = self.registry.require(envelope.type, service=self.service).service
        checkpoints = await self._checkpoints(uow)
        checkpoint = checkpoints.get(owner)
        if checkpoint is None:
            checkpoint = checkpoints[owner] = Checkpoint(self.projection.name, owner)
        if envelope.sequence is not None and checkpoint.has(envelope.sequence):
            return  # a rebuild applied it before the swap; the live copy must not apply it again
        await run_handlers(self.handlers.get(envelope.type, ()), envelope, uow, self.projection, self.targets,
                           self.service)
        checkpoint.advance(envelope.sequence, envelope.time)
        if checkpoint.exists:
            await uow.write_later(self._update, {"p": checkpoint.projection, "s": checkpoint.source,
                                                 **checkpoint.values()})
        else:
            await save(uow, self.tables, uow.runtime.dialect, checkpoint)

    @property
    def _update(self) -> Any:
        statement = getattr(self, "_update_statement", None)
        if statement is None:
            from sqlalchemy import bindparam
            cp = self.tables.checkpoints
            columns = ("position", "floor", "holes", "applied", "last_event_at", "updated_at")
            statement = (cp.update().where(cp.c.projection == bindparam("p"), cp.c.source == bindparam("s"))
                         .values({c: bindparam(c, type_=cp.c[c].type) for c in columns}))
            self._update_statement = statement
        return statement

    async def _checkpoints(self, uow: UnitOfWork) -> dict[str, Checkpoint]:
        """This projection's checkpoints in this transaction: locked and read on first use."""
        held: dict[str, dict[str, Checkpoint]] = uow.__dict__.setdefault("_isles_projection_checkpoints", {})
        checkpoints = held.get(self.projection.name)
        if checkpoints is None:
            if uow.runtime.dialect.name == "postgresql":
                await uow.execute(_LOCK_SHARED, {"k": lock_name(self.service, self.projection.name)})
            known = await load(uow, self.tables, self.projection.name)
            if set(self.owners) - set(known):
                await ensure_rows(uow, self.tables, uow.runtime.dialect, self.projection.name,
                                  sorted(set(self.owners) - set(known)))
            checkpoints = held[self.projection.name] = await load(uow, self.tables, self.projection.name,
                                                                  for_update=True)
        return checkpoints


def lock_name(service: str, projection: str) -> str:
    return f"isles-projection:{service}:{projection}"


async def run_handlers(subs: Iterable[Subscription], envelope: Envelope, uow: UnitOfWork, projection: Projection,
                       targets: dict[str, Any], service: str) -> None:
    """Run a projection's handlers for ``envelope`` (already upcast) against ``targets``."""
    subs = list(subs)
    if not subs:
        return
    previous, uow.incoming = uow.incoming, envelope
    try:
        view = ProjectionUow(uow, projection, targets, uow.runtime.dialect)
        for sub in subs:
            await sub.fn(sub.parse(envelope, service), view)
    finally:
        uow.incoming = previous
