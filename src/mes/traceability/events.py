"""This service's views of the events it consumes (it publishes none: it is a read model).

Every field but the ids is optional: the genealogy is built from whatever the producer sends, and
the producer may add fields freely (a tolerant reader). ``lot.produced``, ``shipment.created`` and
``return.received`` are subscribed to as optional: a System whose material does not publish them
yet still builds, and their handlers start working the day it does.
"""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from isles import Event, Payload


class PartState(Payload):
    """mes.material.part.created / updated"""

    part_id: str
    part_number: str | None = None
    part_name: str | None = None


class LotState(Payload):
    """The lot state every mes.material.lot.* event carries."""

    lot_id: str
    lot_number: str | None = None
    part_id: str | None = None
    part_number: str | None = None
    quantity: Decimal | None = None
    unit_of_measure: str | None = None
    status: str | None = None
    origin: str | None = None
    parent_lot_id: str | None = None
    supplier: str | None = None
    supplier_lot_number: str | None = None


class LotStatusChanged(LotState):
    previous_status: str | None = None
    reason: str | None = None


class LotSplit(LotState):
    """mes.material.lot.split: ``split_quantity`` of this lot moved to ``child_lot_id``."""

    child_lot_id: str
    child_lot_number: str | None = None
    split_quantity: Decimal | None = None


class MergedSource(Payload):
    lot_id: str
    lot_number: str | None = None
    quantity: Decimal | None = None


class LotMerged(LotState):
    """mes.material.lot.merged: this new lot was made from ``sources``."""

    sources: list[MergedSource] = []


class LotConsumed(LotState):
    """mes.material.lot.consumed: ``consumed_quantity`` went into ``work_order_id`` (into one unit
    when ``serial_id`` is given)."""

    consumption_id: str
    consumed_quantity: Decimal | None = None
    work_order_id: str
    work_order_number: str | None = None
    operation_code: str | None = None
    serial_id: str | None = None
    consumed_at: str | None = None


class ProducedParent(Payload):
    lot_id: str
    quantity: Decimal | None = None
    operation_code: str | None = None


class LotProduced(LotState):
    """mes.material.lot.produced: a work order's output, made from ``parents`` (when not given, from
    everything issued into the order)."""

    work_order_id: str | None = None
    work_order_number: str | None = None
    parents: list[ProducedParent] | None = None


class ShippedLot(Payload):
    lot_id: str
    quantity: Decimal | None = None


class ShippedSerial(Payload):
    serial_id: str


class ShipmentLine(Payload):
    """One line of material's shipment or return: a quantity of a lot, or one unit (``serial_id``).
    On a return, ``lot_id`` is the new lot the material came back as and ``shipped_lot_id`` the one
    that was shipped."""

    lot_id: str
    lot_number: str | None = None
    shipped_lot_id: str | None = None
    quantity: Decimal | None = None
    serial_id: str | None = None


def _added_up(lines: list[ShipmentLine]) -> dict[str, tuple[ShipmentLine, Decimal]]:
    """Per lot of ``lines`` (in order): its first line and the quantity of all its lines."""
    by_lot: dict[str, tuple[ShipmentLine, Decimal]] = {}
    for line in lines:
        first, total = by_lot.get(line.lot_id, (line, Decimal(0)))
        by_lot[line.lot_id] = (first, total + (line.quantity or Decimal(0)))
    return by_lot


class ShipmentCreated(Payload):
    """mes.material.shipment.created: lots and serials sent to a customer (as ``lines``, the shape
    material publishes, or as ``lots`` and ``serials``)."""

    shipment_id: str
    shipment_number: str | None = None
    customer: str | None = None
    lots: list[ShippedLot] = []
    #: unit ids, or objects with a ``serialId``
    serials: list[str | ShippedSerial] = []
    lines: list[ShipmentLine] = []
    shipped_at: str | None = None

    def shipped_lots(self) -> list[ShippedLot]:
        """The lots shipped by quantity (the units of a serial line are in :meth:`shipped_serials`)."""
        loose = _added_up([line for line in self.lines if line.serial_id is None])
        return self.lots + [ShippedLot(lot_id=lot_id, quantity=total) for lot_id, (_, total) in loose.items()]

    def shipped_serials(self) -> list[str]:
        return serial_ids(self.serials) + [line.serial_id for line in self.lines if line.serial_id]


class ReturnedLot(Payload):
    lot_id: str
    quantity: Decimal | None = None
    #: the lot the returned material was received as, when material made a new one
    returned_lot_id: str | None = None
    returned_lot_number: str | None = None


class ReturnReceived(Payload):
    """mes.material.return.received: lots or serials of a shipment came back."""

    return_id: str | None = None
    shipment_id: str | None = None
    customer: str | None = None
    reason: str | None = None
    lots: list[ReturnedLot] = []
    serials: list[str | ShippedSerial] = []
    lines: list[ShipmentLine] = []

    def returned_lots(self) -> list[ReturnedLot]:
        """Lots that came back: a lot line as the lot it came back as; the units of a serial
        line come back in a lot too, and are listed by :meth:`returned_serials` besides."""
        return self.lots + [ReturnedLot(lot_id=line.shipped_lot_id or line.lot_id, quantity=total,
                                        returned_lot_id=line.lot_id, returned_lot_number=line.lot_number)
                            for line, total in _added_up(self.lines).values()]

    def returned_serials(self) -> list[str]:
        return serial_ids(self.serials) + [line.serial_id for line in self.lines if line.serial_id]


class SerialState(Payload):
    """mes.material.serial.created / updated"""

    serial_id: str
    part_id: str | None = None
    part_number: str | None = None
    process_serial: str | None = None
    product_serial: str | None = None
    status: str | None = None
    lot_id: str | None = None
    work_order_id: str | None = None


class WorkOrderState(Payload):
    """mes.work_order.work_order.created / status_changed / completed"""

    work_order_id: str
    work_order_number: str | None = None
    part_id: str | None = None
    part_number: str | None = None
    status: str | None = None
    previous_status: str | None = None
    reason: str | None = None
    quantity: Decimal | None = None
    quantity_produced: Decimal | None = None


def serial_ids(items: list[Any]) -> list[str]:
    """The unit ids of a ``serials`` list that holds ids or ``{"serialId": ...}`` objects."""
    return [item if isinstance(item, str) else item.serial_id for item in items]


PUBLISHES: list[type[Event]] = []
