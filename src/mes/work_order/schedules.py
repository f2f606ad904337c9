"""Production schedules (which orders run when) and the dispatch list (what a work center does next).

A schedule is drafted as Forecast with its orders' planned start and end; publishing it releases
every Forecast order in it (each planned from its routing) in one transaction - all or none.
The dispatch list is what an operator's terminal shows: for a work center, the operations of
Ready and Running orders that may start now (or are running), most urgent first.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field, model_validator
from sqlalchemy import select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut, Quantity
from isles.http import Page, Paged, PageOut, Uow, get_or_404, paged
from isles.orm import utcnow
from isles.text import Identifier
from mes.work_order import reference
from mes.work_order.access import Planner, Supervisor
from mes.work_order.models import ProductionSchedule, WorkOrder, WorkOrderOperation
from mes.work_order.orders import WorkOrderOut, get_order, release

router = APIRouter()


class ScheduledOrder(ApiModel):
    work_order_id: uuid.UUID
    scheduled_start: datetime
    scheduled_end: datetime
    priority: int | None = Field(default=None, ge=1, le=1000)

    @model_validator(mode="after")
    def _ordered(self) -> "ScheduledOrder":
        if self.scheduled_end <= self.scheduled_start:
            raise ValueError("scheduledEnd must be after scheduledStart")
        return self


class ScheduleIn(ApiModel):
    schedule_number: Identifier = Field(min_length=1, max_length=64)
    site_id: uuid.UUID | None = None
    starts_at: datetime
    ends_at: datetime
    work_orders: list[ScheduledOrder] = Field(default_factory=list, max_length=5000)

    @model_validator(mode="after")
    def _ordered(self) -> "ScheduleIn":
        if self.ends_at <= self.starts_at:
            raise ValueError("endsAt must be after startsAt")
        return self


class ScheduleOut(ApiOut):
    id: uuid.UUID
    schedule_number: str
    site_id: uuid.UUID | None
    starts_at: datetime
    ends_at: datetime
    state: str
    published_at: datetime | None
    work_orders: list[WorkOrderOut] = []
    version: int


class DispatchRow(ApiOut):
    work_order_id: uuid.UUID
    work_order_number: str
    part_number: str | None
    priority: int
    due_date: datetime | None
    sequence: int
    operation_code: str
    operation_name: str
    operation_status: str
    work_center_id: uuid.UUID | None
    work_center_code: str | None
    work_center_name: str | None
    planned_minutes: Quantity
    quantity: Quantity


async def _out(uow: UnitOfWork, schedule: ProductionSchedule) -> ScheduleOut:
    out = ScheduleOut.model_validate(schedule)
    out.work_orders = [WorkOrderOut.model_validate(o) for o in await uow.scalars(
        select(WorkOrder).where(WorkOrder.schedule_id == schedule.id)
        .order_by(WorkOrder.scheduled_start, WorkOrder.priority))]
    return out


async def _schedule(uow: UnitOfWork, schedule_id: uuid.UUID) -> ProductionSchedule:
    return await get_or_404(uow, ProductionSchedule, schedule_id, what="schedule")


async def create_schedule(uow: UnitOfWork, data: ScheduleIn) -> ProductionSchedule:
    same_number = ProductionSchedule.schedule_number == data.schedule_number
    if await uow.scalar(select(ProductionSchedule.id).where(same_number)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"schedule number {data.schedule_number} is already used")
    schedule = ProductionSchedule(schedule_number=data.schedule_number, site_id=data.site_id,
                                  starts_at=data.starts_at, ends_at=data.ends_at)
    uow.add(schedule)
    await uow.flush()
    for item in data.work_orders:
        order = await get_order(uow, item.work_order_id, lock=True)
        if order.status != "Forecast":
            raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}; "
                                                          "only Forecast orders are scheduled")
        if not (data.starts_at <= item.scheduled_start and item.scheduled_end <= data.ends_at):
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"work order {order.work_order_number} is planned outside the schedule's window")
        order.schedule_id = schedule.id
        order.scheduled_start, order.scheduled_end = item.scheduled_start, item.scheduled_end
        if item.priority is not None:
            order.priority = item.priority
    return schedule


@router.post("/schedules", status_code=status.HTTP_201_CREATED, response_model=ScheduleOut)
async def post_schedule(data: ScheduleIn, uow: Uow, _: Planner) -> ScheduleOut:
    schedule = await create_schedule(uow, data)
    await uow.commit()
    return await _out(uow, schedule)


@router.get("/schedules", response_model=PageOut[ScheduleOut])
async def list_schedules(uow: Uow, page: Page,
                         number: str | None = Query(None, min_length=1, max_length=64,
                                                    description="the schedule with this number")) -> Paged[ScheduleOut]:
    query = select(ProductionSchedule).order_by(ProductionSchedule.starts_at.desc(), ProductionSchedule.id)
    if number is not None:
        query = query.where(ProductionSchedule.schedule_number == number)
    found = await paged(uow, query, page)
    return Paged([await _out(uow, s) for s in found.items], found.total, found.limit, found.offset)


@router.get("/schedules/{schedule_id}", response_model=ScheduleOut)
async def get_schedule(schedule_id: uuid.UUID, uow: Uow) -> ScheduleOut:
    return await _out(uow, await _schedule(uow, schedule_id))


@router.post("/schedules/{schedule_id}/publish", response_model=ScheduleOut)
async def publish_schedule(schedule_id: uuid.UUID, uow: Uow, _: Supervisor) -> ScheduleOut:
    """Forecast -> Released: release every Forecast order of the schedule (all or none)."""
    schedule = await _schedule(uow, schedule_id)
    if schedule.state != "Forecast":
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"schedule {schedule.schedule_number} is already {schedule.state}")
    for order in list(await uow.scalars(select(WorkOrder).where(WorkOrder.schedule_id == schedule.id,
                                                                WorkOrder.status == "Forecast")
                                        .order_by(WorkOrder.scheduled_start).with_for_update())):
        await release(uow, order)
    schedule.state, schedule.published_at = "Released", utcnow()
    await uow.commit()
    return await _out(uow, schedule)


@router.get("/dispatch-list", response_model=PageOut[DispatchRow])
async def dispatch_list(uow: Uow, page: Page, work_center_id: uuid.UUID | None = Query(None, alias="workCenterId")
                        ) -> Paged[DispatchRow]:
    """Operations that may start now (or are running), for one work center or all, most urgent first."""
    query = (select(WorkOrderOperation, WorkOrder).join(WorkOrder, WorkOrder.id == WorkOrderOperation.work_order_id)
             .where(WorkOrder.status.in_(("Ready", "Running")), WorkOrderOperation.status != "Completed")
             .order_by(WorkOrder.priority, WorkOrder.due_date, WorkOrder.work_order_number,
                       WorkOrderOperation.sequence))
    rows = (await uow.execute(query)).all()
    by_order: dict[uuid.UUID, list[WorkOrderOperation]] = {}
    for op, order in rows:
        by_order.setdefault(order.id, []).append(op)
    ready = []
    for op, order in rows:
        earlier = [o for o in by_order[order.id] if o.sequence < op.sequence]  # the not-completed ones
        startable = not earlier or (order.allow_overlap and all(o.status != "Pending" for o in earlier))
        if (op.status != "Pending" or startable) and (work_center_id is None or op.work_center_id == work_center_id):
            ready.append((op, order))
    total, ready = len(ready), ready[page.offset:page.offset + page.limit]
    centers = await reference.work_centers(uow, {op.work_center_id for op, _ in ready})
    rows_out = [DispatchRow(work_order_id=order.id, work_order_number=order.work_order_number,
                            part_number=order.part_number, priority=order.priority, due_date=order.due_date,
                            sequence=op.sequence, operation_code=op.code, operation_name=op.name,
                            operation_status=op.status, work_center_id=op.work_center_id,
                            work_center_code=(centers.get(str(op.work_center_id)) or {}).get("code"),
                            work_center_name=(centers.get(str(op.work_center_id)) or {}).get("name"),
                            planned_minutes=op.planned_setup_minutes + op.planned_run_minutes, quantity=order.quantity)
                for op, order in ready]
    return Paged(rows_out, total, page.limit, page.offset)
