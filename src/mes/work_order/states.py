"""The work order's life: the B2MML request states and the moves between them.

::

    Forecast --release--> Released --dispatch--> Ready --first operation starts--> Running
    Running <--pause/resume--> Paused          Running --last operation completes--> Completed
    Completed --close--> Closed
    Forecast/Released/Ready --cancel--> Cancelled      Running/Paused --abort--> Aborted
    any open state --hold--> Held --unhold--> the state it was held from

Every move publishes ``work_order.status_changed`` with the order's whole state, in the same
transaction as the move.
"""
from __future__ import annotations

from datetime import timezone
from decimal import Decimal
from typing import Any

from fastapi import HTTPException, status
from sqlalchemy import select

from isles import UnitOfWork
from isles.orm import utcnow
from mes.work_order.events import WorkOrderStatusChanged
from mes.work_order.models import WorkOrder, WorkOrderOperation

TRANSITIONS: dict[str, set[str]] = {
    "Forecast": {"Released", "Cancelled", "Held"},
    "Released": {"Ready", "Cancelled", "Held"},
    "Ready": {"Running", "Cancelled", "Held"},
    "Running": {"Paused", "Completed", "Aborted", "Held"},
    "Paused": {"Running", "Aborted", "Held"},
    "Held": set(),  # only back to held_from (unhold)
    "Completed": {"Closed"},
    "Cancelled": set(),
    "Aborted": set(),
    "Closed": set(),
}
FINAL = {"Cancelled", "Aborted", "Closed"}
#: states in which operations may run
ACTIVE = {"Ready", "Running"}


def state_fields(order: WorkOrder) -> dict[str, Any]:
    """The order's whole state as event fields."""
    return dict(work_order_id=str(order.id), work_order_number=order.work_order_number, part_id=str(order.part_id),
                part_number=order.part_number, site_id=str(order.site_id) if order.site_id else None,
                quantity=order.quantity, quantity_good=order.quantity_good, quantity_scrap=order.quantity_scrap,
                status=order.status, priority=order.priority,
                due_date=order.due_date.isoformat() if order.due_date else None)


async def operation_codes(uow: UnitOfWork, order: WorkOrder) -> list[str] | None:
    """The order's operation codes in routing order (material checks issues against them)."""
    codes = list(await uow.scalars(select(WorkOrderOperation.code).where(WorkOrderOperation.work_order_id == order.id)
                                   .order_by(WorkOrderOperation.sequence)))
    return codes or None


async def move(uow: UnitOfWork, order: WorkOrder, new: str, reason: str | None = None) -> WorkOrder:
    """Move ``order`` to ``new`` (409 naming the allowed moves if it may not) and publish it."""
    previous = order.status
    allowed = {order.held_from} if previous == "Held" and order.held_from else TRANSITIONS[previous]
    if new not in allowed:
        moves = ", ".join(sorted(allowed)) or "nothing (it is final)"
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"work order {order.work_order_number} is {previous}; it can become: {moves}")
    order.held_from = previous if new == "Held" else None
    order.status, order.status_reason = new, reason
    now = utcnow()
    if new == "Released" and order.released_at is None:
        order.released_at = now
    elif new == "Running" and order.actual_start is None:
        order.actual_start = now
    elif new == "Completed":
        order.actual_end = now
    elif new == "Closed":
        order.closed_at = now
    await uow.flush()
    uow.publish(WorkOrderStatusChanged(**state_fields(order), operation_codes=await operation_codes(uow, order),
                                       previous_status=previous, new_status=new, reason=reason), entity=order)
    return order


def stop_clock(op: WorkOrderOperation) -> None:
    """Add the time since the operation last started running to ``actual_minutes``."""
    if op.running_since is None:
        return
    since = op.running_since if op.running_since.tzinfo else op.running_since.replace(tzinfo=timezone.utc)
    elapsed = Decimal(str(round((utcnow() - since).total_seconds() / 60, 3)))
    op.actual_minutes = Decimal(op.actual_minutes or 0) + elapsed
    op.running_since = None
