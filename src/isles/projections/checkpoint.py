"""A checkpoint: which events of one source stream a projection has applied, gaps included.

Outbox ids are taken at INSERT, before commit, so a source's stream has gaps: an id whose
transaction rolled back (it never comes) and an id whose transaction is still open (it comes
late, below ids already applied). A single "last position" would either stop at such a gap or
skip the late commit. So a checkpoint is ``position`` (the highest id applied), ``holes`` (the
ids at or below it not applied yet, each with when it was first missed) and ``floor`` (ids at or
below it are not tracked: they predate the projection's first event and only a rebuild covers
them). An id is applied iff ``floor < id <= position`` and it is not a hole.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select

from isles.orm import as_utc, utcnow
from isles.projections.tables import ProjectionTables

#: a hole older than this is taken for a rolled-back id and forgotten (a transaction that held
#: an outbox id for a whole day and then committed would be missed by the checkpoint)
HOLE_PATIENCE_S = 24 * 3600.0


@dataclass
class Checkpoint:
    projection: str
    source: str
    position: int = 0
    floor: int = 0
    holes: dict[int, float] = field(default_factory=dict)
    applied: int = 0
    last_event_at: datetime | None = None
    #: the row exists in the database (update it) or not yet (insert it)
    exists: bool = False
    #: the floor is set: by a rebuild, or by the first event applied live
    started: bool = False

    def has(self, sequence: int) -> bool:
        """Whether the event at outbox id ``sequence`` was applied already."""
        return self.floor < sequence <= self.position and sequence not in self.holes

    def advance(self, sequence: int | None, occurred_at: datetime | None = None) -> None:
        """Record the event at ``sequence`` as applied (or ignored: that counts too)."""
        self.applied += 1
        if occurred_at is not None and (self.last_event_at is None or occurred_at > self.last_event_at):
            self.last_event_at = occurred_at
        if sequence is None:
            return
        if not self.started:  # (stored as floor -1)
            self.floor = self.position = sequence - 1  # the first event seen: what came before is a rebuild's job
            self.started = True
        if sequence > self.position:
            now = time.time()
            for missing in range(max(self.position, self.floor) + 1, sequence):
                self.holes[missing] = now
            self.position = sequence
        else:
            self.holes.pop(sequence, None)

    def forget_old_holes(self) -> None:
        cutoff = time.time() - HOLE_PATIENCE_S
        if self.holes and min(self.holes.values()) < cutoff:
            self.holes = {k: v for k, v in self.holes.items() if v >= cutoff}

    def values(self) -> dict[str, Any]:
        self.forget_old_holes()
        return {"position": self.position, "floor": self.floor if self.started else -1,
                "holes": orjson.dumps({str(k): v for k, v in self.holes.items()}).decode(),
                "applied": self.applied, "last_event_at": self.last_event_at, "updated_at": utcnow()}


def from_row(projection: str, source: str, row: Any) -> Checkpoint:
    if row is None:
        return Checkpoint(projection, source)
    holes = {int(k): float(v) for k, v in orjson.loads(row.holes or "{}").items()}
    return Checkpoint(projection, source, int(row.position), int(row.floor), holes, int(row.applied),
                      as_utc(row.last_event_at) if row.last_event_at else None, exists=True,
                      started=int(row.floor) >= 0)


async def load(executor: Any, tables: ProjectionTables, projection: str, *,
               for_update: bool = False) -> dict[str, Checkpoint]:
    """The checkpoints of ``projection`` by source, read (and row-locked if asked) through ``executor``."""
    cp = tables.checkpoints
    query = select(cp).where(cp.c.projection == projection)
    if for_update:
        query = query.with_for_update()
    rows = (await executor.execute(query)).all()
    return {row.source: from_row(projection, row.source, row) for row in rows}


async def ensure_rows(executor: Any, tables: ProjectionTables, dialect: Any, projection: str,
                      sources: list[str]) -> None:
    """Create the missing checkpoint rows (not started: floor -1), so that concurrent live
    transactions lock an existing row instead of racing to insert it."""
    cp = tables.checkpoints
    for source in sources:
        await executor.execute(dialect.insert(cp).values(projection=projection, source=source, position=0, floor=-1,
                                                         holes="{}", applied=0)
                               .on_conflict_do_nothing(index_elements=["projection", "source"]))


async def save(executor: Any, tables: ProjectionTables, dialect: Any, checkpoint: Checkpoint) -> None:
    cp = tables.checkpoints
    values = checkpoint.values()
    if checkpoint.exists:
        await executor.execute(cp.update().where(cp.c.projection == checkpoint.projection,
                                                 cp.c.source == checkpoint.source).values(values))
    else:
        await executor.execute(dialect.insert(cp).values(projection=checkpoint.projection, source=checkpoint.source,
                                                         **values)
                               .on_conflict_do_update(index_elements=["projection", "source"], set_=values))
        checkpoint.exists = True
