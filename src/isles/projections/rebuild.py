"""Rebuild a projection into a shadow copy of its tables, then swap it in, in one transaction.

1. Fence: one rebuild per projection at a time (see :mod:`isles.projections.fence`).
2. Create the shadow tables; for each source, start from the beginning of its retained outbox,
   or - where retention purged the log's beginning - from the owner's :class:`isles.Snapshot`s,
   read in one repeatable-read transaction together with the outbox ids that were visible then.
3. Catch up in pages: read a page of the log, decode, run the handlers against the shadow
   (queued executemany writes), commit with the shadow's checkpoint. The live projection keeps
   serving and applying meanwhile.
4. Build the shadow's indexes, then in one transaction: take the projection's exclusive lock
   (live application of this projection waits; nothing else does), catch up the last pages -
   now everything the live copy applied is committed in the log, so the shadow has it too -
   swap the tables and replace the live checkpoints by the shadow's. Events the shadow applied
   that the live path has not seen yet are then skipped by the checkpoint when they arrive, and
   the rest are applied live: none missed, none applied twice.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from sqlalchemy import select

from isles.errors import ConfigurationError
from isles.events import Envelope
from isles.outbox import envelope_from_row
from isles.projections import shadow as shadows
from isles.projections.checkpoint import Checkpoint, load, save
from isles.projections.fence import Fence
from isles.projections.live import (
    LOCK_EXCLUSIVE,
    followed_sources,
    lock_name,
)
from isles.projections.log import bounds, count_after, read_page
from isles.projections.projection import Projection, ProjectionUow
from isles.projections.shadow import SUFFIX
from isles.runtime import ServiceRuntime
from isles.subscriptions import Subscription
from isles.unit_of_work import UnitOfWork

PAGE_SIZE = 1000


@dataclass
class RebuildProgress:
    applied: int
    total: int
    seconds: float
    behind: int

    @property
    def events_per_s(self) -> float:
        return self.applied / self.seconds if self.seconds > 0 else 0.0


@dataclass
class RebuildReport:
    projection: str
    service: str
    events: int = 0  # log events read (handled or ignored) into the shadow
    from_snapshots: int = 0  # entities applied from owners' snapshots
    seconds: float = 0.0
    #: per source: where its log starts when it no longer reaches back and no Snapshot covers it
    partial: dict[str, int] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0


class Rebuild:
    def __init__(self, system: Any, service_name: str, projection: Projection, *, page_size: int = PAGE_SIZE,
                 progress: Callable[[RebuildProgress], None] | None = None):
        self.system = system
        self.service = system.service(service_name)
        self.runtime: ServiceRuntime = system.runtime(service_name)
        self.projection = projection
        self.page_size = page_size
        self.progress = progress
        self.tables = self.service.projection_tables
        self.registry = system.registry
        self.owners: dict[str, ServiceRuntime] = {}
        for owner in followed_sources(projection, system.registry, service=service_name):
            if owner not in system.runtimes:
                raise ConfigurationError(
                    f"cannot rebuild projection {projection.name!r}: its source service '{owner}' is not started in "
                    "this process, so its event log (outbox) cannot be read", service=service_name,
                    fix=f"run the rebuild in a process that starts '{owner}' too (`isles projections rebuild` starts "
                        "every service of the system with its own database settings)")
            self.owners[owner] = system.runtimes[owner]
        self.handlers: dict[str, list[Subscription]] = {}
        for sub in projection.subscriptions:
            self.handlers.setdefault(sub.type, []).append(sub)
        self.shadows = {t.name: shadows.shadow_of(t) for t in projection.tables}
        self.shadow_name = projection.name + SUFFIX
        self.report = RebuildReport(projection.name, service_name)
        self._started = 0.0
        self._total = 0
        #: per source, the next page being read: (after which id, task)
        self._ahead: dict[str, tuple[int, Any]] = {}

    # -- the whole run ---------------------------------------------------------------------------
    async def run(self) -> RebuildReport:
        fence = Fence(self.runtime, self.tables, self.projection.name)
        await fence.acquire()
        self._started = time.perf_counter()
        try:
            async with UnitOfWork(self.runtime) as uow:
                for live in self.projection.tables:
                    await shadows.create(uow, live, self.shadows[live.name])
                await uow.execute(self.tables.checkpoints.delete().where(
                    self.tables.checkpoints.c.projection == self.shadow_name))
            checkpoints = {owner: await self._start(owner) for owner in self.owners}
            for owner, checkpoint in checkpoints.items():
                self._total += (await count_after(self.owners[owner], checkpoint.position, checkpoint.holes))[0]
            while await self._catch_up(checkpoints):
                await fence.beat()
            async with UnitOfWork(self.runtime) as uow:
                for table in self.shadows.values():
                    await shadows.build_indexes(uow, table)
            await self._swap(checkpoints)
        except BaseException:
            for _, task in self._ahead.values():
                task.cancel()
            try:
                async with UnitOfWork(self.runtime) as uow:
                    for table in self.shadows.values():
                        await shadows.drop(uow, table)
            finally:
                await fence.release()
            raise
        await fence.release()
        self.report.seconds = time.perf_counter() - self._started
        return self.report

    # -- where each source starts ----------------------------------------------------------------
    async def _start(self, owner: str) -> Checkpoint:
        runtime = self.owners[owner]
        low, high = await bounds(runtime, **self._via(owner, None))
        checkpoint = Checkpoint(self.shadow_name, owner, started=True)
        if low is None or low <= 1:
            return checkpoint  # the log reaches back to its first event
        handled = self.projection.handled_types()
        snapshots = [s for s in self.system.services[owner].snapshots
                     if any(t.startswith(f"{s.source}.") for t in handled)]
        if not snapshots:
            checkpoint.floor = checkpoint.position = low - 1
            self.report.partial[owner] = low
            return checkpoint
        await self._from_snapshots(owner, snapshots, checkpoint)
        return checkpoint

    async def _from_snapshots(self, owner: str, snapshots: list[Any], checkpoint: Checkpoint) -> None:
        """Apply the owner's current state, and note which outbox ids that state includes."""
        runtime = self.owners[owner]
        outbox = runtime.tables.outbox
        pages: list[list[Envelope]] = []
        async with UnitOfWork(runtime) as read:
            if runtime.dialect.name == "postgresql":  # the snapshot and the ids it includes: one view
                await read.session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            ids = list((await read.scalars(select(outbox.c.id).order_by(outbox.c.id))).all())
            for snapshot in snapshots:
                async for page in _snapshot_pages(snapshot, read, runtime, self.page_size):
                    self.report.from_snapshots += len(page)
                    if owner == self.runtime.name and not runtime.dialect.concurrent_connections:
                        pages.append(page)  # one SQLite connection: apply once the read is over
                    else:
                        await self._apply(page, {}, None)
            await read.rollback()
        for page in pages:
            await self._apply(page, {}, None)
        if ids:
            checkpoint.position = ids[-1]
            present = set(ids)
            now = time.time()
            checkpoint.holes = {i: now for i in range(ids[0], ids[-1]) if i not in present}

    # -- catching up -----------------------------------------------------------------------------
    async def _catch_up(self, checkpoints: dict[str, Checkpoint], uow: UnitOfWork | None = None) -> bool:
        """Apply one page per source; True while some source returned a full page."""
        more = False
        for owner, checkpoint in checkpoints.items():
            ahead = self._ahead.pop(owner, None)
            if ahead is not None and ahead[0] == checkpoint.position and uow is None:
                rows = await ahead[1]
            else:
                if ahead is not None:
                    ahead[1].cancel()
                rows = await read_page(self.owners[owner], checkpoint.position, checkpoint.holes, self.page_size,
                                       **self._via(owner, uow))
            if not rows:
                continue
            more = more or len(rows) >= self.page_size
            if uow is None and len(rows) >= self.page_size and not self._via(owner, None):
                # read the next page while this one is applied: the two round trips overlap
                self._ahead[owner] = (rows[-1].id, asyncio.ensure_future(read_page(
                    self.owners[owner], rows[-1].id, dict(checkpoint.holes), self.page_size)))
            envelopes = [envelope_from_row(row) for row in rows]
            await self._apply(envelopes, {owner: checkpoint}, uow)
            self.report.events += len(envelopes)
            if self.progress is not None:
                self.progress(RebuildProgress(self.report.events, self._total, time.perf_counter() - self._started,
                                              max(self._total - self.report.events, 0)))
        return more

    def _via(self, owner: str, uow: UnitOfWork | None) -> dict[str, Any]:
        """Read the owner's log through ``uow`` when the owner is this service on SQLite (one connection)."""
        if owner == self.runtime.name and not self.runtime.dialect.concurrent_connections:
            return {"via": uow} if uow is not None else {}
        return {}

    async def _apply(self, envelopes: list[Envelope], checkpoints: dict[str, Checkpoint],
                     uow: UnitOfWork | None) -> None:
        """Run the handlers of a page against the shadow and save the checkpoints, in ``uow`` or a new one."""
        if uow is None:
            async with UnitOfWork(self.runtime) as own:
                await self._apply(envelopes, checkpoints, own)
            return
        owners = {owner: self.owners[owner].source for owner in checkpoints}
        view = ProjectionUow(uow, self.projection, self.shadows, self.runtime.dialect)
        service = self.runtime.name
        for envelope in envelopes:
            subs = self.handlers.get(envelope.type)
            if subs:
                spec = self.registry.get(envelope.type)
                current = (envelope if spec is not None and spec.version == envelope.dataversion
                           else self.registry.upcast(envelope, service=service))
                uow.incoming = view.incoming = current
                for sub in subs:
                    await sub.fn(sub.parse(current, service), view)
            for owner, source in owners.items():
                if envelope.source == source:
                    checkpoints[owner].advance(envelope.sequence, envelope.time)
        uow.incoming = None
        for checkpoint in checkpoints.values():
            await save(uow, self.tables, self.runtime.dialect, checkpoint)

    # -- the swap --------------------------------------------------------------------------------
    async def _swap(self, checkpoints: dict[str, Checkpoint]) -> None:
        cp = self.tables.checkpoints
        async with UnitOfWork(self.runtime) as uow:
            if self.runtime.dialect.name == "postgresql":
                await uow.execute(LOCK_EXCLUSIVE, {"k": lock_name(self.runtime.name, self.projection.name)})
            await load(uow, self.tables, self.projection.name, for_update=True)  # live writers have finished
            while await self._catch_up(checkpoints, uow):
                pass
            await self._catch_up(checkpoints, uow)  # holes that committed meanwhile
            for live in self.projection.tables:
                await shadows.swap(uow, live, self.shadows[live.name])
            await uow.execute(cp.delete().where(cp.c.projection == self.projection.name))
            await uow.execute(cp.update().where(cp.c.projection == self.shadow_name)
                              .values(projection=self.projection.name))


async def _snapshot_pages(snapshot: Any, uow: UnitOfWork, owner: ServiceRuntime,
                          page_size: int) -> AsyncIterator[list[Envelope]]:
    """The owner's entities as envelopes of the event that describes each now (its Snapshot)."""
    async for described in snapshot.described(uow, page_size):
        page = []
        for row, event in described:
            key = event.key() or str(row.id)
            page.append(Envelope(id=f"snapshot-{key}-{row.version}"[:36], source=owner.source, type=event.event_type,
                                 data=event.to_json(), partitionkey=key, entityversion=int(row.version)))
        yield page


async def rebuild(system: Any, name: str, *, page_size: int = PAGE_SIZE,
                  progress: Callable[[RebuildProgress], None] | None = None) -> RebuildReport:
    """Rebuild projection ``name`` of ``system`` (see the module doc); raises RebuildInProgress if one runs."""
    from isles.projections.wiring import find
    service, projection = find(system, name)
    return await Rebuild(system, service.name, projection, page_size=page_size, progress=progress).run()
