"""Production output: what a work order made becomes a finished lot (and serials) in inventory.

work_order owns the production reports; material owns lots. So work_order publishes every report
(``mes.work_order.production.reported``) and material, in its own transaction, applies the good
quantity of the order's *last* operation: it receives it into the order's finished lot (origin
``produced``, status ``released`` - the routing's inspection step is the acceptance; quality can
still quarantine it), completes that many serials for a serial-tracked part, and links every lot
issued into the order to the finished lot (:class:`~mes.material.models.LotGenealogy`, with the
quantity, the work order and the operation). A report is applied once: the inbox drops a
redelivered event, and ``production_receipts.report_id`` is unique besides.

A counter-entry (a negative report naming the one it corrects) takes the quantity back out of the
same lot and puts that many completed serials back in process; history is never edited.

A finished lot lives as long as it is on hand: once it is shipped or used up, the order's next
report opens a new one (``FG-<order>-02``). Material issued into an order after its finished lot
exists is linked to it at once (:func:`link_consumption`).

The finished lot goes to the first active location of kind ``finished_goods`` (by code), if the
plant has one; it can be moved like any lot.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from sqlalchemy import ColumnElement, func, select

from isles import Handlers, UnitOfWork
from isles.api import ApiOut, Quantity, SignedQuantity
from isles.http import Page, Paged, PageOut, Uow, paged
from isles.orm import utcnow
from mes.material.events import (
    GenealogyParent,
    LotProduced,
    ProducedSerial,
    ProductionReported,
    SerialCreated,
    SerialUpdated,
    WorkOrderFinished,
)
from mes.material.lots import ON_HAND, get_lot, lot_state
from mes.material.models import (
    PROCESS_SERIAL,
    Consumption,
    ConsumptionReversal,
    Location,
    LotGenealogy,
    MaterialLot,
    Part,
    ProductionReceipt,
    ReplicatedWorkOrder,
    SerializedPart,
)

router = APIRouter()
handlers = Handlers()
FINISHED_GOODS = "finished_goods"  # a location kind (locations.Kind)


class ReceiptOut(ApiOut):
    id: uuid.UUID
    report_id: uuid.UUID
    corrects_report_id: uuid.UUID | None
    work_order_id: uuid.UUID
    work_order_number: str
    operation_code: str | None
    lot_id: uuid.UUID
    quantity: SignedQuantity
    reason: str | None
    reported_by: str | None
    reported_at: datetime


class GenealogyEdgeOut(ApiOut):
    """An edge of the lot graph with its net quantity (issued minus reversed)."""

    parent_lot_id: uuid.UUID
    parent_lot_number: str
    child_lot_id: uuid.UUID
    child_lot_number: str
    child_serial_id: uuid.UUID | None
    relation: str
    quantity: Quantity
    work_order_id: uuid.UUID | None
    operation_code: str | None


class GenealogyOut(ApiOut):
    lot_id: uuid.UUID
    lot_number: str
    parents: list[GenealogyEdgeOut]
    children: list[GenealogyEdgeOut]


def serial_state(unit: SerializedPart, part_number: str) -> dict[str, Any]:
    return dict(serial_id=str(unit.id), part_id=str(unit.part_id), part_number=part_number,
                process_serial=unit.process_serial, product_serial=unit.product_serial, status=unit.status,
                lot_id=str(unit.lot_id) if unit.lot_id else None,
                work_order_id=str(unit.work_order_id) if unit.work_order_id else None)


# -- serial accounting ------------------------------------------------------------------------------------
async def serials_left(uow: UnitOfWork, work_order_id: uuid.UUID) -> int | None:
    """How many more serials the order may mint (its quantity minus every serial it has, scrapped
    ones included); ``None`` when material does not know the order's quantity."""
    order = await uow.get(ReplicatedWorkOrder, work_order_id)
    if order is None or order.quantity is None:
        return None
    minted = await uow.scalar(select(func.count()).where(SerializedPart.work_order_id == work_order_id)) or 0
    return max(int(Decimal(order.quantity)) - minted, 0)


async def _complete_serials(uow: UnitOfWork, part: Part, lot: MaterialLot, order_id: uuid.UUID,
                            count: int) -> list[SerializedPart]:
    """Complete ``count`` units of the order into ``lot``: its units in process first (oldest
    serial first), then new ones, never more than the order's quantity allows."""
    units = list(await uow.scalars(select(SerializedPart).where(
        SerializedPart.work_order_id == order_id, SerializedPart.status == "in_process")
        .order_by(SerializedPart.process_serial).limit(count)))
    changed = []
    for unit in units:
        unit.status, unit.lot_id = "completed", lot.id
        changed.append(unit)
    left = await serials_left(uow, order_id)
    to_mint = count - len(units) if left is None else min(count - len(units), left)
    minted = [SerializedPart(part_id=part.id, status="completed", lot_id=lot.id, work_order_id=order_id,
                             process_serial=f"{part.part_number}-PS{await PROCESS_SERIAL.next_value(uow):05d}")
              for _ in range(max(to_mint, 0))]
    for unit in minted:
        uow.add(unit)
    await uow.flush()
    for unit in changed:
        uow.publish(SerialUpdated(**serial_state(unit, part.part_number), changes={"status": "completed",
                                  "lotId": str(lot.id)}, previous_values={"status": "in_process"}), entity=unit)
    for unit in minted:
        uow.publish(SerialCreated(**serial_state(unit, part.part_number)), entity=unit)
    return changed + minted


async def _uncomplete_serials(uow: UnitOfWork, part: Part, lot: MaterialLot, count: int) -> list[SerializedPart]:
    """A counter-entry: the last ``count`` completed units still in ``lot`` go back in process."""
    units = list(await uow.scalars(select(SerializedPart).where(
        SerializedPart.lot_id == lot.id, SerializedPart.status == "completed")
        .order_by(SerializedPart.process_serial.desc()).limit(count)))
    for unit in units:
        unit.status = "in_process"
    await uow.flush()
    for unit in units:
        uow.publish(SerialUpdated(**serial_state(unit, part.part_number), changes={"status": "in_process"},
                                  previous_values={"status": "completed"}), entity=unit)
    return units


# -- genealogy ---------------------------------------------------------------------------------------------
async def _net_issued(uow: UnitOfWork, consumption: Consumption) -> Decimal:
    back = await uow.scalar(select(func.coalesce(func.sum(ConsumptionReversal.quantity), 0))
                            .where(ConsumptionReversal.consumption_id == consumption.id))
    return Decimal(consumption.quantity) - Decimal(back or 0)


async def _link(uow: UnitOfWork, consumption: Consumption, child: MaterialLot) -> GenealogyParent | None:
    quantity = await _net_issued(uow, consumption)
    if quantity <= 0:
        return None
    uow.add(LotGenealogy(parent_lot_id=consumption.lot_id, child_lot_id=child.id, child_serial_id=consumption.serial_id,
                         relation="consumed", quantity=quantity, work_order_id=consumption.work_order_id,
                         operation_code=consumption.operation_code, consumption_id=consumption.id))
    parent = await get_lot(uow, consumption.lot_id)
    return GenealogyParent(lot_id=str(parent.id), lot_number=parent.lot_number, part_id=str(parent.part_id),
                           quantity=quantity, consumption_id=str(consumption.id),
                           operation_code=consumption.operation_code,
                           serial_id=str(consumption.serial_id) if consumption.serial_id else None)


async def _link_unlinked(uow: UnitOfWork, order_id: uuid.UUID, child: MaterialLot) -> list[GenealogyParent]:
    """Edges from every consumption of the order not yet linked to ``child``."""
    linked = select(LotGenealogy.consumption_id).where(LotGenealogy.child_lot_id == child.id,
                                                       LotGenealogy.consumption_id.is_not(None))
    parents = []
    for consumption in await uow.scalars(select(Consumption).where(
            Consumption.work_order_id == order_id, Consumption.id.not_in(linked)).order_by(Consumption.consumed_at)):
        edge = await _link(uow, consumption, child)
        if edge is not None:
            parents.append(edge)
    return parents


async def output_lot(uow: UnitOfWork, order_id: uuid.UUID) -> MaterialLot | None:
    """The order's finished lot still on hand (the newest), or None."""
    lot: MaterialLot | None = await uow.scalar(
        select(MaterialLot).join(ProductionReceipt, ProductionReceipt.lot_id == MaterialLot.id)
        .where(ProductionReceipt.work_order_id == order_id, MaterialLot.status.in_(ON_HAND))
        .order_by(MaterialLot.received_at.desc(), MaterialLot.lot_number.desc()).limit(1))
    return lot


async def link_consumption(uow: UnitOfWork, consumption: Consumption) -> uuid.UUID | None:
    """Called by an issue: when the order already has a finished lot on hand, the issued lot is
    its parent from now on. Returns the finished lot's id (published on ``lot.consumed``)."""
    child = await output_lot(uow, consumption.work_order_id)
    if child is None:
        return None
    await _link(uow, consumption, child)
    return child.id


async def shrink_edges(uow: UnitOfWork, consumption: Consumption, quantity: Decimal) -> uuid.UUID | None:
    """A reversed consumption: each edge it made gets a counter-row of ``-quantity`` (never below
    zero net). Returns the child lot of the last edge, if any."""
    child_id = None
    for child_id, net, serial_id in (await uow.execute(
            select(LotGenealogy.child_lot_id, func.sum(LotGenealogy.quantity), LotGenealogy.child_serial_id)
            .where(LotGenealogy.consumption_id == consumption.id)
            .group_by(LotGenealogy.child_lot_id, LotGenealogy.child_serial_id))).all():
        take = min(Decimal(net), quantity)
        if take > 0:
            uow.add(LotGenealogy(parent_lot_id=consumption.lot_id, child_lot_id=child_id, child_serial_id=serial_id,
                                 relation="consumed", quantity=-take, work_order_id=consumption.work_order_id,
                                 operation_code=consumption.operation_code, consumption_id=consumption.id))
    return child_id


# -- applying a production report -----------------------------------------------------------------------------
async def _new_output_lot(uow: UnitOfWork, event: ProductionReported, part: Part) -> MaterialLot:
    count = await uow.scalar(select(func.count(func.distinct(ProductionReceipt.lot_id)))
                             .where(ProductionReceipt.work_order_id == uuid.UUID(event.work_order_id))) or 0
    number = f"FG-{event.work_order_number}" + (f"-{count + 1:02d}" if count else "")
    for attempt in range(2, 1000):
        if not await uow.scalar(select(MaterialLot.id).where(MaterialLot.lot_number == number)):
            break
        number = f"FG-{event.work_order_number}-{count + attempt:02d}"
    location = await uow.scalar(select(Location.id).where(Location.kind == FINISHED_GOODS, Location.is_active)
                                .order_by(Location.code).limit(1))
    lot = MaterialLot(lot_number=number, part_id=part.id, quantity=Decimal(0), initial_quantity=Decimal(0),
                      unit_of_measure=part.unit_of_measure, status="released",
                      status_reason=f"produced by work order {event.work_order_number}", location_id=location,
                      origin="produced", received_at=utcnow())
    uow.add(lot)
    await uow.flush()
    return lot


@handlers.on("mes.work_order.production.reported")
async def production_reported(event: ProductionReported, uow: UnitOfWork) -> None:
    """Receive the good quantity of an order's last operation as finished material."""
    if not event.final_operation or Decimal(event.quantity_good) == 0:
        return  # an intermediate step's output is work in process, not stock
    report_id = uuid.UUID(event.report_id)
    if await uow.scalar(select(ProductionReceipt.id).where(ProductionReceipt.report_id == report_id)):
        return
    part = await uow.get(Part, uuid.UUID(event.part_id))
    if part is None:
        return  # not a part of ours (material publishes every part work orders are made for)
    order_id, quantity = uuid.UUID(event.work_order_id), Decimal(event.quantity_good)
    parents: list[GenealogyParent] = []
    units: list[SerializedPart] = []
    if quantity > 0:
        lot = await output_lot(uow, order_id) or await _new_output_lot(uow, event, part)
        lot = await get_lot(uow, lot.id, lock=True)
        lot.quantity = Decimal(lot.quantity) + quantity
        lot.initial_quantity = Decimal(lot.initial_quantity) + quantity
        parents = await _link_unlinked(uow, order_id, lot)
        if part.tracking == "serial":
            units = await _complete_serials(uow, part, lot, order_id, int(quantity))
    else:
        # a counter-entry takes back out of the lot its original report went into
        original = await uow.scalar(select(ProductionReceipt.lot_id).where(
            ProductionReceipt.report_id == uuid.UUID(event.corrects_report_id))) if event.corrects_report_id else None
        lot_id = original or await uow.scalar(select(ProductionReceipt.lot_id).where(
            ProductionReceipt.work_order_id == order_id).order_by(ProductionReceipt.reported_at.desc()).limit(1))
        if lot_id is None:
            return  # nothing was received for this order: nothing to take back
        lot = await get_lot(uow, lot_id, lock=True)
        take = min(-quantity, Decimal(lot.quantity))
        lot.quantity = Decimal(lot.quantity) - take
        lot.initial_quantity = Decimal(lot.initial_quantity) + quantity
        if take < -quantity:
            # already shipped or used: the record says so; the quantity on hand cannot go negative
            lot.status_reason = (f"production report corrected by {-quantity}; only {take} was still on hand")
        if part.tracking == "serial":
            units = await _uncomplete_serials(uow, part, lot, int(-quantity))
    uow.add(ProductionReceipt(report_id=report_id, work_order_id=order_id, work_order_number=event.work_order_number,
                              corrects_report_id=uuid.UUID(event.corrects_report_id) if event.corrects_report_id
                              else None, operation_code=event.operation_code, lot_id=lot.id, quantity=quantity,
                              reason=event.reason, reported_by=event.reported_by,
                              reported_at=datetime.fromisoformat(event.reported_at)))
    await uow.flush()
    # audit: production receipt (and counter-entry) into lot - hook for the service audit trail
    uow.publish(LotProduced(**lot_state(lot, part), report_id=event.report_id,
                            corrects_report_id=event.corrects_report_id, work_order_id=event.work_order_id,
                            work_order_number=event.work_order_number, operation_code=event.operation_code,
                            produced_quantity=quantity, parents=parents, reason=event.reason,
                            serials=[ProducedSerial(serial_id=str(u.id), process_serial=u.process_serial,
                                                    product_serial=u.product_serial, status=u.status)
                                     for u in units]), entity=lot)


@handlers.on("mes.work_order.work_order.completed")
async def order_completed(event: WorkOrderFinished, uow: UnitOfWork) -> None:
    """Serials are completed with their order: a unit still in process when the order completes
    was not reported good, so it is scrapped (none stays in process after close)."""
    units = list(await uow.scalars(select(SerializedPart).where(
        SerializedPart.work_order_id == uuid.UUID(event.work_order_id), SerializedPart.status == "in_process")))
    if not units:
        return
    for unit in units:
        unit.status = "scrapped"
    await uow.flush()
    reason = f"not reported good when work order {event.work_order_number} completed"
    for unit in units:
        part = await uow.get(Part, unit.part_id)
        uow.publish(SerialUpdated(**serial_state(unit, part.part_number if part else ""),
                                  changes={"status": "scrapped", "reason": reason},
                                  previous_values={"status": "in_process"}), entity=unit)


# -- reading --------------------------------------------------------------------------------------------------
@router.get("/production-receipts", response_model=PageOut[ReceiptOut])
async def list_receipts(uow: Uow, page: Page, work_order_id: uuid.UUID | None = Query(None, alias="workOrderId"),
                        lot_id: uuid.UUID | None = Query(None, alias="lotId")) -> Paged[ProductionReceipt]:
    """Finished material received from production reports (counter-entries are negative)."""
    return await paged(uow, select(ProductionReceipt).order_by(ProductionReceipt.reported_at), page,
                       work_order_id=work_order_id, lot_id=lot_id)


async def _edges(uow: UnitOfWork, where: ColumnElement[bool]) -> list[GenealogyEdgeOut]:
    net = func.sum(LotGenealogy.quantity)
    rows = (await uow.execute(
        select(LotGenealogy.parent_lot_id, LotGenealogy.child_lot_id, LotGenealogy.child_serial_id,
               LotGenealogy.relation, LotGenealogy.work_order_id, LotGenealogy.operation_code, net)
        .where(where)
        .group_by(LotGenealogy.parent_lot_id, LotGenealogy.child_lot_id, LotGenealogy.child_serial_id,
                  LotGenealogy.relation, LotGenealogy.work_order_id, LotGenealogy.operation_code))).all()
    ids = {r[0] for r in rows} | {r[1] for r in rows}
    numbers = dict((await uow.execute(select(MaterialLot.id, MaterialLot.lot_number)
                                      .where(MaterialLot.id.in_(ids)))).all()) if ids else {}
    return sorted((GenealogyEdgeOut(parent_lot_id=p, parent_lot_number=numbers[p], child_lot_id=c,
                                    child_lot_number=numbers[c], child_serial_id=s, relation=rel, work_order_id=wo,
                                    operation_code=op, quantity=Decimal(q))
                   for p, c, s, rel, wo, op, q in rows if Decimal(q) > 0),
                  key=lambda e: (e.parent_lot_number, e.child_lot_number, str(e.child_serial_id or "")))


@router.get("/lots/{lot_id}/genealogy", response_model=GenealogyOut)
async def lot_genealogy(lot_id: uuid.UUID, uow: Uow) -> GenealogyOut:
    """One level up (the lots that went into this one) and one down (what it went into), net of
    reversals; traceability answers deeper questions from the events."""
    lot = await get_lot(uow, lot_id)
    return GenealogyOut(lot_id=lot.id, lot_number=lot.lot_number,
                        parents=await _edges(uow, LotGenealogy.child_lot_id == lot.id),
                        children=await _edges(uow, LotGenealogy.parent_lot_id == lot.id))
