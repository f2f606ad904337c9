"""Planned against actual: per operation (minutes, good, scrap) and for the order, with material
issued set against what the BOM requires for the order quantity.

The requirement comes from work_order's copy of each part's BOM in force (``replicated_boms``, fed
by material's ``bom.released`` events): the variance stays a read of this service's own tables.

Computed on read from the operations and the material actuals - the record itself is what was
planned and what was reported, so the variance can never disagree with it.
"""
from __future__ import annotations

import uuid
from decimal import Decimal

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy import select

from isles.api import ApiOut, Quantity
from isles.http import Uow
from mes.work_order.models import MaterialActual, ReplicatedBom
from mes.work_order.orders import get_order, operations_of
from mes.work_order.quantities import yield_percent

router = APIRouter()


class OperationVariance(ApiOut):
    sequence: int
    code: str
    status: str
    planned_minutes: Quantity
    actual_minutes: Quantity
    minutes_variance: float = 0.0  # actual - planned; negative is faster than planned
    quantity_good: Quantity
    quantity_scrap: Quantity


class MaterialIssued(ApiOut):
    part_id: uuid.UUID
    part_number: str
    quantity: Quantity
    unit_of_measure: str
    lots: list[str]
    required: Quantity | None = Field(default=None, description="BOM quantityPer x the order quantity; None when "
                                                                "the part is not on the BOM in force")
    variance: Quantity | None = Field(default=None, description="issued - required (positive: over-issued)")


class VarianceOut(ApiOut):
    work_order_id: uuid.UUID
    work_order_number: str
    status: str
    planned_quantity: Quantity
    quantity_good: Quantity
    quantity_scrap: Quantity
    quantity_variance: float  # good - planned
    yield_percent: float | None  # good / planned (the order quantity)
    planned_minutes: Quantity
    actual_minutes: Quantity
    operations: list[OperationVariance]
    material: list[MaterialIssued]
    bom_version: int | None = None


@router.get("/work-orders/{work_order_id}/variance", response_model=VarianceOut)
async def variance(work_order_id: uuid.UUID, uow: Uow) -> VarianceOut:
    order = await get_order(uow, work_order_id)
    ops = await operations_of(uow, order)
    rows = []
    for op in ops:
        planned = Decimal(op.planned_setup_minutes) + Decimal(op.planned_run_minutes)
        rows.append(OperationVariance(sequence=op.sequence, code=op.code, status=op.status, planned_minutes=planned,
                                      actual_minutes=op.actual_minutes,
                                      minutes_variance=float(Decimal(op.actual_minutes) - planned),
                                      quantity_good=op.quantity_good, quantity_scrap=op.quantity_scrap))
    good = Decimal(ops[-1].quantity_good) if ops else Decimal(order.quantity_good)
    scrap = sum((Decimal(o.quantity_scrap) for o in ops), Decimal(0))
    material: dict[tuple[uuid.UUID, str], MaterialIssued] = {}
    for actual in await uow.scalars(select(MaterialActual).where(MaterialActual.work_order_id == order.id)
                                    .order_by(MaterialActual.consumed_at)):
        item = material.setdefault((actual.part_id, actual.unit_of_measure), MaterialIssued(
            part_id=actual.part_id, part_number=actual.part_number, quantity=Decimal(0),
            unit_of_measure=actual.unit_of_measure, lots=[]))
        item.quantity += Decimal(actual.quantity)
        if actual.lot_number not in item.lots:
            item.lots.append(actual.lot_number)
    bom = await uow.get(ReplicatedBom, order.part_id)
    for line in (bom.items if bom else []):
        key = (uuid.UUID(line["componentPartId"]), line["unitOfMeasure"])
        item = material.setdefault(key, MaterialIssued(
            part_id=key[0], part_number=line["componentPartNumber"], quantity=Decimal(0), unit_of_measure=key[1],
            lots=[], required=Decimal(0)))
        item.required = (item.required or Decimal(0)) + Decimal(str(line["quantityPer"])) * Decimal(order.quantity)
    for item in material.values():
        item.variance = item.quantity - item.required if item.required is not None else None
    return VarianceOut(
        work_order_id=order.id, work_order_number=order.work_order_number, status=order.status,
        planned_quantity=order.quantity, quantity_good=good, quantity_scrap=scrap,
        quantity_variance=float(good - Decimal(order.quantity)),
        yield_percent=yield_percent(order, good),
        planned_minutes=sum((r.planned_minutes for r in rows), Decimal(0)),
        actual_minutes=sum((Decimal(r.actual_minutes) for r in rows), Decimal(0)),
        operations=rows, material=list(material.values()), bom_version=bom.bom_version if bom else None)
