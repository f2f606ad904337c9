"""The traceability service's own tables: the genealogy graph and the trace events, a read model
built from material's and work_order's events.

Nodes have compact integer ids (``trace_nodes.id``), and so do parts and work orders: the
in-memory index (:mod:`mes.traceability.graph`) keeps nothing but integers per node, and loads
them straight from these columns. The tables stay the source of truth; the index is rebuilt from
them at start. Edges are append-only and carry no foreign keys (they are written by this
service's handlers only, a node row first), so a million-lot plant loads with COPY.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Index, Integer, Numeric, SmallInteger, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

Qty = Numeric(18, 6)
#: 64-bit ids on PostgreSQL; SQLite autoincrements only an INTEGER PRIMARY KEY
Id = BigInteger().with_variant(Integer, "sqlite")
READ_MODEL = {"isles_read_model": True}  # built from other services' events: no local timestamps

#: node kinds (``trace_nodes.kind``)
LOT, SERIAL, SHIPMENT = 1, 2, 3
KIND_NAMES = {LOT: "lot", SERIAL: "serial", SHIPMENT: "shipment"}
KIND_CODES = {name: code for code, name in KIND_NAMES.items()}


class Base(DeclarativeBase):
    pass


# isles: ignore[ISL105] compact integer ids: the in-memory genealogy index keys its arrays by them
class TracePart(Base):
    """A part, as material announces it (renames follow, so labels show the current number)."""

    __tablename__ = "trace_parts"
    __table_args__ = (Index("idx_trace_parts_part_id", "part_id", unique=True), {"info": READ_MODEL})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    part_id: Mapped[str] = mapped_column(String(64), nullable=False)
    part_number: Mapped[str | None] = mapped_column(String(64))
    part_name: Mapped[str | None] = mapped_column(String(255))
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


# isles: ignore[ISL105] compact integer ids: the in-memory genealogy index keys its arrays by them
class TraceWorkOrder(Base):
    """A work order, as work_order (or a material event naming it) announces it."""

    __tablename__ = "trace_work_orders"
    __table_args__ = (Index("idx_trace_work_orders_work_order_id", "work_order_id", unique=True),
                      {"info": READ_MODEL})

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    work_order_id: Mapped[str] = mapped_column(String(64), nullable=False)
    work_order_number: Mapped[str | None] = mapped_column(String(64))
    part_id: Mapped[str | None] = mapped_column(String(64))  # isles: ignore[ISL107] shown, never looked up by
    part_number: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str | None] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


# isles: ignore[ISL105] compact integer ids: the in-memory genealogy index keys its arrays by them
class TraceNode(Base):
    """A lot, a serialized unit or a customer shipment: a node of the genealogy graph."""

    __tablename__ = "trace_nodes"
    __table_args__ = (Index("idx_trace_nodes_entity_id_kind", "entity_id", "kind", unique=True),
                      Index("idx_trace_nodes_number", "number"), {"info": READ_MODEL})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    #: the owning service's id (material's lot or serial id, the shipment id)
    entity_id: Mapped[str] = mapped_column(String(64), nullable=False)
    #: lot number, serial (the product serial once assigned, else the process serial), shipment number
    number: Mapped[str | None] = mapped_column(String(128))
    part_key: Mapped[int | None] = mapped_column(Integer)  # trace_parts.id
    work_order_key: Mapped[int | None] = mapped_column(Integer)  # trace_work_orders.id: the order that made it
    status: Mapped[str | None] = mapped_column(String(32))
    quantity: Mapped[Decimal | None] = mapped_column(Qty)
    unit_of_measure: Mapped[str | None] = mapped_column(String(16))
    #: received, split, merge, produced, serial, shipment, returned - or "unknown" while only referenced
    origin: Mapped[str] = mapped_column(String(16), nullable=False, default="unknown")
    supplier: Mapped[str | None] = mapped_column(String(255))
    supplier_lot_number: Mapped[str | None] = mapped_column(String(128))
    customer: Mapped[str | None] = mapped_column(String(255))
    #: True: its parents are the material issued into its work order (no explicit parent list came)
    inherits: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    #: the owner's entity version of the state copied here (older states are ignored)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


# isles: ignore[ISL105] compact integer ids: the in-memory genealogy index keys its arrays by them
class TraceEdge(Base):
    """``parent`` went into ``child`` (consumed, split, merged, assembled, shipped, returned)."""

    __tablename__ = "trace_edges"
    __table_args__ = (Index("idx_trace_edges_parent_id_child_id", "parent_id", "child_id"),
                      Index("idx_trace_edges_child_id_parent_id", "child_id", "parent_id"), {"info": READ_MODEL})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    parent_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    child_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: consume, produce, split, merge, assemble, ship, return
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    quantity: Mapped[Decimal | None] = mapped_column(Qty)
    work_order_key: Mapped[int | None] = mapped_column(Integer)
    operation_code: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TraceConsumption(Base):  # isles: ignore[ISL105] keyed by material's consumption id
    """Material issued into a work order: the parents of the order's output that names none."""

    __tablename__ = "trace_consumptions"
    __table_args__ = (Index("idx_trace_consumptions_work_order_key", "work_order_key"),
                      Index("idx_trace_consumptions_node_id", "node_id"), {"info": READ_MODEL})

    consumption_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    node_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    work_order_key: Mapped[int] = mapped_column(Integer, nullable=False)
    #: issued into this unit only
    serial_node_id: Mapped[int | None] = mapped_column(BigInteger)  # isles: ignore[ISL107] never looked up by
    quantity: Mapped[Decimal | None] = mapped_column(Qty)
    operation_code: Mapped[str | None] = mapped_column(String(64))
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


# isles: ignore[ISL105] compact integer ids: the in-memory genealogy index keys its arrays by them
class TraceEvent(Base):
    """One thing that happened to a lot, a unit or a work order, in any service: the digital thread."""

    __tablename__ = "trace_events"
    __table_args__ = (Index("idx_trace_events_node_id_occurred_at", "node_id", "occurred_at"),
                      Index("idx_trace_events_work_order_key_occurred_at", "work_order_key", "occurred_at"),
                      {"info": READ_MODEL})

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    #: the CloudEvents id
    event_id: Mapped[str] = mapped_column(String(64), nullable=False)  # isles: ignore[ISL107] shown, never looked up by
    type: Mapped[str] = mapped_column(String(128), nullable=False)
    source: Mapped[str] = mapped_column(String(128), nullable=False)  # /mes/material, /mes/work_order
    #: receive, consume, produce, split, merge, ship, return, status, serial, work_order
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    node_id: Mapped[int | None] = mapped_column(BigInteger)
    work_order_key: Mapped[int | None] = mapped_column(Integer)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    summary: Mapped[str] = mapped_column(Text, nullable=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
