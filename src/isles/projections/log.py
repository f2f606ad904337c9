"""Reading an owner's retained event log (its outbox) in pages, for a rebuild."""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import func, or_, select

from isles.outbox import SENT_COLUMNS
from isles.runtime import ServiceRuntime

_COLUMNS = SENT_COLUMNS[:11]  # id .. data: what envelope_from_row reads


async def read_page(owner: ServiceRuntime, after: int, holes: Iterable[int], limit: int, via: Any = None) -> list[Any]:
    """Up to ``limit`` committed outbox rows with id > ``after`` or id among ``holes``, in id order.

    ``via`` (a unit of work) reads through it instead of a new connection: needed when the owner
    is the projection's own service on SQLite, whose one connection that unit of work holds.
    """
    outbox = owner.tables.outbox
    condition = outbox.c.id > after
    holes = sorted(holes)[:500]
    if holes:
        condition = or_(condition, outbox.c.id.in_(holes))
    query = select(*(outbox.c[c] for c in _COLUMNS)).where(condition).order_by(outbox.c.id).limit(limit)
    if via is not None:
        return list((await via.execute(query)).all())
    async with owner.database.engine.connect() as conn:
        rows = list((await conn.execute(query)).all())
        await conn.rollback()
    return rows


async def bounds(owner: ServiceRuntime, via: Any = None) -> tuple[int | None, int | None]:
    """(lowest, highest) id retained in the owner's outbox."""
    outbox = owner.tables.outbox
    query = select(func.min(outbox.c.id), func.max(outbox.c.id))
    if via is not None:
        low, high = (await via.execute(query)).one()
        return low, high
    async with owner.database.engine.connect() as conn:
        low, high = (await conn.execute(query)).one()
        await conn.rollback()
    return low, high


async def count_after(owner: ServiceRuntime, after: int, holes: Iterable[int] = ()) -> tuple[int, Any]:
    """(rows, oldest occurred_at) of the owner's outbox after ``after`` or among ``holes``."""
    outbox = owner.tables.outbox
    condition = outbox.c.id > after
    holes = sorted(holes)[:500]
    if holes:
        condition = or_(condition, outbox.c.id.in_(holes))
    async with owner.database.engine.connect() as conn:
        count, oldest = (await conn.execute(select(func.count(), func.min(outbox.c.occurred_at))
                                            .where(condition))).one()
        await conn.rollback()
    return int(count or 0), oldest
