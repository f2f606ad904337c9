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
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="in_process")  # in_process, completed, scrapped
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
