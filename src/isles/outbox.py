"""The outbox as the unit of work writes it and the relay reads it.

One codec both sides share (envelope -> row, row -> envelope), the columns the relay reads and
the backlog query; the table itself is declared in :mod:`isles.tables`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from sqlalchemy import func, select

from isles.events import Envelope
from isles.orm import as_utc

if TYPE_CHECKING:
    from isles.runtime import ServiceRuntime

#: what the relay reads of a row: what the envelope needs, plus its id and attempts, in table order
#: (``envelope_from_row`` reads by position)
SENT_COLUMNS = ("id", "event_id", "type", "source", "subject", "partition_key", "entity_version", "data_version",
                "trace_parent", "occurred_at", "data", "attempts")
#: positions read for every row sent (by name, a SQLAlchemy row costs ten times as much)
ID, KEY = SENT_COLUMNS.index("id"), SENT_COLUMNS.index("partition_key")


def outbox_row(envelope: Envelope) -> dict[str, Any]:
    """The outbox row (column -> value) that records ``envelope``."""
    return {
        "event_id": envelope.id, "type": envelope.type, "source": envelope.source,
        "subject": envelope.subject, "partition_key": envelope.partitionkey,
        "entity_version": envelope.entityversion, "data_version": envelope.dataversion,
        "trace_parent": envelope.traceparent, "occurred_at": envelope.time,
        "data": envelope.data.decode(),
    }


def envelope_from_row(row: Sequence[Any]) -> Envelope:
    """The envelope of an outbox row whose columns come in table order, ``id`` to ``data`` at least.

    Read by position: the relay does this for every row it sends, and reading a SQLAlchemy row
    by name costs ten times as much.
    """
    (position, event_id, type_, source, subject, key, entity_version, data_version, trace_parent, occurred_at,
     data) = row[:11]
    return Envelope(id=event_id, source=source, type=type_, data=data.encode(), partitionkey=key,
                    entityversion=entity_version, time=as_utc(occurred_at), subject=subject,
                    traceparent=trace_parent, dataversion=data_version, sequence=position)


async def backlog(runtime: "ServiceRuntime") -> tuple[int, Any]:
    """(unpublished rows, oldest unpublished occurred_at) of a service's outbox."""
    outbox = runtime.tables.outbox
    async with runtime.database.engine.connect() as conn:
        count, oldest = (await conn.execute(
            select(func.count(), func.min(outbox.c.occurred_at)).where(outbox.c.published_at.is_(None)))).one()
    return count, oldest
