"""The quantity balance of each operation: in = good + scrap + still in process.

An operation is given the order quantity (the first) or what the previous operation passed as
good (the others). Whatever it has not reported as good or scrap is still in process, so no unit
can vanish between two operations: an operation completes only when nothing is left in process.
Yield is good / planned, the planned quantity being the order's.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from mes.work_order.models import WorkOrder, WorkOrderOperation


def shown(value: Decimal | int | float) -> str:
    """A quantity as a person writes it in a message: 8, 2.5 (no trailing zeros)."""
    text = format(Decimal(value).normalize(), "f")
    return text


def quantity_in(order: WorkOrder, ops: list[WorkOrderOperation], op: WorkOrderOperation) -> Decimal:
    """What ``op`` was given: the order quantity, or the previous operation's good quantity."""
    earlier = [o for o in ops if o.sequence < op.sequence]
    return Decimal(earlier[-1].quantity_good) if earlier else Decimal(order.quantity)


def in_process(order: WorkOrder, ops: list[WorkOrderOperation], op: WorkOrderOperation) -> Decimal:
    return quantity_in(order, ops, op) - Decimal(op.quantity_good) - Decimal(op.quantity_scrap)


def yield_percent(order: WorkOrder, good: Decimal) -> float | None:
    """good / planned (the order quantity), in percent."""
    planned = Decimal(order.quantity)
    return round(float(Decimal(good) / planned) * 100, 2) if planned else None


def balance(order: WorkOrder, ops: list[WorkOrderOperation], op: WorkOrderOperation) -> dict[str, Any]:
    """The balance fields of the operation's API output."""
    given = quantity_in(order, ops, op)
    return {"quantity_in": given,
            "quantity_in_process": given - Decimal(op.quantity_good) - Decimal(op.quantity_scrap),
            "yield_percent": yield_percent(order, Decimal(op.quantity_good))}
