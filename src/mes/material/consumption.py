"""Issuing material into a work order.

material does not read work_order's database: it knows the work orders from their events
(``replicated_work_orders``, a read model fed by ``mes.work_order.work_order.*``). An issue is
refused when the work order is not released or running, when the lot is not released (or has
expired), when the quantity is not there, and when the lot's part is not on the released BOM of
the part the work order makes - the checks a materials planner expects an MES to make.

Two more, from the order's copy (its quantity and operation codes arrive with its events):
- issuing past the BOM requirement (quantityPer x the order quantity, summed over the BOM's lines
  for the component) needs a ``reason``, recorded on the consumption; without one it is a 409
  naming the requirement and what was issued already;
- an ``operationCode`` must be one of the order's operations (work_order publishes their codes
  from release on). The order's operations, not the BOM line's code, are checked: the routing
  the order was planned from is what runs on the floor, and a BOM line may name no operation.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from sqlalchemy import func, select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut, Quantity
from isles.http import Page, Paged, PageOut, Uow, paged
from isles.orm import utcnow
from isles.text import Identifier
from mes.material.access import Handler
from mes.material.boms import released_bom
from mes.material.events import LotConsumed
from mes.material.lots import get_lot, is_expired, loose_quantity, lot_state
from mes.material.models import (
    BomItem,
    Consumption,
    MaterialLot,
    MaterialSublot,
    Part,
    ReplicatedWorkOrder,
    SerializedPart,
)
from mes.material.parts import get_part
from mes.material.production import link_consumption

router = APIRouter()
ISSUABLE = ("Released", "Ready", "Running", "Paused")


class ConsumptionIn(ApiModel):
    lot_id: uuid.UUID
    work_order_id: uuid.UUID
    quantity: Quantity = Field(gt=0)
    sublot_id: uuid.UUID | None = Field(default=None, description="issue from this sublot of the lot")
    operation_code: Identifier | None = Field(default=None, min_length=1, max_length=64)
    serial_id: uuid.UUID | None = Field(default=None, description="the serialized unit the material goes into")
    reason: str | None = Field(default=None, min_length=1, max_length=500,
                               description="required to issue more than the BOM requirement for the order")


class ConsumptionOut(ApiOut):
    id: uuid.UUID
    lot_id: uuid.UUID
    sublot_id: uuid.UUID | None
    work_order_id: uuid.UUID
    operation_code: str | None
    serial_id: uuid.UUID | None
    quantity: Quantity
    unit_of_measure: str
    consumed_by: str | None
    consumed_at: datetime
    reason: str | None = None


async def _work_order(uow: UnitOfWork, work_order_id: uuid.UUID) -> ReplicatedWorkOrder:
    # locked: issues to one order are serialised, so two cannot both pass the requirement check
    order: ReplicatedWorkOrder | None = await uow.scalar(
        select(ReplicatedWorkOrder).where(ReplicatedWorkOrder.id == work_order_id).with_for_update())
    if order is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"work order {work_order_id} is unknown to material; work orders arrive through "
                            "mes.work_order.work_order.* events - check `isles status` if it was just created")
    if order.status not in ISSUABLE:
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}; "
                                                      f"material is issued only to {', '.join(ISSUABLE)} orders")
    return order


async def _check_bom(uow: UnitOfWork, order: ReplicatedWorkOrder, component: Part, quantity: Decimal,
                     reason: str | None) -> None:
    parent_id = uuid.UUID(order.part_id) if order.part_id else None
    bom = await released_bom(uow, parent_id) if parent_id else None
    if bom is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"the part of work order {order.work_order_number} has no "
                                                      "released BOM; release one before issuing material")
    per = list(await uow.scalars(select(BomItem.quantity_per).where(BomItem.bom_id == bom.id,
                                                                    BomItem.component_part_id == component.id)))
    if not per:
        raise HTTPException(status.HTTP_409_CONFLICT, f"part {component.part_number} is not on BOM version "
                                                      f"{bom.bom_version} of the part work order "
                                                      f"{order.work_order_number} makes")
    if order.quantity is None or reason:
        return
    required = sum((Decimal(q) for q in per), Decimal(0)) * Decimal(order.quantity)
    issued = Decimal(await uow.scalar(
        select(func.coalesce(func.sum(Consumption.quantity), 0)).join(MaterialLot, MaterialLot.id == Consumption.lot_id)
        .where(Consumption.work_order_id == order.id, MaterialLot.part_id == component.id)) or 0)
    if issued + quantity > required:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"work order {order.work_order_number} requires {_shown(required)} "
                            f"{component.unit_of_measure} of {component.part_number} (BOM version {bom.bom_version}: "
                            f"{_shown(sum((Decimal(q) for q in per), Decimal(0)))} per unit "
                            f"x {_shown(order.quantity)}) "
                            f"and has {_shown(issued)}; issuing {_shown(quantity)} more needs a reason (over-issue)")


def _shown(value: Decimal | int) -> str:
    return format(Decimal(value).normalize(), "f")


def _check_operation(order: ReplicatedWorkOrder, code: str | None) -> None:
    codes = order.operation_codes
    if code is not None and codes is not None and code not in codes:
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} has no operation "
                                                      f"{code}; its operations are {', '.join(codes)}")


async def consume(uow: UnitOfWork, data: ConsumptionIn, consumed_by: str | None) -> Consumption:
    order = await _work_order(uow, data.work_order_id)
    lot = await get_lot(uow, data.lot_id, lock=True)  # before reading quantities (see lots.get_lot)
    if lot.status != "released":
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot {lot.lot_number} is {lot.status}; only released lots "
                                                      "are issued")
    if is_expired(lot):
        raise HTTPException(status.HTTP_409_CONFLICT, f"lot {lot.lot_number} expired at {lot.expires_at}; it "
                                                      "cannot be issued (POST /lots/expire-due marks it)")
    part = await get_part(uow, lot.part_id, active=False)
    _check_operation(order, data.operation_code)
    await _check_bom(uow, order, part, data.quantity, data.reason)
    if data.sublot_id is not None:
        sublot = await uow.get(MaterialSublot, data.sublot_id)
        if sublot is None or sublot.lot_id != lot.id:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"sublotId {data.sublot_id} is not a sublot "
                                                                       f"of lot {lot.lot_number}")
        available = Decimal(sublot.quantity)
    else:
        sublot, available = None, await loose_quantity(uow, lot)
    if data.quantity > available:
        where = f"sublot {sublot.sublot_number}" if sublot else f"lot {lot.lot_number} (outside its sublots)"
        raise HTTPException(status.HTTP_409_CONFLICT, f"{where} has {available} {lot.unit_of_measure}; "
                                                      f"{data.quantity} cannot be issued")
    if data.serial_id is not None:
        unit = await uow.get(SerializedPart, data.serial_id)
        if unit is None or unit.work_order_id not in (None, order.id):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"serialId {data.serial_id} is not a unit of work order {order.work_order_number}")
    if sublot is not None:
        sublot.quantity = available - data.quantity
    lot.quantity = Decimal(lot.quantity) - data.quantity
    if lot.quantity == 0:
        lot.status, lot.status_reason = "consumed", f"issued to {order.work_order_number}"
    row = Consumption(lot_id=lot.id, sublot_id=data.sublot_id, work_order_id=order.id,
                      operation_code=data.operation_code, serial_id=data.serial_id, quantity=data.quantity,
                      unit_of_measure=lot.unit_of_measure, consumed_by=consumed_by, consumed_at=utcnow(),
                      reason=data.reason)
    uow.add(row)
    await uow.flush()
    child_lot_id = await link_consumption(uow, row)  # the order's finished lot, if it has one already
    uow.publish(LotConsumed(**lot_state(lot, part), consumption_id=str(row.id), consumed_quantity=row.quantity,
                            work_order_id=str(order.id), work_order_number=order.work_order_number,
                            operation_code=row.operation_code, sublot_id=str(sublot.id) if sublot else None,
                            serial_id=str(row.serial_id) if row.serial_id else None, consumed_by=consumed_by,
                            consumed_at=row.consumed_at.isoformat(),
                            child_lot_id=str(child_lot_id) if child_lot_id else None), entity=lot)
    return row


@router.post("/consumptions", status_code=status.HTTP_201_CREATED, response_model=ConsumptionOut)
async def post_consumption(data: ConsumptionIn, uow: Uow, principal: Handler) -> Consumption:
    """Issue a quantity of a released lot into a released or running work order."""
    row = await consume(uow, data, principal.user_id)
    await uow.commit()
    return row


@router.get("/consumptions", response_model=PageOut[ConsumptionOut])
async def list_consumptions(uow: Uow, page: Page, work_order_id: uuid.UUID | None = Query(None, alias="workOrderId"),
                            lot_id: uuid.UUID | None = Query(None, alias="lotId")) -> Paged[Consumption]:
    return await paged(uow, select(Consumption).order_by(Consumption.consumed_at, Consumption.id), page,
                       work_order_id=work_order_id, lot_id=lot_id)
