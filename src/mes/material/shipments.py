"""Shipping finished material to customers, and receiving it back.

A recall has to reach customers, so a shipment records which lots (and which serials of a
serial-tracked part) went to whom; ``mes.material.shipment.created`` carries every line. Only
released, unexpired material ships. A lot shipped to its last unit becomes ``shipped``; a serial
becomes ``shipped``.

A customer return names the shipment; each returned quantity must have been shipped on it and not
returned yet. It arrives as a *new* lot in quarantine (origin ``returned``) whose parent is the
shipped lot - a genealogy edge with relation ``returned`` - so the returned units keep their
history without reopening a lot that left the plant, and quality decides what happens to them.
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
from isles.http import Page, Paged, PageOut, Uow, get_or_404, paged
from isles.orm import utcnow
from isles.sequences import Sequence
from isles.text import Identifier, Name
from mes.material.access import Handler
from mes.material.events import (
    LotCreated,
    LotShipped,
    ReturnLineState,
    ReturnReceived,
    SerialUpdated,
    ShipmentCreated,
    ShipmentLineState,
)
from mes.material.lots import _location, get_lot, is_expired, loose_quantity, lot_state
from mes.material.models import (
    LOT_NUMBER,
    RETURN_NUMBER,
    SHIPMENT_NUMBER,
    CustomerReturn,
    LotGenealogy,
    MaterialLot,
    Part,
    ReturnLine,
    SerializedPart,
    Shipment,
    ShipmentLine,
)
from mes.material.parts import get_part
from mes.material.production import serial_state

router = APIRouter()


class LineIn(ApiModel):
    lot_id: uuid.UUID
    quantity: Quantity | None = Field(default=None, gt=0, description="required unless serialIds are listed")
    serial_ids: list[uuid.UUID] | None = Field(default=None, min_length=1, max_length=10_000,
                                               description="the units, for a serial-tracked part")


class ShipmentIn(ApiModel):
    customer: Name = Field(min_length=1, max_length=255)
    customer_order: Identifier | None = Field(default=None, max_length=64)
    shipment_number: Identifier | None = Field(default=None, min_length=1, max_length=64,
                                               description="generated (SH-000001) when omitted")
    lines: list[LineIn] = Field(min_length=1, max_length=500)


class ShipmentLineOut(ApiOut):
    id: uuid.UUID
    lot_id: uuid.UUID
    serial_id: uuid.UUID | None
    quantity: Quantity


class ShipmentOut(ApiOut):
    id: uuid.UUID
    shipment_number: str
    customer: str
    customer_order: str | None
    shipped_by: str | None
    shipped_at: datetime
    lines: list[ShipmentLineOut] = []


class ReturnIn(ApiModel):
    shipment_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=500)
    return_number: Identifier | None = Field(default=None, min_length=1, max_length=64,
                                             description="generated (RT-000001) when omitted")
    location_id: uuid.UUID | None = Field(default=None, description="where the returned material is put")
    lines: list[LineIn] = Field(min_length=1, max_length=500)


class ReturnLineOut(ApiOut):
    id: uuid.UUID
    shipment_line_id: uuid.UUID
    lot_id: uuid.UUID
    serial_id: uuid.UUID | None
    quantity: Quantity


class ReturnOut(ApiOut):
    id: uuid.UUID
    return_number: str
    shipment_id: uuid.UUID
    customer: str
    reason: str
    received_by: str | None
    received_at: datetime
    lines: list[ReturnLineOut] = []


def _unprocessable(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail)


def _conflict(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_409_CONFLICT, detail)


async def _number(uow: UnitOfWork, given: str | None, model: type, column: str, prefix: str,
                  sequence: Sequence) -> str:
    col = getattr(model, column)
    if given is not None:
        if await uow.scalar(select(col).where(col == given)):
            raise _conflict(f"{column.replace('_', ' ')} {given} is already used")
        return given
    for _ in range(1000):
        number = f"{prefix}-{await sequence.next_value(uow):06d}"
        if not await uow.scalar(select(col).where(col == number)):
            return number
    raise _conflict(f"1000 generated numbers in a row are taken; pass {column}")


def _distinct_lots(lines: list[LineIn]) -> None:
    lots = [line.lot_id for line in lines]
    if len(set(lots)) != len(lots):
        raise _unprocessable("lines lists a lot twice; put its quantity (or serials) on one line")


async def _units(uow: UnitOfWork, part: Part, lot: MaterialLot, line: LineIn, want: str,
                 ) -> tuple[list[SerializedPart], Decimal]:
    """The serials a line names (each of the part, in ``want`` status), and the line's quantity."""
    if part.tracking != "serial":
        if line.serial_ids:
            raise _unprocessable(f"part {part.part_number} is not serialized; give a quantity, not serialIds")
        if line.quantity is None:
            raise _unprocessable(f"the line for lot {lot.lot_number} needs a quantity")
        return [], line.quantity
    if not line.serial_ids:
        raise _unprocessable(f"part {part.part_number} is serialized: list the serialIds of lot {lot.lot_number}")
    if len(set(line.serial_ids)) != len(line.serial_ids):
        raise _unprocessable("serialIds lists a unit twice")
    if line.quantity is not None and line.quantity != len(line.serial_ids):
        raise _unprocessable(f"quantity {line.quantity} differs from the {len(line.serial_ids)} serialIds")
    units = list(await uow.scalars(select(SerializedPart).where(SerializedPart.id.in_(line.serial_ids))
                                   .with_for_update()))
    found = {u.id: u for u in units}
    for serial_id in line.serial_ids:
        unit = found.get(serial_id)
        if unit is None or unit.part_id != part.id:
            raise _unprocessable(f"serial {serial_id} is not a unit of part {part.part_number}")
        if unit.status != want:
            raise _conflict(f"unit {unit.product_serial or unit.process_serial} is {unit.status}; only {want} "
                            "units are taken here")
    return [found[s] for s in line.serial_ids], Decimal(len(units))


async def _set_serials(uow: UnitOfWork, units: list[SerializedPart], part: Part, new: str,
                       lot_id: uuid.UUID | None = None) -> None:
    previous = {u.id: u.status for u in units}
    for unit in units:
        unit.status = new
        if lot_id is not None:
            unit.lot_id = lot_id
    await uow.flush()
    for unit in units:
        changes = {"status": new} | ({"lotId": str(lot_id)} if lot_id else {})
        uow.publish(SerialUpdated(**serial_state(unit, part.part_number), changes=changes,
                                  previous_values={"status": previous[unit.id]}), entity=unit)


# -- shipping ---------------------------------------------------------------------------------------------------
@router.post("/shipments", status_code=status.HTTP_201_CREATED, response_model=ShipmentOut)
async def post_shipment(data: ShipmentIn, uow: Uow, principal: Handler) -> ShipmentOut:
    """Ship released finished lots (or their completed serials) to a customer."""
    _distinct_lots(data.lines)
    number = await _number(uow, data.shipment_number, Shipment, "shipment_number", "SH", SHIPMENT_NUMBER)
    shipment = Shipment(shipment_number=number, customer=data.customer, customer_order=data.customer_order,
                        shipped_by=principal.user_id, shipped_at=utcnow())
    uow.add(shipment)
    await uow.flush()
    lines: list[ShipmentLine] = []
    states: list[ShipmentLineState] = []
    for line in sorted(data.lines, key=lambda item: item.lot_id):  # lots locked in id order: no deadlock
        lot = await get_lot(uow, line.lot_id, lock=True)
        part = await get_part(uow, lot.part_id, active=False)
        if lot.status != "released" or is_expired(lot):
            state = "expired" if is_expired(lot) else lot.status
            raise _conflict(f"lot {lot.lot_number} is {state}; only released, unexpired material ships")
        units, quantity = await _units(uow, part, lot, line, "completed")
        if any(u.lot_id != lot.id for u in units):
            raise _unprocessable(f"a listed serial is not in lot {lot.lot_number}")
        available = await loose_quantity(uow, lot)
        if quantity > available:
            raise _conflict(f"lot {lot.lot_number} has {available} {lot.unit_of_measure} outside sublots; "
                            f"{quantity} cannot ship")
        lot.quantity = Decimal(lot.quantity) - quantity
        if lot.quantity == 0:
            lot.status, lot.status_reason = "shipped", f"shipped to {data.customer} ({number})"
        rows = ([ShipmentLine(shipment_id=shipment.id, lot_id=lot.id, serial_id=u.id, quantity=Decimal(1))
                 for u in units] or [ShipmentLine(shipment_id=shipment.id, lot_id=lot.id, quantity=quantity)])
        for row in rows:
            uow.add(row)
        await uow.flush()
        lines.extend(rows)
        by_id = {u.id: u for u in units}
        states.extend(ShipmentLineState(
            line_id=str(row.id), lot_id=str(lot.id), lot_number=lot.lot_number, part_id=str(part.id),
            part_number=part.part_number, quantity=row.quantity,
            serial_id=str(row.serial_id) if row.serial_id else None,
            serial_number=(by_id[row.serial_id].product_serial or by_id[row.serial_id].process_serial)
            if row.serial_id else None) for row in rows)
        if units:
            await _set_serials(uow, units, part, "shipped")
        uow.publish(LotShipped(**lot_state(lot, part), shipment_id=str(shipment.id), shipment_number=number,
                               customer=data.customer, shipped_quantity=quantity,
                               serial_ids=[str(u.id) for u in units]), entity=lot)
    # audit: shipment created - hook for the service audit trail
    uow.publish(ShipmentCreated(shipment_id=str(shipment.id), shipment_number=number, customer=data.customer,
                                customer_order=data.customer_order, shipped_by=principal.user_id,
                                shipped_at=shipment.shipped_at.isoformat(), lines=states), entity=shipment)
    await uow.commit()
    return _shipment_out(shipment, lines)


def _shipment_out(shipment: Shipment, lines: list[ShipmentLine]) -> ShipmentOut:
    out = ShipmentOut.model_validate(shipment)
    out.lines = [ShipmentLineOut.model_validate(line) for line in lines]
    return out


@router.get("/shipments", response_model=PageOut[ShipmentOut])
async def list_shipments(uow: Uow, page: Page, customer: str | None = Query(None, max_length=255)
                         ) -> Paged[Shipment]:
    return await paged(uow, select(Shipment).order_by(Shipment.shipped_at, Shipment.shipment_number), page,
                       customer=customer)


@router.get("/shipments/{shipment_id}", response_model=ShipmentOut)
async def read_shipment(shipment_id: uuid.UUID, uow: Uow) -> ShipmentOut:
    shipment = await get_or_404(uow, Shipment, shipment_id, what="shipment")
    lines = list(await uow.scalars(select(ShipmentLine).where(ShipmentLine.shipment_id == shipment.id)
                                   .order_by(ShipmentLine.lot_id, ShipmentLine.serial_id)))
    return _shipment_out(shipment, lines)


# -- returns ---------------------------------------------------------------------------------------------------
async def _returned(uow: UnitOfWork, line_ids: list[uuid.UUID]) -> Decimal:
    return Decimal(await uow.scalar(select(func.coalesce(func.sum(ReturnLine.quantity), 0))
                                    .where(ReturnLine.shipment_line_id.in_(line_ids))) or 0)


@router.post("/returns", status_code=status.HTTP_201_CREATED, response_model=ReturnOut)
async def post_return(data: ReturnIn, uow: Uow, principal: Handler) -> ReturnOut:
    """Receive material a customer sent back against a shipment, into a new quarantined lot."""
    _distinct_lots(data.lines)
    shipment = await uow.scalar(select(Shipment).where(Shipment.id == data.shipment_id).with_for_update())
    if shipment is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"shipment {data.shipment_id} not found")
    location = await _location(uow, data.location_id)
    number = await _number(uow, data.return_number, CustomerReturn, "return_number", "RT", RETURN_NUMBER)
    record = CustomerReturn(return_number=number, shipment_id=shipment.id, customer=shipment.customer,
                            reason=data.reason, received_by=principal.user_id, received_at=utcnow())
    uow.add(record)
    await uow.flush()
    rows: list[ReturnLine] = []
    states: list[ReturnLineState] = []
    for line in data.lines:
        shipped_lines = list(await uow.scalars(select(ShipmentLine).where(
            ShipmentLine.shipment_id == shipment.id, ShipmentLine.lot_id == line.lot_id)))
        if not shipped_lines:
            raise _unprocessable(f"lot {line.lot_id} was not shipped on {shipment.shipment_number}")
        shipped = await get_lot(uow, line.lot_id)
        part = await get_part(uow, shipped.part_id, active=False)
        units, quantity = await _units(uow, part, shipped, line, "shipped")
        by_serial = {s.serial_id: s for s in shipped_lines if s.serial_id is not None}
        if any(u.id not in by_serial for u in units):
            raise _unprocessable(f"a listed serial was not shipped on {shipment.shipment_number}")
        left = sum((Decimal(s.quantity) for s in shipped_lines), Decimal(0)) - await _returned(
            uow, [s.id for s in shipped_lines])
        if quantity > left:
            raise _conflict(f"{left} {shipped.unit_of_measure} of lot {shipped.lot_number} shipped on "
                            f"{shipment.shipment_number} are not returned yet; {quantity} cannot come back")
        lot = MaterialLot(lot_number=await _return_lot_number(uow, shipped), part_id=part.id, quantity=quantity,
                          initial_quantity=quantity, unit_of_measure=shipped.unit_of_measure, status="quarantine",
                          status_reason=f"customer return {number}: {data.reason}",
                          location_id=location or shipped.location_id, origin="returned", parent_lot_id=shipped.id,
                          supplier=shipped.supplier, supplier_lot_number=shipped.supplier_lot_number,
                          certificate_number=shipped.certificate_number, received_at=utcnow(),
                          expires_at=shipped.expires_at)
        uow.add(lot)
        await uow.flush()
        uow.add(LotGenealogy(parent_lot_id=shipped.id, child_lot_id=lot.id, relation="returned", quantity=quantity))
        new = ([ReturnLine(return_id=record.id, shipment_line_id=by_serial[u.id].id, lot_id=lot.id, serial_id=u.id,
                           quantity=Decimal(1)) for u in units]
               or [ReturnLine(return_id=record.id, shipment_line_id=shipped_lines[0].id, lot_id=lot.id,
                              quantity=quantity)])
        for row in new:
            uow.add(row)
        await uow.flush()
        rows.extend(new)
        states.extend(ReturnLineState(shipment_line_id=str(row.shipment_line_id), shipped_lot_id=str(shipped.id),
                                      lot_id=str(lot.id), lot_number=lot.lot_number, part_id=str(part.id),
                                      part_number=part.part_number, quantity=row.quantity,
                                      serial_id=str(row.serial_id) if row.serial_id else None) for row in new)
        uow.publish(LotCreated(**lot_state(lot, part)), entity=lot)
        if units:
            await _set_serials(uow, units, part, "returned", lot_id=lot.id)
    # audit: customer return received - hook for the service audit trail
    uow.publish(ReturnReceived(return_id=str(record.id), return_number=number, shipment_id=str(shipment.id),
                               shipment_number=shipment.shipment_number, customer=shipment.customer,
                               reason=data.reason, received_by=principal.user_id,
                               received_at=record.received_at.isoformat(), lines=states), entity=record)
    await uow.commit()
    out = ReturnOut.model_validate(record)
    out.lines = [ReturnLineOut.model_validate(row) for row in rows]
    return out


async def _return_lot_number(uow: UnitOfWork, shipped: MaterialLot) -> str:
    count = await uow.scalar(select(func.count()).where(MaterialLot.parent_lot_id == shipped.id,
                                                        MaterialLot.origin == "returned")) or 0
    number = f"{shipped.lot_number}-R{count + 1}"
    if await uow.scalar(select(MaterialLot.id).where(MaterialLot.lot_number == number)):
        number = f"R{utcnow():%y%m%d}-{await LOT_NUMBER.next_value(uow):06d}"
    return number


@router.get("/returns", response_model=PageOut[ReturnOut])
async def list_returns(uow: Uow, page: Page, shipment_id: uuid.UUID | None = Query(None, alias="shipmentId")
                       ) -> Paged[CustomerReturn]:
    return await paged(uow, select(CustomerReturn).order_by(CustomerReturn.received_at), page,
                       shipment_id=shipment_id)
