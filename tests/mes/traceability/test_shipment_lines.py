"""Traceability reads shipments and returns in the shape material publishes them: ``lines`` (a lot
by quantity, or one unit per line), not only ``lots``/``serials`` lists. Before, it read neither
from material's real events: no shipment reached the genealogy, and a return was dead-lettered."""
from __future__ import annotations

from decimal import Decimal

import orjson

from mes.material import events as material
from mes.traceability import events as traceability


def _line(lot: str, quantity: str, serial: str | None = None, **extra) -> dict:
    return dict(lot_id=lot, lot_number=f"N-{lot}", part_id="p", part_number="P-1", quantity=Decimal(quantity),
                serial_id=serial, **extra)


def test_a_shipment_of_material_is_read_as_lots_and_units():
    sent = material.ShipmentCreated(
        shipment_id="sh", shipment_number="SH-1", customer="Airbus", shipped_at="2026-01-01T00:00:00+00:00",
        lines=[material.ShipmentLineState(line_id=str(i), **line) for i, line in enumerate(
            [_line("a", "2"), _line("a", "3"), _line("b", "1", "u1"), _line("b", "1", "u2")])])
    read = traceability.ShipmentCreated.model_validate(orjson.loads(sent.to_json()))
    assert [(lot.lot_id, lot.quantity) for lot in read.shipped_lots()] == [("a", Decimal(5))]
    assert read.shipped_serials() == ["u1", "u2"]


def test_a_return_of_material_is_read_as_the_lots_it_came_back_as_and_its_units():
    sent = material.ReturnReceived(
        return_id="rt", return_number="RT-1", shipment_id="sh", shipment_number="SH-1", customer="Airbus",
        reason="leak", received_at="2026-01-02T00:00:00+00:00",
        lines=[material.ReturnLineState(shipment_line_id=str(i), **line) for i, line in enumerate(
            [_line("a-r1", "2", shipped_lot_id="a"), _line("b-r1", "1", "u1", shipped_lot_id="b")])])
    read = traceability.ReturnReceived.model_validate(orjson.loads(sent.to_json()))
    assert [(lot.lot_id, lot.returned_lot_id, lot.returned_lot_number, lot.quantity) for lot in read.returned_lots()] \
        == [("a", "a-r1", "N-a-r1", Decimal(2)), ("b", "b-r1", "N-b-r1", Decimal(1))]
    assert read.returned_serials() == ["u1"]
