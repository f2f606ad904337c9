"""Waiting until what has committed has also been applied, on any transport.

"The relay has sent it" is not "the consumer has applied it": over a broker an event can sit in a
partition or a stream for a while after it left the outbox. So the wait compares positions: the
producer's outbox says which events of a consumer's types committed up to a point, the consumer's
inbox and dead letters say which of them it has settled (applied, or parked for a person to look
at). Nothing is asked of the transport, so every transport gets the same answer.

The check reads both databases, so it sees the services started in this process. Each pair keeps
a watermark, the outbox position below which everything was settled, so repeated waits look only
at what is new. Outbox ids are taken before commit, so a missing id may be a transaction still
open (it will appear below what was already checked) or one that rolled back (it never will): the
watermark stops before a gap until the rows after it are ``GAP_PATIENCE`` old, so a late commit is
checked by the next wait rather than skipped.
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterable

from sqlalchemy import func, select

from isles.orm import as_utc, utcnow
from isles.runtime import ServiceRuntime

#: outbox rows looked at per query (well under SQLite's limit of bound parameters)
_PAGE = 500
#: how long a gap in the outbox ids may be a transaction that is still open
GAP_PATIENCE = timedelta(seconds=60)


@dataclass
class Watermarks:
    """Per (producer, consumer): the outbox id up to which the consumer has settled every event."""

    settled: dict[tuple[str, str], int] = field(default_factory=dict)

    async def wait(self, producer: ServiceRuntime, consumer: ServiceRuntime, types: Iterable[str],
                   deadline: float) -> None:
        """Wait until ``consumer`` settled every event of ``types`` that ``producer`` committed so far."""
        wanted = frozenset(types)
        if not wanted:
            return
        outbox = producer.tables.outbox
        async with producer.database.engine.connect() as conn:
            upto = await conn.scalar(select(func.max(outbox.c.id)))
            await conn.rollback()
        if upto is None:
            return
        pair = (producer.name, consumer.name)
        position = self.settled.get(pair, 0)  # this wait's progress: everything up to it is settled
        keep: int | None = None  # where the stored watermark stops: before the first young gap
        while position < upto:
            rows = await _page(producer, position, upto)
            if not rows:
                break
            events = [row.event_id for row in rows if row.type in wanted]
            done = await _settled(consumer, events) if events else set()
            if len(done) < len(set(events)):
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"service '{consumer.name}' has not applied {len(set(events) - done)} event(s) that "
                        f"'{producer.name}' committed (outbox ids {rows[0].id}-{rows[-1].id}): is its consumer "
                        "running, and the transport reachable?")
                await asyncio.sleep(0.02)
                continue
            young = utcnow() - GAP_PATIENCE
            for row in rows:
                if keep is None and row.id != position + 1 and as_utc(row.occurred_at) > young:
                    keep = position
                position = row.id
        self.settled[pair] = upto if keep is None else keep


async def _page(producer: ServiceRuntime, after: int, upto: int) -> list[Any]:
    outbox = producer.tables.outbox
    async with producer.database.engine.connect() as conn:
        rows = (await conn.execute(
            select(outbox.c.id, outbox.c.event_id, outbox.c.type, outbox.c.occurred_at)
            .where(outbox.c.id > after, outbox.c.id <= upto).order_by(outbox.c.id).limit(_PAGE))).all()
        await conn.rollback()
    return list(rows)


async def _settled(consumer: ServiceRuntime, event_ids: list[str]) -> set[str]:
    """The ids among ``event_ids`` that ``consumer`` applied (inbox) or parked (dead letters)."""
    inbox, dead = consumer.tables.inbox, consumer.tables.dead_letters
    async with consumer.database.engine.connect() as conn:
        applied = set((await conn.scalars(select(inbox.c.event_id).where(inbox.c.event_id.in_(event_ids)))).all())
        parked = set((await conn.scalars(select(dead.c.event_id).where(dead.c.event_id.in_(event_ids)))).all())
        await conn.rollback()
    return applied | parked
