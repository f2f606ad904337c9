"""Work orders: create, read, plan, and move through their states (see states.py).

An order refers to a part, a site and its creator by id; the display fields beside the ids are
copied from this service's read models at creation and then kept current by the owners' events
(see service_def.py). The read-model rows are read ``FOR SHARE``: an update of the same part
waits for this transaction, so the new order cannot miss it.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Literal, TypeVar

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from isles import ReadModel, UnitOfWork
from isles.api import ApiModel, ApiOut, Quantity
from isles.audit_trail import audit
from isles.http import Page, Paged, PageOut, Uow, get_or_404, not_found, paged
from isles.orm import utcnow
from isles.security import Principal
from isles.text import Identifier
from mes.work_order.access import Planner, Supervisor
from mes.work_order.events import WorkOrderCreated
from mes.work_order.models import (
    WORK_ORDER_NUMBER,
    Dispatch,
    ReplicatedPart,
    ReplicatedRouting,
    ReplicatedSite,
    ReplicatedUser,
    ReplicatedWorkCenter,
    WorkInstruction,
    WorkOrder,
    WorkOrderOperation,
)
from mes.work_order.quantities import balance
from mes.work_order.states import ACTIVE, move, state_fields, stop_clock

router = APIRouter()
Status = Literal["Forecast", "Released", "Cancelled", "Ready", "Running", "Completed", "Aborted", "Held", "Paused",
                 "Closed"]


class WorkOrderIn(ApiModel):
    part_id: uuid.UUID
    quantity: Quantity = Field(gt=0, le=1_000_000)
    work_order_number: Identifier | None = Field(default=None, min_length=1, max_length=64,
                                                 description="generated when omitted")
    due_date: datetime | None = None
    site_id: uuid.UUID | None = None
    priority: int = Field(default=500, ge=1, le=1000, description="1 is the most urgent")
    routing_id: uuid.UUID | None = Field(default=None, description="default: the part's released routing")
    allow_overlap: bool = Field(default=False, description="operation N+1 may start once N has started")


class WorkOrderPatch(ApiModel):
    quantity: Quantity | None = Field(default=None, gt=0, le=1_000_000)
    due_date: datetime | None = None
    priority: int | None = Field(default=None, ge=1, le=1000)
    routing_id: uuid.UUID | None = None
    allow_overlap: bool | None = None


class WorkOrderOut(ApiOut):
    id: uuid.UUID
    work_order_number: str
    part_id: uuid.UUID
    part_number: str | None
    part_name: str | None
    site_id: uuid.UUID | None
    site_name: str | None
    created_by_id: uuid.UUID | None
    created_by_name: str | None
    created_by_active: bool | None
    routing_id: uuid.UUID | None
    schedule_id: uuid.UUID | None
    quantity: Quantity
    quantity_produced: Quantity
    quantity_good: Quantity
    quantity_scrap: Quantity
    status: str
    status_reason: str | None
    priority: int
    allow_overlap: bool
    due_date: datetime | None
    scheduled_start: datetime | None
    scheduled_end: datetime | None
    released_at: datetime | None
    actual_start: datetime | None
    actual_end: datetime | None
    closed_at: datetime | None
    created_at: datetime
    version: int


class OperationOut(ApiOut):
    id: uuid.UUID
    sequence: int
    code: str
    name: str
    work_center_id: uuid.UUID | None
    status: str
    planned_setup_minutes: Quantity
    planned_run_minutes: Quantity
    instruction_id: uuid.UUID | None
    instruction_revision: int | None
    actual_start: datetime | None
    actual_end: datetime | None
    actual_minutes: Quantity
    quantity_good: Quantity
    quantity_scrap: Quantity
    quantity_in: Quantity = Field(default=Decimal(0), description="given to it: the order quantity, or the previous "
                                                                    "operation's good quantity")
    quantity_in_process: Quantity = Field(default=Decimal(0), description="quantityIn - quantityGood - quantityScrap")
    yield_percent: float | None = Field(default=None, description="quantityGood / the order quantity (planned)")
    operator_id: uuid.UUID | None
    version: int


class WorkOrderDetail(WorkOrderOut):
    operations: list[OperationOut] = []


class ReleaseIn(ApiModel):
    routing_id: uuid.UUID | None = Field(default=None,
                                         description="default: the order's, else the part's released routing")


class DispatchIn(ApiModel):
    work_center_id: uuid.UUID | None = None
    note: str | None = Field(default=None, max_length=500)


class DispatchOut(ApiOut):
    id: uuid.UUID
    work_order_id: uuid.UUID
    work_center_id: uuid.UUID | None
    work_center_code: str | None = None
    work_center_name: str | None = None
    dispatched_by_id: uuid.UUID | None
    dispatched_at: datetime
    note: str | None


class ReasonIn(ApiModel):
    reason: str = Field(min_length=1, max_length=500)


# -- shared helpers -----------------------------------------------------------------------------------
async def get_order(uow: UnitOfWork, work_order_id: uuid.UUID, *, lock: bool = False) -> WorkOrder:
    """The work order, or 404; ``lock`` takes the row lock that serialises changes of one order."""
    if not lock:
        return await get_or_404(uow, WorkOrder, work_order_id, what="work order")
    order: WorkOrder | None = await uow.scalar(select(WorkOrder).where(WorkOrder.id == work_order_id)
                                               .with_for_update())
    if order is None:
        raise not_found("work order", work_order_id)
    return order


async def operations_of(uow: UnitOfWork, order: WorkOrder) -> list[WorkOrderOperation]:
    return list(await uow.scalars(select(WorkOrderOperation).where(WorkOrderOperation.work_order_id == order.id)
                                  .order_by(WorkOrderOperation.sequence)))


def operation_out(order: WorkOrder, ops: list[WorkOrderOperation], op: WorkOrderOperation) -> OperationOut:
    """The operation with its quantity balance (see quantities.py)."""
    return OperationOut.model_validate(op).model_copy(update=balance(order, ops, op))


async def detail(uow: UnitOfWork, order: WorkOrder) -> WorkOrderDetail:
    out = WorkOrderDetail.model_validate(order)
    ops = await operations_of(uow, order)
    out.operations = [operation_out(order, ops, o) for o in ops]
    return out


_Read = TypeVar("_Read", bound=ReadModel)


async def _shared(uow: UnitOfWork, model: type[_Read], ident: uuid.UUID) -> _Read | None:
    """A read-model row, read FOR SHARE (see the module docstring)."""
    row: _Read | None = await uow.scalar(select(model).where(model.id == ident).with_for_update(read=True))
    return row


def _whole_units(part: ReplicatedPart | None, quantity: Decimal) -> None:
    """A serial-tracked part is made unit by unit: each unit gets a serial, so no half units."""
    if part is not None and part.tracking == "serial" and quantity != quantity.to_integral_value():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"part {part.part_number} is serial-tracked: quantity {quantity} must be a whole number "
                            "of units")


async def _generated_number(uow: UnitOfWork) -> str:
    """The next WO-nnnnnn from the service's sequence, skipping numbers someone typed by hand."""
    for _ in range(1000):
        number = f"WO-{await WORK_ORDER_NUMBER.next_value(uow):06d}"
        if not await uow.scalar(select(WorkOrder.id).where(WorkOrder.work_order_number == number)):
            return number
    raise HTTPException(status.HTTP_409_CONFLICT, "1000 generated work order numbers in a row are taken; "
                                                  "pass workOrderNumber")


# -- create, read, plan ----------------------------------------------------------------------------------
async def create_work_order(uow: UnitOfWork, data: WorkOrderIn, created_by: Principal | None = None) -> WorkOrder:
    part = await _shared(uow, ReplicatedPart, data.part_id)
    if part is None or not part.is_active:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"part {data.part_id} is unknown to work_order (or retired); parts arrive through "
                            "mes.material.part.created events - check `isles status` if it was just created")
    _whole_units(part, data.quantity)
    site = await _shared(uow, ReplicatedSite, data.site_id) if data.site_id else None
    if data.site_id and site is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"site {data.site_id} is unknown to work_order (sites arrive through "
                            "mes.resource.site.updated events)")
    if data.routing_id and await uow.get(ReplicatedRouting, data.routing_id) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"routing {data.routing_id} is unknown to work_order")
    user = await _shared(uow, ReplicatedUser, uuid.UUID(created_by.user_id)) if created_by else None
    number = data.work_order_number
    if number is None:
        number = await _generated_number(uow)
    elif await uow.scalar(select(WorkOrder.id).where(WorkOrder.work_order_number == number)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order number {number} is already used")
    order = WorkOrder(
        work_order_number=number, part_id=part.id, part_number=part.part_number, part_name=part.part_name,
        part_version=part.version, site_id=site.id if site else None, site_name=site.site_name if site else None,
        site_version=site.version if site else None,
        created_by_id=uuid.UUID(created_by.user_id) if created_by else None,
        created_by_name=user.display_name if user else (created_by.username if created_by else None),
        created_by_active=user.is_active if user else None, created_by_version=user.version if user else None,
        routing_id=data.routing_id, quantity=data.quantity, due_date=data.due_date, priority=data.priority,
        allow_overlap=data.allow_overlap)
    uow.add(order)
    await uow.flush()
    uow.publish(WorkOrderCreated(**state_fields(order)), entity=order)
    return order


@router.post("/work-orders", status_code=status.HTTP_201_CREATED, response_model=WorkOrderOut)
async def post_work_order(data: WorkOrderIn, uow: Uow, principal: Planner) -> WorkOrder:
    order = await create_work_order(uow, data, principal)
    try:
        await uow.commit()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"work order number {order.work_order_number} is already used") from None
    return order


@router.get("/work-orders", response_model=PageOut[WorkOrderOut])
async def list_work_orders(uow: Uow, page: Page, part_id: uuid.UUID | None = Query(None, alias="partId"),
                           status_: Status | None = Query(None, alias="status"),
                           number: str | None = Query(None, max_length=64, description="the work order number")
                           ) -> Paged[WorkOrder]:
    return await paged(uow, select(WorkOrder).order_by(WorkOrder.work_order_number), page,
                       part_id=part_id, status=status_, work_order_number=number)


@router.get("/work-orders/{work_order_id}", response_model=WorkOrderDetail)
async def get_work_order(work_order_id: uuid.UUID, uow: Uow) -> WorkOrderDetail:
    return await detail(uow, await get_order(uow, work_order_id))


@router.patch("/work-orders/{work_order_id}", response_model=WorkOrderOut)
async def patch_work_order(work_order_id: uuid.UUID, data: WorkOrderPatch, uow: Uow, _: Planner) -> WorkOrder:
    """Change the plan of an order that is not released yet (priority and due date also later)."""
    order = await get_order(uow, work_order_id, lock=True)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    frozen = set(changes) - {"priority", "due_date"}
    if frozen and order.status != "Forecast":
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}; "
                                                      f"only priority and dueDate change after release")
    if order.status in ("Completed", "Closed", "Cancelled", "Aborted") and changes:
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}")
    if "quantity" in changes:
        _whole_units(await uow.get(ReplicatedPart, order.part_id), Decimal(changes["quantity"]))
    if changes.get("routing_id") and await uow.get(ReplicatedRouting, changes["routing_id"]) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"routing {changes['routing_id']} is unknown")
    for name, value in changes.items():
        setattr(order, name, value)
    await uow.commit()
    return order


# -- moves -------------------------------------------------------------------------------------------------
async def _routing_for(uow: UnitOfWork, order: WorkOrder, routing_id: uuid.UUID | None) -> ReplicatedRouting:
    if routing_id is not None:
        routing: ReplicatedRouting | None = await uow.get(ReplicatedRouting, routing_id)
        if routing is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"routing {routing_id} is unknown to work_order")
    else:
        candidates = list(await uow.scalars(select(ReplicatedRouting).where(
            ReplicatedRouting.part_id == str(order.part_id), ReplicatedRouting.status == "released")))
        if order.site_id is not None:
            candidates = [r for r in candidates if r.site_id in (None, str(order.site_id))]
        if not candidates:
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"no released routing for part {order.part_number} is known to work_order; release "
                                "one in resource (its product must name the part), or pass routingId")
        if len(candidates) > 1:
            names = ", ".join(sorted(f"{r.code} rev {r.revision} ({r.id})" for r in candidates))
            raise HTTPException(status.HTTP_409_CONFLICT, f"part {order.part_number} has several released "
                                                          f"routings: {names}; pass routingId")
        routing = candidates[0]
    if routing.status != "released" or not routing.operations:
        raise HTTPException(status.HTTP_409_CONFLICT, f"routing {routing.code} rev {routing.revision} is "
                                                      f"{routing.status}; only a released routing with operations "
                                                      "can plan a work order")
    if routing.part_id not in (None, str(order.part_id)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"routing {routing.code} makes another part")
    return routing


async def release(uow: UnitOfWork, order: WorkOrder, routing_id: uuid.UUID | None = None) -> WorkOrder:
    """Forecast -> Released: plan the operations from the routing, with the instructions in force."""
    if order.status != "Forecast":
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}; "
                                                      "only a Forecast order is released")
    routing = await _routing_for(uow, order, routing_id or order.routing_id)
    instructions = {i.operation_code: i for i in await uow.scalars(select(WorkInstruction).where(
        WorkInstruction.part_id == order.part_id, WorkInstruction.status == "released"))}
    quantity = Decimal(order.quantity)
    for step in sorted(routing.operations, key=lambda s: s["sequence"]):
        instruction = instructions.get(step["code"])
        uow.add(WorkOrderOperation(
            work_order_id=order.id, sequence=step["sequence"], code=step["code"], name=step["name"],
            work_center_id=uuid.UUID(step["workCenterId"]) if step.get("workCenterId") else None,
            planned_setup_minutes=Decimal(str(step.get("setupMinutes") or 0)),
            planned_run_minutes=Decimal(str(step.get("runMinutesPerUnit") or 0)) * quantity,
            instruction_id=instruction.id if instruction else None,
            instruction_revision=instruction.revision if instruction else None))
    order.routing_id = routing.id
    return await move(uow, order, "Released")


@router.post("/work-orders/{work_order_id}/release", response_model=WorkOrderDetail)
async def post_release(work_order_id: uuid.UUID, data: ReleaseIn, uow: Uow, principal: Supervisor) -> WorkOrderDetail:
    order = await release(uow, await get_order(uow, work_order_id, lock=True), data.routing_id)
    audit(uow, principal, "work_order.released", "work_order", order.id, {"status": ("Forecast", order.status)})
    await uow.commit()
    return await detail(uow, order)


@router.post("/work-orders/{work_order_id}/dispatch", response_model=WorkOrderOut)
async def post_dispatch(work_order_id: uuid.UUID, data: DispatchIn, uow: Uow, principal: Supervisor) -> WorkOrder:
    """Released -> Ready: send the order to the floor (to a work center, if named)."""
    order = await get_order(uow, work_order_id, lock=True)
    if data.work_center_id is not None:
        center = await uow.get(ReplicatedWorkCenter, data.work_center_id)
        if center is None or center.is_active is False:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"workCenterId {data.work_center_id} is not an active work center known to "
                                "work_order (work centers arrive through mes.resource.work_center.updated events)")
    await move(uow, order, "Ready")
    uow.add(Dispatch(work_order_id=order.id, work_center_id=data.work_center_id,
                     dispatched_by_id=uuid.UUID(principal.user_id), dispatched_at=utcnow(), note=data.note))
    await uow.commit()
    return order


async def _dispatch_out(uow: UnitOfWork, row: Dispatch) -> DispatchOut:
    center = await uow.get(ReplicatedWorkCenter, row.work_center_id) if row.work_center_id else None
    return DispatchOut.model_validate(row).model_copy(update={
        "work_center_code": center.code if center else None, "work_center_name": center.name if center else None})


@router.get("/work-orders/{work_order_id}/dispatches", response_model=PageOut[DispatchOut])
async def list_dispatches(work_order_id: uuid.UUID, uow: Uow, page: Page) -> Paged[DispatchOut]:
    """Where and when the order was sent to the floor, oldest first."""
    await get_order(uow, work_order_id)
    found = await paged(uow, select(Dispatch).where(Dispatch.work_order_id == work_order_id)
                        .order_by(Dispatch.dispatched_at, Dispatch.id), page)
    return Paged([await _dispatch_out(uow, row) for row in found.items], found.total, found.limit, found.offset)


@router.get("/work-orders/{work_order_id}/dispatches/{dispatch_id}", response_model=DispatchOut)
async def read_dispatch(work_order_id: uuid.UUID, dispatch_id: uuid.UUID, uow: Uow) -> DispatchOut:
    row = await uow.get(Dispatch, dispatch_id)
    if row is None or row.work_order_id != work_order_id:
        raise not_found("dispatch", dispatch_id)
    return await _dispatch_out(uow, row)


async def _pause_running(uow: UnitOfWork, order: WorkOrder) -> None:
    for op in await operations_of(uow, order):
        if op.status == "Running":
            stop_clock(op)
            op.status = "Paused"


@router.post("/work-orders/{work_order_id}/hold", response_model=WorkOrderOut)
async def post_hold(work_order_id: uuid.UUID, data: ReasonIn, uow: Uow, principal: Supervisor) -> WorkOrder:
    """Stop the order (a quality hold, a missing part); running operations are paused."""
    order = await get_order(uow, work_order_id, lock=True)
    await move(uow, order, "Held", data.reason)
    audit(uow, principal, "work_order.held", "work_order", order.id, {"status": (order.held_from, "Held")},
          reason=data.reason)
    await _pause_running(uow, order)
    await uow.commit()
    return order


@router.post("/work-orders/{work_order_id}/unhold", response_model=WorkOrderOut)
async def post_unhold(work_order_id: uuid.UUID, uow: Uow, principal: Supervisor) -> WorkOrder:
    """Back to the state the order was held from (its operations resume one by one)."""
    order = await get_order(uow, work_order_id, lock=True)
    if order.status != "Held":
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is not held")
    await move(uow, order, order.held_from or "Forecast")
    audit(uow, principal, "work_order.unheld", "work_order", order.id, {"status": ("Held", order.status)})
    await uow.commit()
    return order


@router.post("/work-orders/{work_order_id}/pause", response_model=WorkOrderOut)
async def post_pause(work_order_id: uuid.UUID, uow: Uow, _: Supervisor) -> WorkOrder:
    order = await get_order(uow, work_order_id, lock=True)
    await move(uow, order, "Paused")
    await _pause_running(uow, order)
    await uow.commit()
    return order


@router.post("/work-orders/{work_order_id}/resume", response_model=WorkOrderOut)
async def post_resume(work_order_id: uuid.UUID, uow: Uow, _: Supervisor) -> WorkOrder:
    order = await get_order(uow, work_order_id, lock=True)
    if order.status != "Paused":
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is not paused")
    await move(uow, order, "Running")
    await uow.commit()
    return order


@router.post("/work-orders/{work_order_id}/cancel", response_model=WorkOrderOut)
async def post_cancel(work_order_id: uuid.UUID, data: ReasonIn, uow: Uow, _: Supervisor) -> WorkOrder:
    """Cancel an order nothing was made for yet (Forecast, Released or Ready)."""
    order = await get_order(uow, work_order_id, lock=True)
    await move(uow, order, "Cancelled", data.reason)
    await uow.commit()
    return order


@router.post("/work-orders/{work_order_id}/abort", response_model=WorkOrderOut)
async def post_abort(work_order_id: uuid.UUID, data: ReasonIn, uow: Uow, _: Supervisor) -> WorkOrder:
    """Stop a running order for good; what was reported stays on record."""
    order = await get_order(uow, work_order_id, lock=True)
    await _pause_running(uow, order)
    await move(uow, order, "Aborted", data.reason)
    await uow.commit()
    return order


@router.post("/work-orders/{work_order_id}/close", response_model=WorkOrderOut)
async def post_close(work_order_id: uuid.UUID, uow: Uow, _: Supervisor) -> WorkOrder:
    """Completed -> Closed: the record is final (variance stays readable)."""
    order = await get_order(uow, work_order_id, lock=True)
    await move(uow, order, "Closed")
    await uow.commit()
    return order


__all__ = ["ACTIVE", "WorkOrderIn", "WorkOrderOut", "create_work_order", "get_order", "operations_of", "release",
           "router"]
