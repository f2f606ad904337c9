"""Running a work order's operations in order, and reporting what they made.

The sequence is enforced twice (21 CFR Part 11 11.10(f), operational checks): when an operation
*starts*, every earlier one must be complete (or, for an order that allows overlap, started);
when it *completes*, every earlier one must be complete - so with overlap operation 20 may run
beside 10, but it can never be finished first. Checks and writes happen under a lock on the
order row, so two requests cannot both slip past the check.

Quantities flow down the routing: an operation cannot report more good plus scrap than it was
given (the order quantity for the first, the previous operation's good quantity after that), and
it completes only when every unit it was given is reported as good or scrap (quantities.py: in =
good + scrap + still in process). Completing the last operation completes the order.

A held (or aborted, or not yet started) order takes no report: only a Running or Paused order does.
"""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import Field

from isles import UnitOfWork
from isles.api import ApiModel, Quantity
from isles.http import Uow
from isles.orm import utcnow
from isles.security import Principal
from mes.work_order.access import Operator
from mes.work_order.events import WorkOrderCompleted
from mes.work_order.models import PerformanceReport, WorkOrder, WorkOrderOperation
from mes.work_order.orders import OperationOut, get_order, operation_out, operations_of
from mes.work_order.output import publish_report
from mes.work_order.quantities import in_process, quantity_in, shown
from mes.work_order.states import ACTIVE, move, state_fields, stop_clock

router = APIRouter()
#: order states in which production is reported (Held, Aborted and the rest take none)
REPORTABLE = ("Running", "Paused")
Sequence = Annotated[int, Path(ge=1, le=100_000, description="the operation's sequence number (10, 20, ...)")]


class ReportIn(ApiModel):
    quantity_good: Quantity = Decimal(0)
    quantity_scrap: Quantity = Decimal(0)
    scrap_reason: str | None = Field(default=None, min_length=1, max_length=500)


def _label(op: WorkOrderOperation) -> str:
    return f"operation {op.sequence} ({op.code})"


async def _target(uow: UnitOfWork, work_order_id: uuid.UUID, sequence: int
                  ) -> tuple[WorkOrder, list[WorkOrderOperation], WorkOrderOperation]:
    order = await get_order(uow, work_order_id, lock=True)  # serialises every change of this order
    ops = await operations_of(uow, order)
    op = next((o for o in ops if o.sequence == sequence), None)
    if op is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"work order {order.work_order_number} has no operation {sequence}"
                            + ("" if ops else " (it is not released yet)"))
    return order, ops, op


def _require_earlier(ops: list[WorkOrderOperation], op: WorkOrderOperation, *, started_is_enough: bool,
                     action: str) -> None:
    for earlier in ops:
        if earlier.sequence >= op.sequence:
            break
        ok = earlier.status != "Pending" if started_is_enough else earlier.status == "Completed"
        if not ok:
            need = "has started" if started_is_enough else "has completed"
            raise HTTPException(status.HTTP_409_CONFLICT,
                                f"{_label(op)} cannot {action} before {_label(earlier)} {need} "
                                f"(it is {earlier.status}): operations follow the routing's order")


def _record(uow: UnitOfWork, order: WorkOrder, ops: list[WorkOrderOperation], op: WorkOrderOperation,
            data: ReportIn, who: Principal) -> None:
    if data.quantity_good == 0 and data.quantity_scrap == 0:
        return
    if data.quantity_scrap > 0 and not data.scrap_reason:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "scrap needs a scrapReason")
    given = quantity_in(order, ops, op)
    good = Decimal(op.quantity_good) + data.quantity_good
    scrap = Decimal(op.quantity_scrap) + data.quantity_scrap
    if good + scrap > given:
        raise HTTPException(status.HTTP_409_CONFLICT, f"{_label(op)} was given {shown(given)}; it cannot report "
                                                      f"{shown(good)} good + {shown(scrap)} scrap")
    op.quantity_good, op.quantity_scrap = good, scrap
    report = PerformanceReport(id=uuid.uuid4(), work_order_id=order.id, operation_id=op.id,
                               quantity_good=data.quantity_good, quantity_scrap=data.quantity_scrap,
                               scrap_reason=data.scrap_reason, reported_by_id=uuid.UUID(who.user_id),
                               reported_at=utcnow())
    uow.add(report)
    publish_report(uow, order, ops, op, report)  # material receives the last operation's good output


@router.post("/work-orders/{work_order_id}/operations/{sequence}/start", response_model=OperationOut)
async def start_operation(work_order_id: uuid.UUID, sequence: Sequence, uow: Uow, who: Operator) -> OperationOut:
    order, ops, op = await _target(uow, work_order_id, sequence)
    if order.status not in ACTIVE:
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}; "
                                                      "operations start when it is Ready or Running")
    if op.status != "Pending":
        raise HTTPException(status.HTTP_409_CONFLICT, f"{_label(op)} is {op.status}; only a pending one starts")
    _require_earlier(ops, op, started_is_enough=order.allow_overlap, action="start")
    now = utcnow()
    op.status, op.actual_start, op.running_since, op.operator_id = "Running", now, now, uuid.UUID(who.user_id)
    if order.status == "Ready":
        await move(uow, order, "Running")
    await uow.commit()
    return operation_out(order, ops, op)


@router.post("/work-orders/{work_order_id}/operations/{sequence}/pause", response_model=OperationOut)
async def pause_operation(work_order_id: uuid.UUID, sequence: Sequence, uow: Uow, _: Operator) -> OperationOut:
    order, ops, op = await _target(uow, work_order_id, sequence)
    if op.status != "Running":
        raise HTTPException(status.HTTP_409_CONFLICT, f"{_label(op)} is {op.status}; only a running one pauses")
    stop_clock(op)
    op.status = "Paused"
    await uow.commit()
    return operation_out(order, ops, op)


@router.post("/work-orders/{work_order_id}/operations/{sequence}/resume", response_model=OperationOut)
async def resume_operation(work_order_id: uuid.UUID, sequence: Sequence, uow: Uow, _: Operator) -> OperationOut:
    order, ops, op = await _target(uow, work_order_id, sequence)
    if order.status != "Running":
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}; "
                                                      "operations resume when it is Running")
    if op.status != "Paused":
        raise HTTPException(status.HTTP_409_CONFLICT, f"{_label(op)} is {op.status}; only a paused one resumes")
    op.status, op.running_since = "Running", utcnow()
    await uow.commit()
    return operation_out(order, ops, op)


@router.post("/work-orders/{work_order_id}/operations/{sequence}/report", response_model=OperationOut)
async def report_operation(work_order_id: uuid.UUID, sequence: Sequence, data: ReportIn, uow: Uow,
                           who: Operator) -> OperationOut:
    """Report good and scrap quantities made so far (added to the operation's totals)."""
    order, ops, op = await _target(uow, work_order_id, sequence)
    if order.status not in REPORTABLE:
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}; "
                                                      "production is reported while it is Running or Paused")
    if op.status not in ("Running", "Paused"):
        raise HTTPException(status.HTTP_409_CONFLICT, f"{_label(op)} is {op.status}; report while it runs")
    _record(uow, order, ops, op, data, who)
    await uow.commit()
    return operation_out(order, ops, op)


@router.post("/work-orders/{work_order_id}/operations/{sequence}/complete", response_model=OperationOut)
async def complete_operation(work_order_id: uuid.UUID, sequence: Sequence, data: ReportIn, uow: Uow,
                             who: Operator) -> OperationOut:
    """Finish the operation (with a last report); the last operation completes the order."""
    order, ops, op = await _target(uow, work_order_id, sequence)
    if order.status != "Running":
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}; "
                                                      "operations complete while it is Running")
    if op.status != "Running":
        raise HTTPException(status.HTTP_409_CONFLICT, f"{_label(op)} is {op.status}; only a running one completes")
    _require_earlier(ops, op, started_is_enough=False, action="complete")
    _record(uow, order, ops, op, data, who)
    left = in_process(order, ops, op)
    if left != 0:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"{_label(op)} was given {shown(quantity_in(order, ops, op))}: {shown(op.quantity_good)} "
                            f"good + {shown(op.quantity_scrap)} scrap leaves {shown(left)} still in process; report "
                            "them as good or "
                            "scrap (with a scrapReason) before it completes")
    stop_clock(op)
    op.status, op.actual_end = "Completed", utcnow()
    if all(o.status == "Completed" for o in ops):
        await _complete_order(uow, order, ops)
    await uow.commit()
    return operation_out(order, ops, op)


async def _complete_order(uow: UnitOfWork, order: WorkOrder, ops: list[WorkOrderOperation]) -> None:
    last = ops[-1]
    order.quantity_good = Decimal(last.quantity_good)
    order.quantity_scrap = sum((Decimal(o.quantity_scrap) for o in ops), Decimal(0))
    order.quantity_produced = Decimal(last.quantity_good) + Decimal(last.quantity_scrap)
    await move(uow, order, "Completed")
    assert order.actual_end is not None  # the move to Completed stamped it
    uow.publish(WorkOrderCompleted(**state_fields(order), operation_codes=[o.code for o in ops],
                                   quantity_produced=order.quantity_produced,
                                   actual_start=order.actual_start.isoformat() if order.actual_start else None,
                                   actual_end=order.actual_end.isoformat()), entity=order)
