"""Events the material service publishes (part.* names and payloads from seed 001), and its views
of the work order events it consumes.

Lot and serial events carry the entity's whole current state, so a consumer (traceability,
work_order) can build its copy from any one of them. The genealogy a traceability service needs
is in ``lot.split`` / ``lot.merged`` (which lots came from which, with quantities) and
``lot.consumed`` (which lot went into which work order), ``lot.produced`` (which consumed lots
went into a finished lot: its ``parents``), ``lot.consumption_reversed`` (an edge that shrank),
and ``shipment.created`` / ``return.received`` (which customer got, and sent back, what).
"""
from __future__ import annotations

from typing import Any

from isles import Event, Payload
from isles.api import Quantity, SignedQuantity


class PartCreated(Event, type="mes.material.part.created", key="part_id"):
    part_id: str
    part_number: str
    part_name: str
    revision: str
    unit_of_measure: str
    tracking: str = "lot"


class PartUpdated(Event, type="mes.material.part.updated", key="part_id"):
    part_id: str
    part_number: str
    part_name: str
    revision: str
    unit_of_measure: str
    tracking: str = "lot"
    changes: dict[str, Any] = {}
    previous_values: dict[str, Any] = {}


class PartDeleted(Event, type="mes.material.part.deleted", key="part_id"):
    part_id: str
    part_number: str


class _LotState(Event):
    lot_id: str
    lot_number: str
    part_id: str
    part_number: str
    quantity: Quantity
    unit_of_measure: str
    status: str
    location_id: str | None = None
    origin: str
    parent_lot_id: str | None = None
    supplier: str | None = None
    supplier_lot_number: str | None = None
    expires_at: str | None = None


class BomLine(Payload):
    line_number: int
    component_part_id: str
    component_part_number: str
    quantity_per: Quantity
    unit_of_measure: str
    operation_code: str | None = None


class BomReleased(Event, type="mes.material.bom.released", key="part_id"):
    """``bom_version`` of the part's BOM is now in force: what one unit of the part needs.
    Its entity version is the release time in microseconds, so a later release always wins."""

    part_id: str
    part_number: str
    bom_version: int
    items: list[BomLine]


class LotCreated(_LotState, type="mes.material.lot.created", key="lot_id"):
    """A lot was received, or made by a split or a merge (``origin``)."""


class LotStatusChanged(_LotState, type="mes.material.lot.status_changed", key="lot_id"):
    previous_status: str
    reason: str | None = None


class LotSplit(_LotState, type="mes.material.lot.split", key="lot_id"):
    """``quantity`` of this (parent) lot moved to the new lot ``child_lot_id``."""

    child_lot_id: str
    child_lot_number: str
    split_quantity: Quantity


class MergedSource(Payload):
    lot_id: str
    lot_number: str
    quantity: Quantity
    supplier: str | None = None
    supplier_lot_number: str | None = None
    certificate_number: str | None = None


class LotMerged(_LotState, type="mes.material.lot.merged", key="lot_id"):
    """This (new) lot was made from ``sources``, each emptied into it."""

    sources: list[MergedSource]


class LotConsumed(_LotState, type="mes.material.lot.consumed", key="lot_id"):
    """``consumed_quantity`` of the lot went into work order ``work_order_id``; ``quantity`` is what is left."""

    consumption_id: str
    consumed_quantity: Quantity
    work_order_id: str
    work_order_number: str | None = None
    operation_code: str | None = None
    sublot_id: str | None = None
    serial_id: str | None = None
    consumed_by: str | None = None
    consumed_at: str
    #: the order's finished lot, when it already exists: this issue is an edge parent -> child_lot_id
    child_lot_id: str | None = None


class SerialCreated(Event, type="mes.material.serial.created", key="serial_id"):
    serial_id: str
    part_id: str
    part_number: str
    process_serial: str
    product_serial: str | None = None
    status: str
    lot_id: str | None = None
    work_order_id: str | None = None


class SerialUpdated(SerialCreated, type="mes.material.serial.updated", key="serial_id"):
    """A product serial was assigned, or the unit completed or was scrapped."""

    changes: dict[str, Any] = {}
    previous_values: dict[str, Any] = {}


class LotConsumptionReversed(_LotState, type="mes.material.lot.consumption_reversed", key="lot_id"):
    """``reversed_quantity`` of consumption ``consumption_id`` came back to this lot (``quantity`` is
    now on hand); the genealogy edge of that consumption shrinks by as much."""

    reversal_id: str
    consumption_id: str
    reversed_quantity: Quantity
    work_order_id: str
    work_order_number: str | None = None
    operation_code: str | None = None
    child_lot_id: str | None = None
    reason: str
    reversed_by: str | None = None
    reversed_at: str


class GenealogyParent(Payload):
    """An edge into a produced lot: ``quantity`` of ``lot_id`` (issued by ``consumption_id``)."""

    lot_id: str
    lot_number: str
    part_id: str
    quantity: Quantity
    consumption_id: str | None = None
    operation_code: str | None = None
    serial_id: str | None = None


class ProducedSerial(Payload):
    serial_id: str
    process_serial: str
    product_serial: str | None = None
    status: str


class LotProduced(_LotState, type="mes.material.lot.produced", key="lot_id"):
    """A production report of work order ``work_order_id`` received ``produced_quantity`` into this
    (finished) lot - negative for a counter-entry. ``parents`` are the genealogy edges this event
    adds (the order's consumptions not linked before); ``serials`` the units it completed (or, for a
    counter-entry, put back in process)."""

    report_id: str
    corrects_report_id: str | None = None
    work_order_id: str
    work_order_number: str
    operation_code: str | None = None
    produced_quantity: SignedQuantity
    parents: list[GenealogyParent] = []
    serials: list[ProducedSerial] = []
    reason: str | None = None


class LotShipped(_LotState, type="mes.material.lot.shipped", key="lot_id"):
    """``shipped_quantity`` of this lot left for ``customer``; ``quantity`` is what is left."""

    shipment_id: str
    shipment_number: str
    customer: str
    shipped_quantity: Quantity
    serial_ids: list[str] = []


class ShipmentLineState(Payload):
    line_id: str
    lot_id: str
    lot_number: str
    part_id: str
    part_number: str
    quantity: Quantity
    serial_id: str | None = None
    serial_number: str | None = None


class ShipmentCreated(Event, type="mes.material.shipment.created", key="shipment_id"):
    shipment_id: str
    shipment_number: str
    customer: str
    customer_order: str | None = None
    shipped_by: str | None = None
    shipped_at: str
    lines: list[ShipmentLineState]


class ReturnLineState(Payload):
    shipment_line_id: str
    shipped_lot_id: str
    lot_id: str  # the new, quarantined lot the returned material is in
    lot_number: str
    part_id: str
    part_number: str
    quantity: Quantity
    serial_id: str | None = None


class ReturnReceived(Event, type="mes.material.return.received", key="return_id"):
    return_id: str
    return_number: str
    shipment_id: str
    shipment_number: str
    customer: str
    reason: str
    received_by: str | None = None
    received_at: str
    lines: list[ReturnLineState]


PUBLISHES: list[type[Event]] = [PartCreated, PartUpdated, PartDeleted, BomReleased, LotCreated, LotStatusChanged,
                                LotSplit, LotMerged, LotConsumed, SerialCreated, SerialUpdated, LotConsumptionReversed,
                                LotProduced, LotShipped, ShipmentCreated, ReturnReceived]


# -- this service's views of other services' events (it imports no other service) -----------------------
class ProductionReported(Payload):
    """mes.work_order.production.reported: good (and scrap) reported at an operation of an order."""

    report_id: str
    corrects_report_id: str | None = None
    work_order_id: str
    work_order_number: str
    part_id: str
    order_quantity: Quantity
    operation_code: str
    final_operation: bool
    quantity_good: SignedQuantity
    reason: str | None = None
    reported_by: str | None = None
    reported_at: str


class WorkOrderFinished(Payload):
    """mes.work_order.work_order.completed"""

    work_order_id: str
    work_order_number: str
    quantity_good: Quantity

