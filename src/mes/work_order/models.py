"""The work order service's own tables, and its copies of other services' data.

Cross-service references (part, site, user, work center, routing) are plain id columns. The
display fields next to them (``part_number``, ``site_name``, ``created_by_name``) are replicated
from the owners' events and carry the owner's version (``*_version``), so they never go backwards.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, Numeric, String, Text, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import Entity, ReadModel
from isles.sequences import Sequence

Qty = Numeric(18, 6)
Minutes = Numeric(12, 3)


class Base(DeclarativeBase):
    pass


#: generated work order numbers (WO-000001, ...): a sequence, so parallel creates never share one
WORK_ORDER_NUMBER = Sequence("work_order_number", Base.metadata)


class ProductionSchedule(Entity, Base):
    """A published plan: which work orders run when (ISA-95 ProductionSchedule)."""

    __tablename__ = "production_schedules"
    __table_args__ = (
        Index("idx_production_schedules_schedule_number", "schedule_number", unique=True),
        Index("idx_production_schedules_site_id", "site_id"),
    )

    schedule_number: Mapped[str] = mapped_column(String(64), nullable=False)
    site_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="Forecast")  # Forecast, Released
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkOrder(Entity, Base):
    """A production request: make ``quantity`` of a part. ``status`` is the B2MML request state."""

    __tablename__ = "work_orders"
    __table_args__ = (
        Index("idx_work_orders_work_order_number", "work_order_number", unique=True),
        Index("idx_work_orders_part_id", "part_id"),
        Index("idx_work_orders_site_id", "site_id"),
        Index("idx_work_orders_created_by_id", "created_by_id"),
        Index("idx_work_orders_routing_id", "routing_id"),
        Index("idx_work_orders_schedule_id", "schedule_id"),
        Index("idx_work_orders_status_due_date", "status", "due_date"),
    )

    work_order_number: Mapped[str] = mapped_column(String(64), nullable=False)
    # Cross-service reference: an id, never a foreign key, with display fields replicated from events.
    part_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    part_number: Mapped[str | None] = mapped_column(String(64))
    part_name: Mapped[str | None] = mapped_column(String(255))
    part_version: Mapped[int | None] = mapped_column(BigInteger)
    site_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    site_name: Mapped[str | None] = mapped_column(String(255))
    site_version: Mapped[int | None] = mapped_column(BigInteger)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_by_name: Mapped[str | None] = mapped_column(String(255))
    created_by_active: Mapped[bool | None] = mapped_column(Boolean)
    created_by_version: Mapped[int | None] = mapped_column(BigInteger)
    routing_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    schedule_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("production_schedules.id"))
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
    quantity_produced: Mapped[Decimal] = mapped_column(Qty, nullable=False, default=0)
    quantity_good: Mapped[Decimal] = mapped_column(Qty, nullable=False, default=0)
    quantity_scrap: Mapped[Decimal] = mapped_column(Qty, nullable=False, default=0)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="Forecast")
    #: the state a Held order returns to
    held_from: Mapped[str | None] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(500))
    priority: Mapped[int] = mapped_column(Integer, nullable=False, default=500)  # 1 = most urgent
    #: operation N+1 may start once N has started (it still cannot complete before N)
    allow_overlap: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    due_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scheduled_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    scheduled_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    actual_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    actual_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkOrderOperation(Entity, Base):
    """One step of a work order, copied from the routing when the order is released."""

    __tablename__ = "work_order_operations"
    __table_args__ = (
        Index("idx_work_order_operations_work_order_id_sequence", "work_order_id", "sequence", unique=True),
        Index("idx_work_order_operations_work_center_id_status", "work_center_id", "status"),
        Index("idx_work_order_operations_instruction_id", "instruction_id"),
        Index("idx_work_order_operations_operator_id", "operator_id"),
    )

    work_order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("work_orders.id"), nullable=False)
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    work_center_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Pending, Running, Paused, Completed
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="Pending")
    planned_setup_minutes: Mapped[Decimal] = mapped_column(Minutes, nullable=False, default=0)
    planned_run_minutes: Mapped[Decimal] = mapped_column(Minutes, nullable=False, default=0)
    #: the work instruction (and its version) in force when the order was released
    instruction_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("work_instructions.id"))
    instruction_revision: Mapped[int | None] = mapped_column(Integer)
    actual_start: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    actual_end: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: time spent Running (pauses excluded), closed at each pause and at completion
    actual_minutes: Mapped[Decimal] = mapped_column(Minutes, nullable=False, default=0)
    running_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    quantity_good: Mapped[Decimal] = mapped_column(Qty, nullable=False, default=0)
    quantity_scrap: Mapped[Decimal] = mapped_column(Qty, nullable=False, default=0)
    operator_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # auth user: an id, not a foreign key


class Dispatch(Entity, Base):
    """A work order sent to the floor (Released -> Ready), with who sent it where."""

    __tablename__ = "dispatches"
    __table_args__ = (
        Index("idx_dispatches_work_order_id", "work_order_id"),
        Index("idx_dispatches_work_center_id", "work_center_id"),
        Index("idx_dispatches_dispatched_by_id", "dispatched_by_id"),
    )

    work_order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("work_orders.id"), nullable=False)
    work_center_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    dispatched_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    dispatched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    note: Mapped[str | None] = mapped_column(String(500))


class PerformanceReport(Entity, Base):
    """Quantities and time reported against an operation (ISA-95 production performance).

    Reports are never edited: a mistake is corrected by a counter-entry, a report with negative
    quantities that names the report it corrects (``corrects_report_id``) and says why (output.py)."""

    __tablename__ = "performance_reports"
    __table_args__ = (
        Index("idx_performance_reports_work_order_id", "work_order_id"),
        Index("idx_performance_reports_corrects_report_id", "corrects_report_id"),
        Index("idx_performance_reports_operation_id", "operation_id"),
        Index("idx_performance_reports_reported_by_id", "reported_by_id"),
    )

    work_order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("work_orders.id"), nullable=False)
    operation_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("work_order_operations.id"), nullable=False)
    quantity_good: Mapped[Decimal] = mapped_column(Qty, nullable=False, default=0)
    quantity_scrap: Mapped[Decimal] = mapped_column(Qty, nullable=False, default=0)
    scrap_reason: Mapped[str | None] = mapped_column(String(500))
    #: the report a counter-entry corrects (same table; no foreign key, so the column adds in place on SQLite)
    corrects_report_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    #: why a counter-entry was made
    reason: Mapped[str | None] = mapped_column(String(500))
    reported_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class MaterialActual(Entity, Base):
    """Material issued to the order, as material reported it (``mes.material.lot.consumed``).

    A reversal (``mes.material.lot.consumption_reversed``) is a row of its own with the negative
    quantity: ``consumption_id`` is then the reversal's id and ``reverses_consumption_id`` the issue
    it takes back, so sums over ``quantity`` are the net issued."""

    __tablename__ = "material_actuals"
    __table_args__ = (
        Index("idx_material_actuals_consumption_id", "consumption_id", unique=True),
        Index("idx_material_actuals_work_order_id", "work_order_id"),
        Index("idx_material_actuals_lot_id", "lot_id"),
        Index("idx_material_actuals_part_id", "part_id"),
        Index("idx_material_actuals_reverses_consumption_id", "reverses_consumption_id"),
    )

    consumption_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    work_order_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("work_orders.id"), nullable=False)
    lot_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    lot_number: Mapped[str] = mapped_column(String(64), nullable=False)
    part_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    part_number: Mapped[str] = mapped_column(String(64), nullable=False)
    quantity: Mapped[Decimal] = mapped_column(Qty, nullable=False)
    unit_of_measure: Mapped[str] = mapped_column(String(16), nullable=False)
    operation_code: Mapped[str | None] = mapped_column(String(64))
    consumed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    reverses_consumption_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    reason: Mapped[str | None] = mapped_column(String(500))


class WorkInstruction(Entity, Base):
    """One version of the instruction for an operation of a part. Released versions are
    immutable; releasing a new one supersedes the previous, and orders keep the version they got."""

    __tablename__ = "work_instructions"
    __table_args__ = (
        Index("idx_work_instructions_part_id_operation_code_revision", "part_id", "operation_code",
              "revision", unique=True),
        Index("idx_work_instructions_approved_by_id", "approved_by_id"),
    )

    part_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    operation_code: Mapped[str] = mapped_column(String(64), nullable=False)
    revision: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(String(255), nullable=False)
    body: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="draft")  # draft, released, superseded
    approved_by_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    released_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# -- read models of other services' data (fed by their events) -----------------------------------------
class ReplicatedPart(ReadModel, Base):
    """work_order's read model of the material service's parts, fed by part events."""

    __tablename__ = "replicated_parts"

    part_number: Mapped[str | None] = mapped_column(String(64))
    part_name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    #: "lot", "serial" or "none" (None until the part's next event or a resync): serial parts are
    #: ordered in whole units
    tracking: Mapped[str | None] = mapped_column(String(16))


class ReplicatedBom(ReadModel, Base):
    """The BOM in force of each part (``id`` is the part's id), fed by mes.material.bom.released:
    what the variance report sets the issued material against."""

    __tablename__ = "replicated_boms"

    bom_version: Mapped[int | None] = mapped_column(Integer)
    #: the lines: componentPartId, componentPartNumber, quantityPer, unitOfMeasure, operationCode
    items: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)


class ReplicatedWorkCenter(ReadModel, Base):
    __tablename__ = "replicated_work_centers"
    __table_args__ = (Index("idx_replicated_work_centers_site_id", "site_id"),)

    code: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    site_id: Mapped[str | None] = mapped_column(String(36))
    is_active: Mapped[bool | None] = mapped_column(Boolean)


class ReplicatedSite(ReadModel, Base):
    __tablename__ = "replicated_sites"

    code: Mapped[str | None] = mapped_column(String(64))
    site_name: Mapped[str | None] = mapped_column(String(255))


class ReplicatedUser(ReadModel, Base):
    __tablename__ = "replicated_users"

    display_name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool | None] = mapped_column(Boolean)


class ReplicatedRouting(ReadModel, Base):
    """A released routing with its operations (JSON: a read model, read whole, never queried inside)."""

    __tablename__ = "replicated_routings"
    __table_args__ = (
        Index("idx_replicated_routings_part_id_status", "part_id", "status"),
        Index("idx_replicated_routings_product_id", "product_id"),
        Index("idx_replicated_routings_site_id", "site_id"),
    )

    product_id: Mapped[str | None] = mapped_column(String(36))
    part_id: Mapped[str | None] = mapped_column(String(36))
    site_id: Mapped[str | None] = mapped_column(String(36))
    code: Mapped[str | None] = mapped_column(String(64))
    revision: Mapped[str | None] = mapped_column(String(16))
    status: Mapped[str | None] = mapped_column(String(16))
    operations: Mapped[Any] = mapped_column(JSON, nullable=False, default=list)
