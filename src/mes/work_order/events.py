"""Events the work order service publishes, and its views of the events it consumes.

Every work order event carries the order's whole current state (status included), so a consumer
such as material's read model of issuable orders can build its copy from any one of them.
"""
from __future__ import annotations

from decimal import Decimal

from isles import Event, Payload
from isles.api import Quantity, SignedQuantity


class _WorkOrderState(Event):
    work_order_id: str
    work_order_number: str
    part_id: str
    part_number: str | None = None
    site_id: str | None = None
    quantity: Quantity
    quantity_good: Quantity = Decimal(0)
    quantity_scrap: Quantity = Decimal(0)
    status: str
    priority: int = 500
    due_date: str | None = None
    #: the codes of the order's operations, in routing order (from release on; None before)
    operation_codes: list[str] | None = None


class WorkOrderCreated(_WorkOrderState, type="mes.work_order.work_order.created", key="work_order_id"):
    pass


class WorkOrderStatusChanged(_WorkOrderState, type="mes.work_order.work_order.status_changed", key="work_order_id"):
    previous_status: str
    new_status: str
    reason: str | None = None


class WorkOrderCompleted(_WorkOrderState, type="mes.work_order.work_order.completed", key="work_order_id"):
    """The last operation completed: what was made, when."""

    quantity_produced: Quantity
    actual_start: str | None = None
    actual_end: str


class ProductionReported(Event, type="mes.work_order.production.reported", key="work_order_id"):
    """Good and scrap reported at an operation. On the ``final_operation`` the good quantity is
    finished material (material receives it into the order's finished lot). A counter-entry has
    negative quantities and names the report it corrects."""

    report_id: str
    corrects_report_id: str | None = None
    work_order_id: str
    work_order_number: str
    part_id: str
    part_number: str | None = None
    order_quantity: Quantity
    operation_id: str
    operation_code: str
    sequence: int
    final_operation: bool
    quantity_good: SignedQuantity
    quantity_scrap: SignedQuantity
    scrap_reason: str | None = None
    reason: str | None = None
    reported_by: str | None = None
    reported_at: str
    #: the order's totals after this report
    order_quantity_good: Quantity
    order_quantity_scrap: Quantity


PUBLISHES: list[type[Event]] = [WorkOrderCreated, WorkOrderStatusChanged, WorkOrderCompleted, ProductionReported]


# -- this service's views of other services' events (it imports no other service) -----------------------
class PartRetired(Payload):
    """mes.material.part.deleted"""

    part_id: str


class LotConsumed(Payload):
    """mes.material.lot.consumed: material issued to one of our work orders."""

    consumption_id: str
    lot_id: str
    lot_number: str
    part_id: str
    part_number: str
    consumed_quantity: Quantity
    unit_of_measure: str
    work_order_id: str
    operation_code: str | None = None
    consumed_at: str


class ConsumptionReversed(Payload):
    """mes.material.lot.consumption_reversed: material given back from one of our work orders."""

    reversal_id: str
    consumption_id: str
    lot_id: str
    lot_number: str
    part_id: str
    part_number: str
    reversed_quantity: Quantity
    unit_of_measure: str
    work_order_id: str
    operation_code: str | None = None
    reason: str
    reversed_at: str
