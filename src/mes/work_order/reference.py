"""Reference data of other services, read through the reference data cache.

The durable copies are this service's read models (``replicated_parts``, ``replicated_work_centers``,
fed by events); the cache keeps the hot lookups (a dispatch list names every operation's work
center and part) off the database. It follows the owners' events, so an update invalidates the
entry with a versioned tombstone: a load that raced the update cannot write the old name back.
``REDIS_URL`` shares it between replicas of the service; unset, it lives in the process.
"""
from __future__ import annotations

import uuid
from typing import Any, Iterable

from sqlalchemy import select

from isles import Handlers, ReferenceDataCache, UnitOfWork
from isles.cache import Versioned
from mes.cache_keys import CacheKeyPrefix

cache = ReferenceDataCache(namespace="mes:work_order", name="work_order", default_ttl=300)


def follow(handlers: Handlers) -> None:
    handlers.include(cache.follow(CacheKeyPrefix.PART, source="mes.material.part"))
    handlers.include(cache.follow(CacheKeyPrefix.WORK_CENTER, source="mes.resource.work_center",
                                  actions=("updated",), optional=True))


async def _load(uow: UnitOfWork, model: Any, fields: tuple[str, ...], ids: list[str]) -> dict[str, Versioned]:
    # The caller's unit of work: a second one would wait forever for SQLite's single connection.
    rows = await uow.scalars(select(model).where(model.id.in_([uuid.UUID(i) for i in ids])))
    return {str(r.id): Versioned({f: getattr(r, f) for f in fields}, r.version) for r in rows}


async def parts(uow: UnitOfWork, ids: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """{part id: {part_number, part_name, is_active}} for the ids this service knows."""
    from mes.work_order.models import ReplicatedPart
    keys = [str(i) for i in ids if i is not None]
    return await cache.get_many_or_load(
        CacheKeyPrefix.PART, keys,
        lambda missing: _load(uow, ReplicatedPart, ("part_number", "part_name", "is_active"), missing))


async def work_centers(uow: UnitOfWork, ids: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """{work center id: {code, name}} for the ids this service knows."""
    from mes.work_order.models import ReplicatedWorkCenter
    keys = [str(i) for i in ids if i is not None]
    return await cache.get_many_or_load(
        CacheKeyPrefix.WORK_CENTER, keys, lambda missing: _load(uow, ReplicatedWorkCenter, ("code", "name"), missing))
