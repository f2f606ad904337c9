"""How far behind a projection is, per source: events not applied yet and the oldest one's age."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from isles.projections.checkpoint import Checkpoint, load
from isles.projections.live import followed_sources
from isles.projections.log import count_after
from isles.projections.shadow import SUFFIX
from isles.projections.wiring import projections_of


@dataclass(frozen=True)
class ProjectionLag:
    projection: str
    service: str
    source: str
    position: int
    applied: int
    #: events of the source's retained log not applied yet (None: the source is not started here)
    behind: int | None
    #: age in seconds of the oldest of them (None: none behind, or unknown)
    oldest_unapplied_age_s: float | None
    rebuilding: bool


async def projection_lag(system: Any, name: str | None = None) -> list[ProjectionLag]:
    """One row per (projection, source) of the projections whose service runs in this process.

    Suitable for ``isles status``: it reads the consuming service's checkpoints and, for each
    source started in this process, counts its outbox rows after the checkpoint (holes included).
    """
    rows: list[ProjectionLag] = []
    for projection_name, (service, projection) in sorted(projections_of(system.services.values()).items()):
        if (name is not None and projection_name != name) or service.name not in system.runtimes:
            continue
        runtime = system.runtimes[service.name]
        tables = service.projection_tables
        async with runtime.database.engine.connect() as conn:
            checkpoints = await load(conn, tables, projection_name)
            shadow = await load(conn, tables, projection_name + SUFFIX)
            running = (await conn.execute(tables.rebuilds.select().where(
                tables.rebuilds.c.projection == projection_name))).first() is not None
            await conn.rollback()
        for source in followed_sources(projection, system.registry, service=service.name):
            checkpoint = checkpoints.get(source) or Checkpoint(projection_name, source)
            behind: int | None = None
            age: float | None = None
            if source in system.runtimes:
                behind, oldest = await count_after(system.runtimes[source], checkpoint.position, checkpoint.holes)
                if oldest is not None and behind:
                    oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=timezone.utc)
                    age = (datetime.now(timezone.utc) - oldest).total_seconds()
            rows.append(ProjectionLag(projection_name, service.name, source, checkpoint.position, checkpoint.applied,
                                      behind, age, running or source in shadow))
    return rows
