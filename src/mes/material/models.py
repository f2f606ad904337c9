"""The material service's own tables: parts, BOMs, locations, lots, sublots, serials, consumptions.

Quantities are ``Numeric(18, 6)`` (Python ``Decimal``): lot arithmetic must not drift the way
binary floats do after a few splits. Cross-service references (a work order, a site, a user)
are plain id columns; foreign keys only join this service's own tables.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, Numeric, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import Entity, ReadModel
from isles.sequences import Sequence

Qty = Numeric(18, 6)


class Base(DeclarativeBase):
    pass


#: generated lot numbers (received and merged lots) and process serials: sequences, so parallel
#: requests never share one (split and sublot numbers count under their parent lot's row lock)
LOT_NUMBER = Sequence("lot_number", Base.metadata)
PROCESS_SERIAL = Sequence("process_serial", Base.metadata)
#: shipment and customer return numbers (SH-000001, RT-000001)
SHIPMENT_NUMBER = Sequence("shipment_number", Base.metadata)
RETURN_NUMBER = Sequence("return_number", Base.metadata)


class Part(Entity, Base):
    __tablename__ = "parts"
    __table_args__ = (Index("idx_parts_part_number", "part_number", unique=True),)

    part_number: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    revision: Mapped[str] = mapped_column(String(16), nullable=False, default="A")
    unit_of_measure: Mapped[str] = mapped_column(String(16), nullable=False, default="EA")
    #: "lot" (quantities in lots), "serial" (each unit has a serial number) or "none" (consumables)
    tracking: Mapped[str] = mapped_column(String(16), nullable=False, default="lot", server_default="lot")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Bom(Entity, Base):
    """One version of a part's bill of materials. Versions are immutable once released; releasing
    a new version makes the previous released one obsolete, so a part has at most one in force."""

    __tablename__ = "boms"
    __table_args__ = (Index("idx_boms_part_id_bom_version", "part_id", "bom_version", unique=True),)

    part_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("parts.id"), nullable=False)
    bom_version: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")  # draft, released, obsolete
    notes: Mapped[str | None] = mapped_column(Text)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_by: Mapped[str | None] = mapped_column(String(36))  # auth user id


class BomItem(Entity, Base):
    __tablename__ = "bom_items"
    __table_args__ = (
        Index("idx_bom_items_bom_id_line_number", "bom_id", "line_number", unique=True),
        Index("idx_bom_items_component_part_id", "component_part_id"),
    )

    bom_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("boms.id"), nullable=False)
    line_number: Mapped[int] = mapped_column(Integer, nullable=False)
    component_part_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("parts.id"), nullable=False)
    quantity_per: Mapped[Decimal] = mapped_column(Qty, nullable=False)  # per one unit of the parent
    unit_of_measure: Mapped[str] = mapped_column(String(16), nullable=False)
    #: operation code of the routing step that consumes it (e.g. OP10), if known
    operation_code: Mapped[str | None] = mapped_column(String(64))


class Location(Entity, Base):
    __tablename__ = "locations"
    __table_args__ = (
        Index("idx_locations_code", "code", unique=True),
        Index("idx_locations_site_id", "site_id"),
    )

    code: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False, default="warehouse")
    site_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # resource's site: an id, not a foreign key
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class MaterialLot(Entity, Base):
    """A quantity of one part with one history. ``status``: received, quarantine, released,
    consumed, expired, rejected (see lots.TRANSITIONS)."""

    __tablename__ = "material_lots"
    __table_args__ = (
        Index("idx_material_lots_lot_number", "lot_number", unique=True),
        Index("idx_material_lots_part_id_status", "part_id", "status"),
        Index("idx_material_lots_location_id", "location_id"),
        Index("idx_material_lots_parent_lot_id", "parent_lot_id"),
    )

    lot_number: Mapped[str] = mapped_column(String(64), nullable=False)
    part_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("parts.id"), nullable=False)
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
    initial_quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
    unit_of_measure: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="received")
    status_reason: Mapped[str | None] = mapped_column(String(500))
    location_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("locations.id"))
    #: how it came to be: received, split, merge (produced lots arrive with a later issue)
    origin: Mapped[str] = mapped_column(String(16), nullable=False, default="received")
    parent_lot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("material_lots.id"))
    supplier: Mapped[str | None] = mapped_column(String(255))
    supplier_lot_number: Mapped[str | None] = mapped_column(String(64))
    certificate_number: Mapped[str | None] = mapped_column(String(64))  # certificate of conformance
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LotMergeSource(Entity, Base):
    """One source of a merged lot: which lot, how much of it, and the supplier data it carried
    (a merge of several suppliers' lots keeps each one's supplier and certificate here)."""

    __tablename__ = "lot_merge_sources"
    __table_args__ = (
        Index("idx_lot_merge_sources_merged_lot_id", "merged_lot_id"),
        Index("idx_lot_merge_sources_source_lot_id", "source_lot_id"),
    )

    merged_lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("material_lots.id"), nullable=False)
    source_lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("material_lots.id"), nullable=False)
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
    supplier: Mapped[str | None] = mapped_column(String(255))
    supplier_lot_number: Mapped[str | None] = mapped_column(String(64))
    certificate_number: Mapped[str | None] = mapped_column(String(64))


class MaterialSublot(Entity, Base):
    """ISA-95 sublot: a separately stored portion of a lot (a box, a bin) carved out of its quantity."""

    __tablename__ = "material_sublots"
    __table_args__ = (
        Index("idx_material_sublots_sublot_number", "sublot_number", unique=True),
        Index("idx_material_sublots_lot_id", "lot_id"),
        Index("idx_material_sublots_location_id", "location_id"),
    )

    sublot_number: Mapped[str] = mapped_column(String(64), nullable=False)
    lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("material_lots.id"), nullable=False)
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
    location_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("locations.id"))


class SerializedPart(Entity, Base):
    """One unit with a serial number. A unit gets its *process* serial when it enters production
    and its *product* serial (the one engraved and shipped) when it is finished."""

    __tablename__ = "serialized_parts"
    __table_args__ = (
        Index("idx_serialized_parts_part_id_process_serial", "part_id", "process_serial", unique=True),
        Index("idx_serialized_parts_part_id_product_serial", "part_id", "product_serial", unique=True),
        Index("idx_serialized_parts_lot_id", "lot_id"),
        Index("idx_serialized_parts_work_order_id", "work_order_id"),
    )

    part_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("parts.id"), nullable=False)
    process_serial: Mapped[str] = mapped_column(String(64), nullable=False)
    product_serial: Mapped[str | None] = mapped_column(String(64))
    # in_process, completed, scrapped, shipped, returned
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="in_process")
    lot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("material_lots.id"))
    work_order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # work_order's: an id, not a foreign key


class Consumption(Entity, Base):
    """Material issued from a lot (or a sublot of it) into a work order."""

    __tablename__ = "consumptions"
    __table_args__ = (
        Index("idx_consumptions_lot_id", "lot_id"),
        Index("idx_consumptions_sublot_id", "sublot_id"),
        Index("idx_consumptions_work_order_id", "work_order_id"),
        Index("idx_consumptions_serial_id", "serial_id"),
    )

    lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("material_lots.id"), nullable=False)
    sublot_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("material_sublots.id"))
    work_order_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)  # work_order's: an id, not a foreign key
    operation_code: Mapped[str | None] = mapped_column(String(64))
    #: the serialized unit it went into, when the work order builds serialized units
    serial_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("serialized_parts.id"))
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
    unit_of_measure: Mapped[str] = mapped_column(String(16), nullable=False)
    consumed_by: Mapped[str | None] = mapped_column(String(36))  # auth user id
    consumed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    #: why more than the BOM requirement was issued (required for an over-issue)
    reason: Mapped[str | None] = mapped_column(String(500))


class ReplicatedWorkOrder(ReadModel, Base):
    """material's copy of the work orders it may issue material to, fed by work_order's events."""

    __tablename__ = "replicated_work_orders"
    __table_args__ = (Index("idx_replicated_work_orders_part_id", "part_id"),)

    work_order_number: Mapped[str | None] = mapped_column(String(64))
    part_id: Mapped[str | None] = mapped_column(String(36))
    status: Mapped[str | None] = mapped_column(String(16))
    #: the order quantity (the BOM requirement is quantityPer x this)
    quantity: Mapped[Decimal | None] = mapped_column(Qty)
    #: the codes of the order's operations once it is released (None before, or not yet known)
    operation_codes: Mapped[Any] = mapped_column(JSON, nullable=True)


# -- production output, genealogy, shipments, returns, corrections (see production.py, shipments.py) -------
class ProductionReceipt(Entity, Base):
    """Finished material received from one production report of a work order (``report_id`` is
    work_order's report: applied once, whatever the transport redelivers). A counter-entry arrives
    as a receipt with a negative quantity that names the report it corrects."""

    __tablename__ = "production_receipts"
    __table_args__ = (
        Index("idx_production_receipts_report_id", "report_id", unique=True),
        Index("idx_production_receipts_work_order_id", "work_order_id"),
        Index("idx_production_receipts_lot_id", "lot_id"),
        Index("idx_production_receipts_corrects_report_id", "corrects_report_id"),
    )

    report_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)  # work_order's: an id, not a foreign key
    corrects_report_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    work_order_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    work_order_number: Mapped[str] = mapped_column(String(64), nullable=False)
    operation_code: Mapped[str | None] = mapped_column(String(64))
    lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("material_lots.id"), nullable=False)
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)  # negative for a counter-entry
    reason: Mapped[str | None] = mapped_column(String(500))
    reported_by: Mapped[str | None] = mapped_column(String(36))
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class LotGenealogy(Entity, Base):
    """One edge of the lot graph: ``quantity`` of ``parent_lot_id`` went into ``child_lot_id``
    (and into the unit ``child_serial_id`` when the issue named one). Rows are never edited: a
    reversed consumption adds a row with the negative quantity, so the net of an edge is the sum."""

    __tablename__ = "lot_genealogy_edges"
    __table_args__ = (
        Index("idx_lot_genealogy_edges_parent_lot_id", "parent_lot_id"),
        Index("idx_lot_genealogy_edges_child_lot_id", "child_lot_id"),
        Index("idx_lot_genealogy_edges_child_serial_id", "child_serial_id"),
        Index("idx_lot_genealogy_edges_consumption_id", "consumption_id"),
        Index("idx_lot_genealogy_edges_work_order_id", "work_order_id"),
    )

    parent_lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("material_lots.id"), nullable=False)
    child_lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("material_lots.id"), nullable=False)
    child_serial_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("serialized_parts.id"))
    #: "consumed" (issued into the work order that made the child) or "returned" (a customer return)
    relation: Mapped[str] = mapped_column(String(16), nullable=False, default="consumed")
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
    work_order_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    operation_code: Mapped[str | None] = mapped_column(String(64))
    consumption_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("consumptions.id"))


class ConsumptionReversal(Entity, Base):
    """Material given back from a work order to the lot it was issued from (a wrong lot scanned,
    an over-issue): the consumption stays on record, this row says how much came back and why."""

    __tablename__ = "consumption_reversals"
    __table_args__ = (Index("idx_consumption_reversals_consumption_id", "consumption_id"),)

    consumption_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("consumptions.id"), nullable=False)
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    reversed_by: Mapped[str | None] = mapped_column(String(36))  # auth user id
    reversed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class Shipment(Entity, Base):
    """Finished material sent to a customer; the lines say which lots and serials, so a recall
    reaches every customer that got a suspect unit."""

    __tablename__ = "shipments"
    __table_args__ = (
        Index("idx_shipments_shipment_number", "shipment_number", unique=True),
        Index("idx_shipments_customer", "customer"),
    )

    shipment_number: Mapped[str] = mapped_column(String(64), nullable=False)
    customer: Mapped[str] = mapped_column(String(255), nullable=False)
    customer_order: Mapped[str | None] = mapped_column(String(64))
    shipped_by: Mapped[str | None] = mapped_column(String(36))  # auth user id
    shipped_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ShipmentLine(Entity, Base):
    __tablename__ = "shipment_lines"
    __table_args__ = (
        Index("idx_shipment_lines_shipment_id", "shipment_id"),
        Index("idx_shipment_lines_lot_id", "lot_id"),
        Index("idx_shipment_lines_serial_id", "serial_id"),
    )

    shipment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("shipments.id"), nullable=False)
    lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("material_lots.id"), nullable=False)
    serial_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("serialized_parts.id"))
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)


class CustomerReturn(Entity, Base):
    """Material a customer sent back against a shipment; it arrives as a new lot in quarantine."""

    __tablename__ = "customer_returns"
    __table_args__ = (
        Index("idx_customer_returns_return_number", "return_number", unique=True),
        Index("idx_customer_returns_shipment_id", "shipment_id"),
    )

    return_number: Mapped[str] = mapped_column(String(64), nullable=False)
    shipment_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("shipments.id"), nullable=False)
    customer: Mapped[str] = mapped_column(String(255), nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    received_by: Mapped[str | None] = mapped_column(String(36))  # auth user id
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class ReturnLine(Entity, Base):
    __tablename__ = "return_lines"
    __table_args__ = (
        Index("idx_return_lines_return_id", "return_id"),
        Index("idx_return_lines_shipment_line_id", "shipment_line_id"),
        Index("idx_return_lines_lot_id", "lot_id"),
        Index("idx_return_lines_serial_id", "serial_id"),
    )

    return_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("customer_returns.id"), nullable=False)
    shipment_line_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("shipment_lines.id"), nullable=False)
    #: the lot the returned material now sits in (a new quarantined lot whose parent is the shipped one)
    lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("material_lots.id"), nullable=False)
    serial_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("serialized_parts.id"))
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
