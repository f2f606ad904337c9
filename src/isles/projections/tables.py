"""The tables a service with projections keeps: one checkpoint row per (projection, source), one
lock row per running rebuild.

They live in the consuming service's own metadata, next to the read-model tables, so the
read-model writes and the checkpoint commit in one local transaction.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, Text, text

CHECKPOINTS = "isles_projection_checkpoints"
REBUILDS = "isles_projection_rebuilds"


@dataclass(frozen=True)
class ProjectionTables:
    checkpoints: Table
    rebuilds: Table


def install_projection_tables(metadata: MetaData) -> ProjectionTables:
    """Add the projection tables to ``metadata`` (idempotent) and return them."""
    if CHECKPOINTS in metadata.tables:
        return ProjectionTables(metadata.tables[CHECKPOINTS], metadata.tables[REBUILDS])
    checkpoints = Table(
        CHECKPOINTS, metadata,
        Column("projection", String(100), primary_key=True),
        Column("source", String(100), primary_key=True),  # the owning service of the stream
        # the highest outbox id applied; ids in (floor, position] are applied unless listed in holes
        Column("position", BigInteger, nullable=False, server_default=text("0")),
        Column("floor", BigInteger, nullable=False, server_default=text("0")),
        # JSON {outbox id: unix time first missed}: committed later or never (rolled back)
        Column("holes", Text, nullable=False, server_default=text("'{}'")),
        Column("applied", BigInteger, nullable=False, server_default=text("0")),
        Column("last_event_at", DateTime(timezone=True)),
        Column("updated_at", DateTime(timezone=True)),
    )
    rebuilds = Table(
        REBUILDS, metadata,
        Column("projection", String(100), primary_key=True),
        Column("owner", String(200), nullable=False),  # host:pid of the process rebuilding
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("heartbeat_at", DateTime(timezone=True), nullable=False),
    )
    return ProjectionTables(checkpoints, rebuilds)
