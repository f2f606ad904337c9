"""Handlers for material's and work_order's events: the genealogy graph and the digital thread.

Edges, parent -> child:

- ``lot.split``: the lot -> the new lot (the split quantity);
- ``lot.merged``: each source -> the new lot;
- ``lot.consumed``: the lot -> the unit it was issued into (``serialId``), else -> every output of
  the work order that takes its parents from the order (see ``lot.produced``);
- ``lot.produced``: each listed parent -> the new lot; with no parent list, everything issued
  into the order (now and later) -> the new lot;
- ``serial.created``: its lot -> the unit; and, like a produced lot, what its order consumed;
- ``shipment.created``: each lot and unit -> the shipment; ``return.received``: the shipment -> the
  lot (or unit) that came back - a lot shipped, returned and shipped again is a cycle, which the
  walks stop on.

Every event also becomes an entry of the digital thread of the lots, units and orders it names.
"""
from __future__ import annotations

from isles import Handlers, UnitOfWork
from isles.subscriptions import Subscription
from mes.traceability import index
from mes.traceability import recorder as rec
from mes.traceability.events import (
    LotConsumed,
    LotMerged,
    LotProduced,
    LotSplit,
    LotState,
    LotStatusChanged,
    PartState,
    ReturnReceived,
    SerialState,
    ShipmentCreated,
    WorkOrderState,
)
from mes.traceability.models import LOT, SERIAL, SHIPMENT, TraceConsumption, TraceNode

handlers = Handlers()

M, W = "mes.material", "mes.work_order.work_order"


def _qty(value: object) -> str:
    return "" if value is None else f"{value.normalize():f}" if hasattr(value, "normalize") else str(value)


async def _lot(uow: UnitOfWork, event: LotState, *, origin: str | None = None) -> TraceNode:
    """The lot's node with the state the event carries."""
    part_key = await rec.part(uow, event.part_id, event.part_number)
    return await rec.node(uow, LOT, event.lot_id, owner_version=rec.version(uow), number=event.lot_number,
                          part_key=part_key, status=event.status, quantity=event.quantity,
                          unit_of_measure=event.unit_of_measure, origin=origin or event.origin,
                          supplier=event.supplier, supplier_lot_number=event.supplier_lot_number,
                          occurred_at=rec.occurred(uow) if origin or event.origin else None)


@handlers.on(f"{M}.part.created")
async def part_created(event: PartState, uow: UnitOfWork) -> None:
    await rec.part(uow, event.part_id, event.part_number, event.part_name, owner_version=rec.version(uow))


@handlers.on(f"{M}.part.updated")
async def part_updated(event: PartState, uow: UnitOfWork) -> None:
    await rec.part(uow, event.part_id, event.part_number, event.part_name, owner_version=rec.version(uow))


@handlers.on(f"{M}.lot.created")
async def lot_created(event: LotState, uow: UnitOfWork) -> None:
    lot = await _lot(uow, event)
    uom = event.unit_of_measure or ""
    if event.origin == "received":
        supplier = f" from {event.supplier}" + (f" (lot {event.supplier_lot_number})" if event.supplier_lot_number
                                                else "") if event.supplier else ""
        rec.thread(uow, "receive", f"received {_qty(event.quantity)} {uom}{supplier} as {event.lot_number}",
                   node=lot)
    elif event.origin not in ("split", "merge", "produced"):  # told by lot.split / .merged / .produced
        rec.thread(uow, "create", f"lot {event.lot_number} created ({event.origin}), {_qty(event.quantity)} {uom}",
                   node=lot)


@handlers.on(f"{M}.lot.status_changed")
async def lot_status_changed(event: LotStatusChanged, uow: UnitOfWork) -> None:
    lot = await _lot(uow, event)
    reason = f": {event.reason}" if event.reason else ""
    rec.thread(uow, "status", f"{event.lot_number} {event.previous_status} -> {event.status}{reason}", node=lot)


@handlers.on(f"{M}.lot.split")
async def lot_split(event: LotSplit, uow: UnitOfWork) -> None:
    parent = await _lot(uow, event)
    child = await rec.node(uow, LOT, event.child_lot_id, number=event.child_lot_number, part_key=parent.part_key,
                           origin="split", unit_of_measure=parent.unit_of_measure, occurred_at=rec.occurred(uow))
    rec.edge(uow, parent, child, "split", quantity=event.split_quantity)
    what = f"{_qty(event.split_quantity)} {event.unit_of_measure or ''}".strip()
    rec.thread(uow, "split", f"split {what} off {event.lot_number} into {event.child_lot_number}", node=parent)
    rec.thread(uow, "split", f"made by splitting {what} off {event.lot_number}", node=child)


@handlers.on(f"{M}.lot.merged")
async def lot_merged(event: LotMerged, uow: UnitOfWork) -> None:
    target = await _lot(uow, event, origin="merge")
    names = []
    for source in event.sources:
        lot = await rec.node(uow, LOT, source.lot_id, number=source.lot_number, part_key=target.part_key)
        rec.edge(uow, lot, target, "merge", quantity=source.quantity)
        rec.thread(uow, "merge", f"merged {_qty(source.quantity)} {event.unit_of_measure or ''} into "
                                 f"{event.lot_number}", node=lot)
        names.append(f"{source.lot_number} ({_qty(source.quantity)})")
    rec.thread(uow, "merge", f"made by merging {', '.join(names)}", node=target)


@handlers.on(f"{M}.lot.consumed")
async def lot_consumed(event: LotConsumed, uow: UnitOfWork) -> None:
    lot = await _lot(uow, event)
    order = await rec.work_order(uow, event.work_order_id, event.work_order_number)
    unit = await rec.node(uow, SERIAL, event.serial_id) if event.serial_id else None
    uow.add(TraceConsumption(consumption_id=event.consumption_id, node_id=lot.id, work_order_key=order,
                                 serial_node_id=unit.id if unit else None, quantity=event.consumed_quantity,
                                 operation_code=event.operation_code, consumed_at=rec.occurred(uow)))
    if unit is not None:
        targets = [unit]
    else:  # (no order: the consumption row, whose work_order_key is NOT NULL, fails at the flush)
        targets = await rec.outputs(uow, order) if order is not None else []
    for target in targets:
        if target.id != lot.id:
            rec.edge(uow, lot, target, "consume", quantity=event.consumed_quantity, work_order_key=order,
                     operation_code=event.operation_code)
    at = f" at {event.operation_code}" if event.operation_code else ""
    into = f" (unit {unit.number or event.serial_id})" if unit is not None else ""
    rec.thread(uow, "consume", f"{_qty(event.consumed_quantity)} {event.unit_of_measure or ''} of {event.lot_number} "
                               f"issued to {event.work_order_number or event.work_order_id}{at}{into}",
               node=lot, work_order_key=order)


async def lot_produced(event: LotProduced, uow: UnitOfWork) -> None:
    order = await rec.work_order(uow, event.work_order_id, event.work_order_number)
    lot = await _lot(uow, event, origin=event.origin or "produced")
    if order is not None:
        lot.work_order_key = order
        index.changes(uow).append(("node", lot.id, LOT, lot.part_key or 0, order))
    if event.parents:
        for parent in event.parents:
            source = await rec.node(uow, LOT, parent.lot_id)
            if source.id != lot.id:
                rec.edge(uow, source, lot, "produce", quantity=parent.quantity, work_order_key=order,
                         operation_code=parent.operation_code)
    elif order is not None:
        lot.inherits = True
        await rec.inherit(uow, lot, order)
    rec.thread(uow, "produce", f"produced {_qty(event.quantity)} {event.unit_of_measure or ''} as {event.lot_number}"
                               f" by {event.work_order_number or event.work_order_id or 'an unknown order'}",
               node=lot, work_order_key=order)


async def _serial(uow: UnitOfWork, event: SerialState) -> tuple[TraceNode, int | None]:
    """The unit, and the key of the work order that made it when this event is the first to say so."""
    part_key = await rec.part(uow, event.part_id, event.part_number)
    order = await rec.work_order(uow, event.work_order_id)
    known = await rec.find(uow, SERIAL, event.serial_id)
    was_made = known is not None and known.work_order_key is not None
    unit = await rec.node(uow, SERIAL, event.serial_id, owner_version=rec.version(uow),
                          number=event.product_serial or event.process_serial, part_key=part_key,
                          work_order_key=order, status=event.status, origin="serial")
    return unit, None if was_made else order


@handlers.on(f"{M}.serial.created")
async def serial_created(event: SerialState, uow: UnitOfWork) -> None:
    unit, made_by = await _serial(uow, event)
    unit.occurred_at = unit.occurred_at or rec.occurred(uow)
    if event.lot_id:
        lot = await rec.node(uow, LOT, event.lot_id)
        rec.edge(uow, lot, unit, "serial")
    if made_by is not None:
        unit.inherits = True
        await rec.inherit(uow, unit, made_by)
    rec.thread(uow, "serial", f"unit {event.process_serial} of {event.part_number or event.part_id} started",
               node=unit, work_order_key=unit.work_order_key)


@handlers.on(f"{M}.serial.updated")
async def serial_updated(event: SerialState, uow: UnitOfWork) -> None:
    unit, made_by = await _serial(uow, event)
    if made_by is not None:
        unit.inherits = True
        await rec.inherit(uow, unit, made_by)
    serial = event.product_serial or event.process_serial
    rec.thread(uow, "serial", f"unit {serial} is {event.status}", node=unit)


async def shipment_created(event: ShipmentCreated, uow: UnitOfWork) -> None:
    shipment = await rec.node(uow, SHIPMENT, event.shipment_id, owner_version=rec.version(uow),
                              number=event.shipment_number or event.shipment_id, customer=event.customer,
                              origin="shipment", occurred_at=rec.occurred(uow))
    to = f"shipment {shipment.number}" + (f" to {event.customer}" if event.customer else "")
    lots, units = event.shipped_lots(), event.shipped_serials()
    for item in lots:
        lot = await rec.node(uow, LOT, item.lot_id)
        rec.edge(uow, lot, shipment, "ship", quantity=item.quantity)
        rec.thread(uow, "ship", f"{_qty(item.quantity)} of {lot.number or item.lot_id} shipped in {to}", node=lot)
    for serial_id in units:
        unit = await rec.node(uow, SERIAL, serial_id)
        rec.edge(uow, unit, shipment, "ship", quantity=None)
        rec.thread(uow, "ship", f"unit {unit.number or serial_id} shipped in {to}", node=unit)
    rec.thread(uow, "ship", f"{to}: {len(lots)} lot(s), {len(units)} unit(s)", node=shipment)


async def return_received(event: ReturnReceived, uow: UnitOfWork) -> None:
    shipment = await rec.node(uow, SHIPMENT, event.shipment_id) if event.shipment_id else None
    why = f": {event.reason}" if event.reason else ""
    source = f"shipment {shipment.number or event.shipment_id}" if shipment else "a customer"
    returned: list[TraceNode] = []
    for item in event.returned_lots():
        lot = await rec.node(uow, LOT, item.returned_lot_id or item.lot_id, number=item.returned_lot_number,
                             origin="returned" if item.returned_lot_id else None)
        returned.append(lot)
        if shipment is not None:
            rec.edge(uow, shipment, lot, "return", quantity=item.quantity)
        rec.thread(uow, "return", f"{_qty(item.quantity)} returned from {source}{why}", node=lot)
    for serial_id in event.returned_serials():
        unit = await rec.node(uow, SERIAL, serial_id)
        returned.append(unit)
        if shipment is not None:
            rec.edge(uow, shipment, unit, "return")
        rec.thread(uow, "return", f"unit {unit.number or serial_id} returned from {source}{why}", node=unit)
    if shipment is not None:
        rec.thread(uow, "return", f"{len(returned)} item(s) returned{why}", node=shipment)


async def _work_order(event: WorkOrderState, uow: UnitOfWork, summary: str) -> None:
    key = await rec.work_order(uow, event.work_order_id, event.work_order_number, owner_version=rec.version(uow),
                               part_id=event.part_id, part_number=event.part_number, status=event.status)
    rec.thread(uow, "work_order", summary, work_order_key=key)


@handlers.on(f"{W}.created")
async def work_order_created(event: WorkOrderState, uow: UnitOfWork) -> None:
    await _work_order(event, uow, f"work order {event.work_order_number} created for {_qty(event.quantity)} "
                                  f"of {event.part_number or event.part_id}")


@handlers.on(f"{W}.status_changed")
async def work_order_status_changed(event: WorkOrderState, uow: UnitOfWork) -> None:
    reason = f": {event.reason}" if event.reason else ""
    await _work_order(event, uow, f"work order {event.work_order_number} {event.previous_status} -> "
                                  f"{event.status}{reason}")


@handlers.on(f"{W}.completed")
async def work_order_completed(event: WorkOrderState, uow: UnitOfWork) -> None:
    await _work_order(event, uow, f"work order {event.work_order_number} completed, "
                                  f"{_qty(event.quantity_produced)} produced")


# Events material does not publish yet: subscribed to as optional, so the System builds without them.
handlers.include([
    Subscription(f"{M}.lot.produced", LotProduced, lot_produced, "lot_produced", optional=True),
    Subscription(f"{M}.shipment.created", ShipmentCreated, shipment_created, "shipment_created", optional=True),
    Subscription(f"{M}.return.received", ReturnReceived, return_received, "return_received", optional=True),
])
