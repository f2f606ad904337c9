"""What an order produced: every report published, and corrections as counter-entries.

Each production report is published as ``mes.work_order.production.reported`` in the same
transaction that records it. Material turns the good quantity of the order's *last* operation
into finished stock (a lot with genealogy, serials); other consumers (KPIs) may use every report.

A report that was wrong is never edited or deleted. A counter-entry is a new report with the
negative quantities (all of the original by default, or part of it), naming the report it
corrects and why; the operation's totals - and, for a completed order, the order's - follow. A
correction that would leave an operation with less good output than the next operation already
used is refused: correct the later operation first.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from sqlalchemy import func, select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut, Quantity, SignedQuantity
from isles.audit_trail import audit
from isles.http import Page, Paged, PageOut, Uow, paged
from isles.orm import utcnow
from mes.work_order.access import Supervisor
from mes.work_order.events import ProductionReported
from mes.work_order.models import PerformanceReport, WorkOrder, WorkOrderOperation
from mes.work_order.orders import get_order, operations_of

router = APIRouter()
#: an order's reports may be corrected until it is closed
CORRECTABLE = ("Running", "Paused", "Completed")


class ReportOut(ApiOut):
    id: uuid.UUID
    work_order_id: uuid.UUID
    operation_id: uuid.UUID
    quantity_good: SignedQuantity
    quantity_scrap: SignedQuantity
    scrap_reason: str | None
    corrects_report_id: uuid.UUID | None
    reason: str | None
    reported_by_id: uuid.UUID | None
    reported_at: datetime


class CounterEntryIn(ApiModel):
    reason: str = Field(min_length=1, max_length=500, description="why the report was wrong (kept on record)")
    quantity_good: Quantity | None = Field(default=None, ge=0, description="good taken back; default: all of it")
    quantity_scrap: Quantity | None = Field(default=None, ge=0, description="scrap taken back; default: all of it")


def totals(ops: list[WorkOrderOperation]) -> tuple[Decimal, Decimal]:
    """The order's good (the last operation's) and scrap (every operation's)."""
    good = Decimal(ops[-1].quantity_good) if ops else Decimal(0)
    return good, sum((Decimal(o.quantity_scrap) for o in ops), Decimal(0))


def publish_report(uow: UnitOfWork, order: WorkOrder, ops: list[WorkOrderOperation], op: WorkOrderOperation,
                   report: PerformanceReport) -> None:
    """Publish ``report`` (called wherever a report is recorded; the operation's totals are updated)."""
    good, scrap = totals(ops)
    uow.publish(ProductionReported(
        report_id=str(report.id), corrects_report_id=str(report.corrects_report_id) if report.corrects_report_id
        else None, work_order_id=str(order.id), work_order_number=order.work_order_number,
        part_id=str(order.part_id), part_number=order.part_number, order_quantity=order.quantity,
        operation_id=str(op.id), operation_code=op.code, sequence=op.sequence,
        final_operation=op.sequence == ops[-1].sequence, quantity_good=report.quantity_good,
        quantity_scrap=report.quantity_scrap, scrap_reason=report.scrap_reason, reason=report.reason,
        reported_by=str(report.reported_by_id) if report.reported_by_id else None,
        reported_at=report.reported_at.isoformat(), order_quantity_good=good, order_quantity_scrap=scrap),
        entity=order)


@router.get("/work-orders/{work_order_id}/reports", response_model=PageOut[ReportOut])
async def list_reports(work_order_id: uuid.UUID, uow: Uow, page: Page,
                       operation_id: uuid.UUID | None = Query(None, alias="operationId")) -> Paged[PerformanceReport]:
    """Every production report of the order, counter-entries included, in the order they were made."""
    await get_order(uow, work_order_id)
    return await paged(uow, select(PerformanceReport).where(PerformanceReport.work_order_id == work_order_id)
                       .order_by(PerformanceReport.reported_at), page, operation_id=operation_id)


@router.post("/work-orders/{work_order_id}/reports/{report_id}/counter-entry", status_code=status.HTTP_201_CREATED,
             response_model=ReportOut)
async def post_counter_entry(work_order_id: uuid.UUID, report_id: uuid.UUID, data: CounterEntryIn, uow: Uow,
                             who: Supervisor) -> PerformanceReport:
    """Correct a production report by a counter-entry (a negative report referencing it)."""
    order = await get_order(uow, work_order_id, lock=True)  # serialises every change of this order
    if order.status not in CORRECTABLE:
        raise HTTPException(status.HTTP_409_CONFLICT, f"work order {order.work_order_number} is {order.status}; "
                                                      f"reports are corrected while it is {', '.join(CORRECTABLE)}")
    original = await uow.get(PerformanceReport, report_id)
    if original is None or original.work_order_id != order.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"work order {order.work_order_number} has no report {report_id}")
    if original.corrects_report_id is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"report {report_id} is itself a counter-entry; correct the "
                                                      f"original report {original.corrects_report_id}")
    taken_good, taken_scrap = (Decimal(v or 0) for v in (await uow.execute(
        select(func.sum(PerformanceReport.quantity_good), func.sum(PerformanceReport.quantity_scrap))
        .where(PerformanceReport.corrects_report_id == original.id))).one())
    left_good = Decimal(original.quantity_good) + taken_good  # corrections are negative
    left_scrap = Decimal(original.quantity_scrap) + taken_scrap
    good = left_good if data.quantity_good is None else data.quantity_good
    scrap = left_scrap if data.quantity_scrap is None else data.quantity_scrap
    if good > left_good or scrap > left_scrap:
        raise HTTPException(status.HTTP_409_CONFLICT, f"report {report_id} has {left_good} good and {left_scrap} "
                                                      f"scrap not corrected yet; {good} good and {scrap} scrap "
                                                      "cannot be taken back")
    if good == 0 and scrap == 0:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"report {report_id} has nothing left to correct")
    ops = await operations_of(uow, order)
    op = next(o for o in ops if o.id == original.operation_id)
    later = [o for o in ops if o.sequence > op.sequence]
    new_good = Decimal(op.quantity_good) - good
    if later and Decimal(later[0].quantity_good) + Decimal(later[0].quantity_scrap) > new_good:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"operation {later[0].sequence} ({later[0].code}) already reported "
                            f"{Decimal(later[0].quantity_good) + Decimal(later[0].quantity_scrap)} of the units "
                            f"operation {op.sequence} passed on; correct operation {later[0].sequence} first")
    op.quantity_good, op.quantity_scrap = new_good, Decimal(op.quantity_scrap) - scrap
    counter = PerformanceReport(id=uuid.uuid4(), work_order_id=order.id, operation_id=op.id, quantity_good=-good,
                                quantity_scrap=-scrap, corrects_report_id=original.id, reason=data.reason,
                                reported_by_id=uuid.UUID(who.user_id), reported_at=utcnow())
    uow.add(counter)
    if order.status == "Completed":
        order.quantity_good, order.quantity_scrap = totals(ops)
        order.quantity_produced = Decimal(ops[-1].quantity_good) + Decimal(ops[-1].quantity_scrap)
    await uow.flush()
    audit(uow, who, "report.corrected", "report", original.id, {
        "quantity_good": (left_good, left_good - good), "quantity_scrap": (left_scrap, left_scrap - scrap),
        "counter_entry_id": (None, counter.id)}, reason=data.reason)
    publish_report(uow, order, ops, op, counter)
    await uow.commit()
    return counter

