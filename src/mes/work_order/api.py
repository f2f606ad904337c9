"""HTTP API of the work order service."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import Field
from sqlalchemy import func, select

from isles import UnitOfWork
from isles.api import ApiModel
from isles.security import Guard
from mes.work_order.events import WorkOrderCreated
from mes.work_order.models import ReplicatedPart, WorkOrder
from mes.work_order.service_def import service

guard = Guard(service)
# Every route needs a valid access token or API token; writes need a role and the write scope.
router = APIRouter(dependencies=[Depends(guard.require_scopes("work_order:read"))])
CanWrite = Depends(guard.require(roles=("supervisor", "engineer", "admin"), scopes=("work_order:write",)))
Uow = Annotated[UnitOfWork, Depends(service.uow)]


Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


class WorkOrderIn(Schema):
    part_id: uuid.UUID
    quantity: int = Field(gt=0, le=1_000_000)
    work_order_number: str | None = Field(default=None, min_length=1, max_length=64)
    due_date: datetime | None = None


class WorkOrderOut(Schema):
    id: uuid.UUID
    work_order_number: str
    part_id: uuid.UUID
    part_number: str | None
    part_name: str | None
    quantity: int
    status: str
    due_date: datetime | None
    version: int


async def create_work_order(uow: UnitOfWork, data: WorkOrderIn) -> WorkOrder:
    # FOR SHARE: a concurrent part update waits for this commit, then sees (and updates) the new row.
    part = (await uow.execute(select(ReplicatedPart).where(ReplicatedPart.id == data.part_id)
                              .with_for_update(read=True))).scalar_one_or_none()
    if part is None or not part.is_active:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"part {data.part_id} is unknown to work_order (or retired); parts arrive through "
                            "mes.material.part.created events - check `isles status` if it was just created")
    number = data.work_order_number
    if number is None:
        count = await uow.scalar(select(func.count()).select_from(WorkOrder))
        number = f"WO-{(count or 0) + 1:06d}"
    if await uow.scalar(select(WorkOrder.id).where(WorkOrder.work_order_number == number)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order number {number} is already used")
    order = WorkOrder(work_order_number=number, part_id=part.id, part_number=part.part_number,
                      part_name=part.part_name, part_version=part.version, quantity=data.quantity,
                      due_date=data.due_date)
    uow.add(order)
    await uow.flush()
    uow.publish(WorkOrderCreated(work_order_id=str(order.id), work_order_number=number, part_id=str(part.id),
                                 quantity=order.quantity, status=order.status), entity=order)
    return order


@router.post("/work-orders", dependencies=[CanWrite], status_code=status.HTTP_201_CREATED, response_model=WorkOrderOut)
async def post_work_order(data: WorkOrderIn, uow: Uow) -> WorkOrder:
    order = await create_work_order(uow, data)
    await uow.commit()
    return order


@router.get("/work-orders", response_model=list[WorkOrderOut])
async def list_work_orders(uow: Uow, part_id: uuid.UUID | None = None, limit: int = 100,
                           offset: int = 0) -> list[WorkOrder]:
    query = select(WorkOrder).order_by(WorkOrder.work_order_number)
    if part_id is not None:
        query = query.where(WorkOrder.part_id == part_id)
    return list(await uow.scalars(query.limit(max(1, min(limit, 1000))).offset(max(offset, 0))))


@router.get("/work-orders/{work_order_id}", response_model=WorkOrderOut)
async def get_work_order(work_order_id: uuid.UUID, uow: Uow) -> WorkOrder:
    order = await uow.get(WorkOrder, work_order_id)
    if order is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"work order {work_order_id} not found")
    return order
