"""Handlers for other services' events (the replicated fields are declared in service_def.py)."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update

from isles import Handlers, UnitOfWork
from mes.work_order import reference
from mes.work_order.events import ConsumptionReversed, LotConsumed, PartRetired
from mes.work_order.models import MaterialActual, ReplicatedPart, WorkOrder

handlers = Handlers()
reference.follow(handlers)


@handlers.on("mes.material.part.deleted")
async def part_retired(event: PartRetired, uow: UnitOfWork) -> None:
    """A retired part can no longer be ordered; existing work orders keep their copy."""
    version = uow.incoming.entityversion if uow.incoming else None
    await uow.execute(update(ReplicatedPart)
                      .where(ReplicatedPart.id == uuid.UUID(event.part_id), ReplicatedPart.version < version)
                      .values(is_active=False, version=version))


@handlers.on("mes.material.lot.consumed")
async def material_issued(event: LotConsumed, uow: UnitOfWork) -> None:
    """Record material issued to one of our orders (the B2MML MaterialActual of its performance)."""
    order_id = uuid.UUID(event.work_order_id)
    if await uow.get(WorkOrder, order_id) is None:
        return  # not one of ours (material only issues to orders it learnt from us; nothing to record)
    consumption_id = uuid.UUID(event.consumption_id)
    if await uow.scalar(select(MaterialActual.id).where(MaterialActual.consumption_id == consumption_id)):
        return
    uow.add(MaterialActual(consumption_id=consumption_id, work_order_id=order_id, lot_id=uuid.UUID(event.lot_id),
                           lot_number=event.lot_number, part_id=uuid.UUID(event.part_id),
                           part_number=event.part_number, quantity=event.consumed_quantity,
                           unit_of_measure=event.unit_of_measure, operation_code=event.operation_code,
                           consumed_at=datetime.fromisoformat(event.consumed_at)))


@handlers.on("mes.material.lot.consumption_reversed")
async def material_given_back(event: ConsumptionReversed, uow: UnitOfWork) -> None:
    """Material given back from one of our orders: a negative material actual (see MaterialActual)."""
    order_id = uuid.UUID(event.work_order_id)
    if await uow.get(WorkOrder, order_id) is None:
        return
    reversal_id = uuid.UUID(event.reversal_id)
    if await uow.scalar(select(MaterialActual.id).where(MaterialActual.consumption_id == reversal_id)):
        return
    uow.add(MaterialActual(consumption_id=reversal_id, reverses_consumption_id=uuid.UUID(event.consumption_id),
                           work_order_id=order_id, lot_id=uuid.UUID(event.lot_id), lot_number=event.lot_number,
                           part_id=uuid.UUID(event.part_id), part_number=event.part_number,
                           quantity=-event.reversed_quantity, unit_of_measure=event.unit_of_measure,
                           operation_code=event.operation_code, reason=event.reason,
                           consumed_at=datetime.fromisoformat(event.reversed_at)))
