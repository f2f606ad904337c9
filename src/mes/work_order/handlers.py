"""Handlers for other services' events."""
from __future__ import annotations

import uuid

from sqlalchemy import update

from isles import Handlers, UnitOfWork
from mes.work_order.events import PartRetired
from mes.work_order.models import ReplicatedPart

handlers = Handlers()


@handlers.on("mes.material.part.deleted")
async def part_retired(event: PartRetired, uow: UnitOfWork) -> None:
    """A retired part can no longer be ordered; existing work orders keep their copy."""
    version = uow.incoming.entityversion if uow.incoming else None
    await uow.execute(update(ReplicatedPart)
                      .where(ReplicatedPart.id == uuid.UUID(event.part_id), ReplicatedPart.version < version)
                      .values(is_active=False, version=version))
