"""One rebuild per projection at a time, also across processes: a lock row with a heartbeat.

The row is inserted with ON CONFLICT DO NOTHING in the consuming service's own database, so
two processes (or two Systems) racing both try, and exactly one inserts it; the other is
refused with :class:`RebuildInProgress` naming who holds it. A process that died leaves a row
whose heartbeat stops: after ``STALE_AFTER`` another rebuild may take it over.
"""
from __future__ import annotations

import os
import socket
import uuid
from datetime import timedelta

from sqlalchemy import select

from isles.errors import IslesError
from isles.orm import utcnow
from isles.projections.tables import ProjectionTables
from isles.runtime import ServiceRuntime

STALE_AFTER = timedelta(seconds=60)


class RebuildInProgress(IslesError):
    """Another rebuild of the same projection holds its lock."""


class Fence:
    def __init__(self, runtime: ServiceRuntime, tables: ProjectionTables, projection: str):
        self.runtime = runtime
        self.table = tables.rebuilds
        self.projection = projection
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def acquire(self) -> None:
        t, now = self.table, utcnow()
        async with self.runtime.database.engine.begin() as conn:
            inserted = await conn.execute(self.runtime.dialect.insert(t).values(
                projection=self.projection, owner=self.owner, started_at=now, heartbeat_at=now)
                .on_conflict_do_nothing(index_elements=["projection"]))
            if inserted.rowcount:
                return
            taken = await conn.execute(t.update().where(t.c.projection == self.projection,
                                                        t.c.heartbeat_at < now - STALE_AFTER)
                                       .values(owner=self.owner, started_at=now, heartbeat_at=now))
            if taken.rowcount:
                return
            row = (await conn.execute(select(t).where(t.c.projection == self.projection))).first()
        holder = f"{row.owner} since {row.started_at:%Y-%m-%d %H:%M:%S}" if row else "another process"
        raise RebuildInProgress(f"projection {self.projection!r} is being rebuilt by {holder}",
                                service=self.runtime.name,
                                fix="wait for it to finish (`isles projections status`); a rebuild whose process "
                                    f"died is taken over after {int(STALE_AFTER.total_seconds())} s")

    async def beat(self) -> None:
        t = self.table
        async with self.runtime.database.engine.begin() as conn:
            kept = await conn.execute(t.update().where(t.c.projection == self.projection, t.c.owner == self.owner)
                                      .values(heartbeat_at=utcnow()))
        if not kept.rowcount:
            raise RebuildInProgress(f"the rebuild of projection {self.projection!r} lost its lock to another process",
                                    service=self.runtime.name, fix="let the other rebuild finish")

    async def release(self) -> None:
        t = self.table
        async with self.runtime.database.engine.begin() as conn:
            await conn.execute(t.delete().where(t.c.projection == self.projection, t.c.owner == self.owner))
