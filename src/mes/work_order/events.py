"""Events the work order service publishes, and its views of the events it consumes."""
from __future__ import annotations

from isles import Event, Payload


class WorkOrderCreated(Event, type="mes.work_order.work_order.created", key="work_order_id"):
    work_order_id: str
    work_order_number: str
    part_id: str
    quantity: int
    status: str


class WorkOrderStatusChanged(Event, type="mes.work_order.work_order.status_changed", key="work_order_id"):
    work_order_id: str
    work_order_number: str
    previous_status: str
    new_status: str


class WorkOrderCompleted(Event, type="mes.work_order.work_order.completed", key="work_order_id"):
    work_order_id: str
    work_order_number: str


PUBLISHES = [WorkOrderCreated, WorkOrderStatusChanged, WorkOrderCompleted]


class PartRetired(Payload):
    """This service's view of mes.material.part.deleted (its own model: it imports no other service)."""

    part_id: str
