"""Reversing a consumption: material given back from a work order to the lot it came from.

A wrong lot scanned or an over-issue is corrected by a counter-movement, never by editing or
deleting the consumption: :class:`~mes.material.models.ConsumptionReversal` records how much came
back, why and who said so; the lot (and the sublot it was issued from, if that still exists)
gets the quantity back, a lot that the issue had used up is on hand again (``released``, or
``expired`` if its shelf life ended meanwhile), the genealogy edge shrinks by as much, and
``mes.material.lot.consumption_reversed`` tells work_order to take it off the order's actuals.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from sqlalchemy import func, select

from isles.api import ApiModel, ApiOut, Quantity
from isles.audit_trail import audit
from isles.http import Page, Paged, PageOut, Uow, get_or_404, paged
from isles.orm import utcnow
from mes.material.access import Handler
from mes.material.events import LotConsumptionReversed
from mes.material.lots import get_lot, is_expired, lot_state
from mes.material.models import Consumption, ConsumptionReversal, MaterialSublot, ReplicatedWorkOrder
from mes.material.parts import get_part
from mes.material.production import shrink_edges

router = APIRouter()


class ReversalIn(ApiModel):
    reason: str = Field(min_length=1, max_length=500, description="why the material goes back (kept on record)")
    quantity: Quantity | None = Field(default=None, gt=0, description="default: all of it not yet given back")


class ReversalOut(ApiOut):
    id: uuid.UUID
    consumption_id: uuid.UUID
    quantity: Quantity
    reason: str
    reversed_by: str | None
    reversed_at: datetime


@router.post("/consumptions/{consumption_id}/reverse", status_code=status.HTTP_201_CREATED,
             response_model=ReversalOut)
async def reverse_consumption(consumption_id: uuid.UUID, data: ReversalIn, uow: Uow,
                              principal: Handler) -> ConsumptionReversal:
    """Give issued material back to its lot (all of it, or ``quantity``), with a reason."""
    consumption = await get_or_404(uow, Consumption, consumption_id, what="consumption")
    lot = await get_lot(uow, consumption.lot_id, lock=True)  # serialises reversals of this lot's issues
    back = Decimal(await uow.scalar(select(func.coalesce(func.sum(ConsumptionReversal.quantity), 0))
                                    .where(ConsumptionReversal.consumption_id == consumption.id)) or 0)
    left = Decimal(consumption.quantity) - back
    quantity = data.quantity if data.quantity is not None else left
    if left <= 0:
        raise HTTPException(status.HTTP_409_CONFLICT, f"consumption {consumption.id} was already reversed in full")
    if quantity > left:
        raise HTTPException(status.HTTP_409_CONFLICT, f"consumption {consumption.id} has {left} "
                                                      f"{consumption.unit_of_measure} not given back; "
                                                      f"{quantity} cannot be reversed")
    order = await uow.get(ReplicatedWorkOrder, consumption.work_order_id)
    if order is not None and order.status == "Closed":
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is Closed; its "
                                                      "record is final")
    lot.quantity = Decimal(lot.quantity) + quantity
    if consumption.sublot_id is not None:
        sublot = await uow.get(MaterialSublot, consumption.sublot_id)
        if sublot is not None:
            sublot.quantity = Decimal(sublot.quantity) + quantity
    if lot.status == "consumed":
        lot.status = "expired" if is_expired(lot) else "released"
        lot.status_reason = f"issue to {order.work_order_number if order else consumption.work_order_id} reversed"
    row = ConsumptionReversal(consumption_id=consumption.id, quantity=quantity, reason=data.reason,
                              reversed_by=principal.user_id, reversed_at=utcnow())
    uow.add(row)
    child_id = await shrink_edges(uow, consumption, quantity)
    await uow.flush()
    part = await get_part(uow, lot.part_id, active=False)
    audit(uow, principal, "consumption.reversed", "consumption", consumption.id,
          {"net_quantity": (left, left - quantity), "lot_quantity": (lot.quantity - quantity, lot.quantity)},
          reason=data.reason)
    uow.publish(LotConsumptionReversed(
        **lot_state(lot, part), reversal_id=str(row.id), consumption_id=str(consumption.id), reversed_quantity=quantity,
        work_order_id=str(consumption.work_order_id), work_order_number=order.work_order_number if order else None,
        operation_code=consumption.operation_code, child_lot_id=str(child_id) if child_id else None,
        reason=data.reason, reversed_by=principal.user_id, reversed_at=row.reversed_at.isoformat()), entity=lot)
    await uow.commit()
    return row


@router.get("/consumption-reversals", response_model=PageOut[ReversalOut])
async def list_reversals(uow: Uow, page: Page,
                         consumption_id: uuid.UUID | None = Query(None, alias="consumptionId")
                         ) -> Paged[ConsumptionReversal]:
    return await paged(uow, select(ConsumptionReversal).order_by(ConsumptionReversal.reversed_at), page,
                       consumption_id=consumption_id)
