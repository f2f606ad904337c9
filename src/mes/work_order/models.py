"""The work order service's own tables, including its copies of other services' data."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import Entity


class Base(DeclarativeBase):
    pass


class WorkOrder(Entity, Base):
    __tablename__ = "work_orders"
    __table_args__ = (
        Index("idx_work_orders_work_order_number", "work_order_number", unique=True),
        Index("idx_work_orders_part_id", "part_id"),
    )

    work_order_number: Mapped[str] = mapped_column(String(64), nullable=False)
    # Cross-service reference: an id, never a foreign key. The display fields below are
    # replicated from the material service's events (see service_def.py).
    part_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    part_number: Mapped[str | None] = mapped_column(String(64))
    part_name: Mapped[str | None] = mapped_column(String(255))
    part_version: Mapped[int | None] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="Forecast")
    due_date: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ReplicatedPart(Base):  # isles: ignore[ISL106] a read model of material's parts: the version column, not local timestamps, says how fresh a row is
    """work_order's read model of the material service's parts, fed by part events."""

    __tablename__ = "replicated_parts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    part_number: Mapped[str | None] = mapped_column(String(64))
    part_name: Mapped[str | None] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)
