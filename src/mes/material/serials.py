"""Serialized units: a process serial when the unit enters production, a product serial when done.

Aerospace and medical shops track a unit by a *process* serial (the traveller's number) while it
is being made and give it its *product* serial (engraved, on the certificate) only once it is
finished and accepted; both stay on record and each is unique per part.
"""
from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from sqlalchemy import or_, select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut
from isles.http import Page, Paged, PageOut, Uow, get_or_404, paged
from isles.text import Identifier
from mes.material.access import Handler, Quality
from mes.material.events import SerialCreated, SerialUpdated
from mes.material.lots import get_lot
from mes.material.models import PROCESS_SERIAL, SerializedPart
from mes.material.parts import get_part
from mes.material.production import serials_left

router = APIRouter()


class SerialIn(ApiModel):
    part_id: uuid.UUID
    process_serials: list[Identifier] | None = Field(default=None, min_length=1, max_length=1000,
                                              description="generated (<part number>-PS00001, ...) when omitted")
    count: int = Field(default=1, ge=1, le=1000, description="how many units, when processSerials is omitted")
    lot_id: uuid.UUID | None = None
    work_order_id: uuid.UUID | None = None


class ProductSerialIn(ApiModel):
    product_serial: Identifier = Field(min_length=1, max_length=64)


class ScrapIn(ApiModel):
    reason: str = Field(min_length=1, max_length=500)


class SerialOut(ApiOut):
    id: uuid.UUID
    part_id: uuid.UUID
    process_serial: str
    product_serial: str | None
    status: str
    lot_id: uuid.UUID | None
    work_order_id: uuid.UUID | None
    version: int


def _state(unit: SerializedPart, part_number: str) -> dict[str, Any]:
    return dict(serial_id=str(unit.id), part_id=str(unit.part_id), part_number=part_number,
                process_serial=unit.process_serial, product_serial=unit.product_serial, status=unit.status,
                lot_id=str(unit.lot_id) if unit.lot_id else None,
                work_order_id=str(unit.work_order_id) if unit.work_order_id else None)


async def _unit(uow: UnitOfWork, serial_id: uuid.UUID) -> SerializedPart:
    return await get_or_404(uow, SerializedPart, serial_id, what="serial")


async def _publish_update(uow: UnitOfWork, unit: SerializedPart, changed: dict[str, Any],
                          previous: dict[str, Any]) -> None:
    await uow.flush()
    part = await get_part(uow, unit.part_id, active=False)
    uow.publish(SerialUpdated(**_state(unit, part.part_number), changes=changed, previous_values=previous), entity=unit)


@router.post("/serials", status_code=status.HTTP_201_CREATED, response_model=list[SerialOut])
async def post_serials(data: SerialIn, uow: Uow, _: Handler) -> list[SerializedPart]:
    """Start serialized units of a part (tracking=serial), each with a process serial."""
    part = await get_part(uow, data.part_id)
    if part.tracking != "serial":
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"part {part.part_number} is not serialized (tracking={part.tracking})")
    if data.lot_id is not None:
        await get_lot(uow, data.lot_id)
    serials = data.process_serials
    if serials is None:
        serials = [f"{part.part_number}-PS{await PROCESS_SERIAL.next_value(uow):05d}" for _ in range(data.count)]
    if data.work_order_id is not None:
        left = await serials_left(uow, data.work_order_id)
        if left is not None and len(serials) > left:
            raise HTTPException(status.HTTP_409_CONFLICT, f"work order {data.work_order_id} may mint {left} more "
                                                          f"serial(s); {len(serials)} cannot start (an order "
                                                          "mints no more serials than its quantity)")
    if len(set(serials)) != len(serials):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "processSerials lists a serial twice")
    taken = list(await uow.scalars(select(SerializedPart.process_serial).where(
        SerializedPart.part_id == part.id, SerializedPart.process_serial.in_(serials))))
    if taken:
        raise HTTPException(status.HTTP_409_CONFLICT, f"process serial(s) already used for {part.part_number}: "
                                                      f"{', '.join(sorted(taken))}")
    units = [SerializedPart(part_id=part.id, process_serial=s, lot_id=data.lot_id, work_order_id=data.work_order_id)
             for s in serials]
    for unit in units:
        uow.add(unit)
    await uow.flush()
    for unit in units:
        uow.publish(SerialCreated(**_state(unit, part.part_number)), entity=unit)
    await uow.commit()
    return units


@router.get("/serials", response_model=PageOut[SerialOut])
async def list_serials(uow: Uow, page: Page, part_id: uuid.UUID | None = Query(None, alias="partId"),
                       work_order_id: uuid.UUID | None = Query(None, alias="workOrderId"),
                       serial: str | None = Query(None, min_length=1, max_length=64,
                                                  description="a process or product serial number")
                       ) -> Paged[SerializedPart]:
    query = select(SerializedPart).order_by(SerializedPart.process_serial)
    if serial is not None:
        query = query.where(or_(SerializedPart.process_serial == serial, SerializedPart.product_serial == serial))
    return await paged(uow, query, page, part_id=part_id, work_order_id=work_order_id)


@router.get("/serials/{serial_id}", response_model=SerialOut)
async def read_serial(serial_id: uuid.UUID, uow: Uow) -> SerializedPart:
    return await _unit(uow, serial_id)


@router.post("/serials/{serial_id}/product-serial", response_model=SerialOut)
async def assign_product_serial(serial_id: uuid.UUID, data: ProductSerialIn, uow: Uow, _: Quality) -> SerializedPart:
    """The finished, accepted unit gets its product serial; the process serial stays on record."""
    unit = await _unit(uow, serial_id)
    if unit.status not in ("in_process", "completed") or unit.product_serial is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"unit {unit.process_serial} is {unit.status}"
                            + (f" with product serial {unit.product_serial}" if unit.product_serial else ""))
    if await uow.scalar(select(SerializedPart.id).where(SerializedPart.part_id == unit.part_id,
                                                        SerializedPart.product_serial == data.product_serial)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"product serial {data.product_serial} is already used")
    previous = unit.status
    unit.product_serial, unit.status = data.product_serial, "completed"
    await _publish_update(uow, unit, {"productSerial": data.product_serial, "status": "completed"},
                          {"productSerial": None, "status": previous})
    await uow.commit()
    return unit


@router.post("/serials/{serial_id}/scrap", response_model=SerialOut)
async def scrap_serial(serial_id: uuid.UUID, data: ScrapIn, uow: Uow, _: Quality) -> SerializedPart:
    unit = await _unit(uow, serial_id)
    if unit.status == "scrapped":
        return unit
    previous = unit.status
    unit.status = "scrapped"
    await _publish_update(uow, unit, {"status": "scrapped", "reason": data.reason}, {"status": previous})
    await uow.commit()
    return unit
