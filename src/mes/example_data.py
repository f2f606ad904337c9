"""The example data `make run` starts with: a small aerospace plant on its first day with the MES.

Users with roles (auth); a plant with areas, lines, work centers, personnel and a released routing
(resource); seed 000's part P-12345 "Landing Gear Strut" rev C with its BOM, components, locations
and lots - released, in quarantine, expired (material); and work orders in several states, one of
them running with material issued (work_order). Besides, a genealogy worth tracing
(:func:`seed_genealogy`): supplier lots received, split and merged, issued into WO-1005, three strut
serials made, two shipped to a customer and one returned. Everything goes through the services' own
functions and events, as it would through the API. Idempotent: a second start changes nothing,
whatever people changed meanwhile: each service seeds only while it holds none of its own records
(material: no part; resource: no ACME enterprise; work_order: no order), and a conflict with data
that appeared meanwhile is reported in one line, never a traceback that stops the start.
"""
from __future__ import annotations

import os
import sys
import uuid
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from isles import Service, System
from isles.orm import utcnow
from isles.security import Principal
from mes import auth, material, resource, work_order

if TYPE_CHECKING:
    from mes.material.parts import Tracking

PARTS: list[tuple[str, str, str, str, Tracking]] = [  # part number, name, revision, unit, tracking
    ("P-12345", "Landing Gear Strut", "C", "EA", "serial"),
    ("P-20001", "Strut cylinder forging, 300M steel", "B", "EA", "lot"),
    ("P-20002", "Piston bushing, Al-Ni bronze", "A", "EA", "lot"),
    ("P-20003", "Seal kit, strut gland", "D", "EA", "lot"),
    ("P-20004", "Hydraulic fluid MIL-PRF-5606", "A", "L", "lot"),
]
BOM = [(10, "P-20001", "1", "OP10"), (20, "P-20002", "2", "OP50"), (30, "P-20003", "1", "OP50"),
       (40, "P-20004", "0.75", "OP50")]


async def _call(service: Service, fn: Callable[..., Awaitable[Any]], *args: Any) -> Any:
    """Run an endpoint function in its own unit of work (it commits itself)."""
    async with service.unit_of_work() as uow:
        return await fn(*args, uow)


async def seed_material(admin: Principal) -> dict[str, Any]:
    from mes.material import boms, locations, lots
    from mes.material.models import Location, MaterialLot, Part
    from mes.material.parts import PartIn, create_part
    svc = material.service
    async with svc.unit_of_work() as uow:
        existing = {p.part_number: p.id for p in await uow.scalars(select(Part).order_by(Part.created_at))}
        if existing:
            # Seeded before, or someone already works with the system: any part means "not empty".
            # Part numbers are no test of that (people rename P-12345, not only `isles demo`), and
            # seeding beside their data would only collide with it.
            sites = {loc.code: loc.id for loc in await uow.scalars(select(Location))}
            lot_ids = {lot.lot_number: lot.id for lot in await uow.scalars(select(MaterialLot))}
            return {"parts": existing, "locations": sites, "lots": lot_ids}
        parts = {}
        for number, name, revision, unit, tracking in PARTS:
            part = await create_part(uow, PartIn(part_number=number, name=name, revision=revision,
                                                 unit_of_measure=unit, tracking=tracking))
            parts[number] = part.id
    places = {}
    for code, name, kind in (("RCV-DOCK", "Receiving dock", "warehouse"), ("STORES-A", "Kitting stores A", "stores"),
                             ("LINE-1", "CNC line 1 line-side", "line_side"), ("QC-HOLD", "Quality hold cage",
                                                                                "quarantine")):
        place = await _call(svc, lambda uow, c=code, n=name, k=kind: locations.post_location(
            locations.LocationIn(code=c, name=n, kind=k), uow, admin))
        places[code] = place.id
    bom = await _call(svc, lambda uow: boms.create_bom(uow, parts["P-12345"], boms.BomIn(items=[
        boms.BomItemIn(line_number=line, component_part_id=parts[number], quantity_per=Decimal(qty),
                       operation_code=op) for line, number, qty, op in BOM])))
    async with svc.unit_of_work() as uow:
        await boms.release_bom(uow, parts["P-12345"], bom.bom_version, admin.user_id)
    in_a_year = utcnow() + timedelta(days=365)
    received = {}
    for number, part_number, qty, supplier, where, expires, quarantine in (
            ("L-24-0101", "P-20001", "6", "Ladish Forging", "STORES-A", None, False),
            ("L-24-0102", "P-20001", "8", "Ladish Forging", "STORES-A", None, False),
            ("L-24-0207", "P-20002", "40", "Bearing Supply Co", "STORES-A", None, False),
            ("L-24-0311", "P-20003", "25", "Parker Seals", "QC-HOLD", in_a_year, True),
            ("L-24-0312", "P-20003", "30", "Parker Seals", "STORES-A", in_a_year, False),
            ("L-23-0950", "P-20004", "20", "Royco", "STORES-A", utcnow() - timedelta(days=3), False),
            ("L-24-0415", "P-20004", "60", "Royco", "STORES-A", in_a_year, False)):
        async with svc.unit_of_work() as uow:
            lot = await lots.receive_lot(uow, lots.LotIn(
                part_id=parts[part_number], quantity=Decimal(qty), lot_number=number, supplier=supplier,
                location_id=places[where], expires_at=expires, quarantine=quarantine,
                certificate_number=f"CoC-{number[2:]}"))
            received[number] = lot.id
    for number in ("L-24-0101", "L-24-0102", "L-24-0207", "L-24-0312", "L-24-0415"):
        await _call(svc, lambda uow, n=number: _release(uow, received[n]))
    await _call(svc, lambda uow: lots.expire_due(uow, admin))  # L-23-0950 is past its shelf life
    return {"parts": parts, "locations": places, "lots": received}


async def _release(uow: Any, lot_id: uuid.UUID) -> None:
    from mes.material import lots
    await lots.change_status(uow, await lots.get_lot(uow, lot_id), lots.StatusIn(status="released"))
    await uow.commit()


async def seed_work_orders(admin: Principal, operator: Principal, site_id: str | None,
                           material_ids: dict[str, Any]) -> uuid.UUID | None:
    """WO-1001 Forecast, WO-1002 Released, WO-1003 Ready, WO-1004 Running (OP10 done, OP20 running)."""
    from mes.work_order import operations, orders
    from mes.work_order.models import WorkOrder
    svc = work_order.service
    async with svc.unit_of_work() as uow:
        if await uow.scalar(select(WorkOrder.id).limit(1)) is not None:
            return None
    strut = material_ids["parts"].get("P-12345")
    if strut is None:  # material was set up by people (or P-12345 renamed) before any order: plan nothing
        return None
    site = uuid.UUID(site_id) if site_id else None
    plan = [("WO-1001", 10, "Forecast", 300), ("WO-1002", 4, "Released", 200), ("WO-1003", 6, "Ready", 150),
            ("WO-1004", 2, "Running", 100)]
    created = {}
    for number, qty, target, priority in plan:
        async with svc.unit_of_work() as uow:
            order = await orders.create_work_order(uow, orders.WorkOrderIn(
                part_id=strut, quantity=Decimal(qty), work_order_number=number, site_id=site, priority=priority,
                due_date=utcnow() + timedelta(days=priority // 10)), admin)
            if target != "Forecast":
                await orders.release(uow, order)
            created[number] = order.id
        if target in ("Ready", "Running"):
            await _call(svc, lambda uow, i=order.id: orders.post_dispatch(i, orders.DispatchIn(), uow, admin))
    running = created["WO-1004"]
    await _call(svc, lambda uow: operations.start_operation(running, 10, uow, operator))
    await _call(svc, lambda uow: operations.complete_operation(
        running, 10, operations.ReportIn(quantity_good=Decimal(2)), uow, operator))
    await _call(svc, lambda uow: operations.start_operation(running, 20, uow, operator))
    return running


# The genealogy of WO-1005: lot number, part, quantity, supplier, supplier's lot, quarantined on receipt
GENEALOGY_LOTS = [
    ("L-24-0601", "P-20001", "3", "Ladish Forging", "HEAT 88412", True),  # forgings of one 300M steel heat
    ("L-24-0602", "P-20002", "20", "Bearing Supply Co", "BSC-5521", False),
    ("L-24-0603", "P-20002", "4", "Ampco Metal", "AM-1187", False),
    ("L-24-0605", "P-20003", "10", "Parker Seals", "PS-30317", False),
    ("L-24-0606", "P-20004", "20", "Royco", "RY-2291", False),
]
MERGED_LOT = "L-24-0604"  # 2 bushings split off L-24-0602, merged with the 4 of L-24-0603
CUSTOMER = "Boeing Commercial Airplanes"


async def seed_genealogy(system: System, admin: Principal, operator: Principal, material_ids: dict[str, Any],
                         site_id: str | None) -> None:
    """WO-1005 for three P-12345 struts, with a history that makes a genealogy worth looking at.

    The forgings of one steel heat arrive quarantined and quality releases them; two bushing lots
    from two suppliers arrive, 2 bushings are split off the first (to line-side) and merged with
    the second into L-24-0604; seals and hydraulic fluid arrive too. Everything the BOM needs for
    three struts is issued into WO-1005, whose five operations then run to completion: material
    receives the struts into FG-WO-1005 and mints their serials. Two serials ship to a customer
    (SH-000001) and one comes back (RT-000001, quarantined). Runs only on the start that created
    the work orders, so it is as idempotent as they are.
    """
    from mes.material import consumption, locations, lots, shipments
    from mes.material.models import SerializedPart
    from mes.work_order import operations, orders
    parts, places, mat = material_ids["parts"], material_ids["locations"], material.service
    if "P-12345" not in parts or "L-24-0601" in material_ids["lots"]:
        return
    await _call(mat, lambda uow: locations.post_location(locations.LocationIn(
        code="FG-STORES", name="Finished goods stores", kind="finished_goods"), uow, admin))
    received = {}
    for number, part, qty, supplier, supplier_lot, quarantine in GENEALOGY_LOTS:
        async with mat.unit_of_work() as uow:
            lot = await lots.receive_lot(uow, lots.LotIn(
                part_id=parts[part], quantity=Decimal(qty), lot_number=number, supplier=supplier,
                supplier_lot_number=supplier_lot, location_id=places["QC-HOLD" if quarantine else "STORES-A"],
                quarantine=quarantine, certificate_number=f"CoC-{number[2:]}",
                expires_at=utcnow() + timedelta(days=365) if part in ("P-20003", "P-20004") else None))
            received[number] = lot.id
    for number in received:  # incoming inspection passed: quality releases every lot, the heat from quarantine
        await _call(mat, lambda uow, n=number: _release(uow, received[n]))
    piece = await _call(mat, lambda uow: lots.split_lot(received["L-24-0602"], lots.SplitIn(
        quantity=Decimal(2), location_id=places["LINE-1"]), uow, operator))
    merged = await _call(mat, lambda uow: lots.merge_lots(lots.MergeIn(
        lot_ids=[piece.child.id, received["L-24-0603"]], lot_number=MERGED_LOT, location_id=places["LINE-1"]),
        uow, operator))

    wo = work_order.service
    async with wo.unit_of_work() as uow:
        order = await orders.create_work_order(uow, orders.WorkOrderIn(
            part_id=parts["P-12345"], quantity=Decimal(3), work_order_number="WO-1005",
            site_id=uuid.UUID(site_id) if site_id else None, priority=250, due_date=utcnow() + timedelta(days=5)),
            admin)
        await orders.release(uow, order)
    await _call(wo, lambda uow: orders.post_dispatch(order.id, orders.DispatchIn(), uow, admin))
    await system.drain()  # material knows WO-1005 (and its quantity) from work_order's events
    for lot_id, qty, op in ((received["L-24-0601"], "3", "OP10"), (merged.id, "6", "OP50"),
                            (received["L-24-0605"], "3", "OP50"), (received["L-24-0606"], "2.25", "OP50")):
        await _call(mat, lambda uow, i=lot_id, q=qty, o=op: consumption.post_consumption(
            consumption.ConsumptionIn(lot_id=i, work_order_id=order.id, quantity=Decimal(q), operation_code=o),
            uow, operator))
    for sequence in (10, 20, 30, 40, 50):
        await _call(wo, lambda uow, s=sequence: operations.start_operation(order.id, s, uow, operator))
        await _call(wo, lambda uow, s=sequence: operations.complete_operation(
            order.id, s, operations.ReportIn(quantity_good=Decimal(3)), uow, operator))
    await system.drain()  # material received the struts into FG-WO-1005 and minted their serials

    async with mat.unit_of_work() as uow:
        done = list(await uow.scalars(select(SerializedPart).where(
            SerializedPart.work_order_id == order.id, SerializedPart.status == "completed")
            .order_by(SerializedPart.process_serial)))
    if len(done) < 2 or done[0].lot_id is None:
        return  # production output did not arrive: nothing to ship
    lot_id = done[0].lot_id
    shipment = await _call(mat, lambda uow: shipments.post_shipment(shipments.ShipmentIn(
        customer=CUSTOMER, customer_order="PO-4500172", lines=[shipments.LineIn(
            lot_id=lot_id, serial_ids=[unit.id for unit in done[:2]])]), uow, operator))
    await _call(mat, lambda uow: shipments.post_return(shipments.ReturnIn(
        shipment_id=shipment.id, reason="hydraulic leak at acceptance test", location_id=places["QC-HOLD"],
        lines=[shipments.LineIn(lot_id=lot_id, serial_ids=[done[0].id])]), uow, operator))
    await system.drain()


async def seed(system: System) -> None:
    """Example data (idempotent), each service's part through its own functions and events.

    A start must never fail because of the example data: a conflict with records people made
    (a 409 from a service function, a unique index) is reported in one line and the seed stops.
    """
    try:
        await _seed(system)
    except (HTTPException, IntegrityError) as exc:
        detail = getattr(exc, "detail", None) or type(exc).__name__
        print(f"mes: example data not loaded (the databases already hold conflicting records: {detail}); "
              "starting with the data as it is", file=sys.stderr)


async def _seed(system: System) -> None:
    users = await auth.seed()
    admin_id = users[os.environ.get("MES_ADMIN_USERNAME") or "admin"]
    admin = Principal(user_id=admin_id, username="admin", roles=frozenset({"admin"}))
    operator = Principal(user_id=users.get("operator1", admin_id), username="operator1",
                         roles=frozenset({"operator"}))
    material_ids = await seed_material(admin)
    await system.drain()
    resource_ids = await resource.seed(users, {k: str(v) for k, v in material_ids["parts"].items()})
    await system.drain()
    running = await seed_work_orders(admin, operator, resource_ids.get("PLT1"), material_ids)
    await system.drain()
    if running is not None:  # issue the forging for the running order (material knows it from its events)
        from mes.material import consumption
        for lot, qty, op in (("L-24-0101", "2", "OP10"),):
            await _call(material.service, lambda uow, n=lot, q=qty, o=op: consumption.post_consumption(
                consumption.ConsumptionIn(lot_id=material_ids["lots"][n], work_order_id=running,
                                          quantity=Decimal(q), operation_code=o), uow, operator))
        await system.drain()
        await seed_genealogy(system, admin, operator, material_ids, resource_ids.get("PLT1"))
