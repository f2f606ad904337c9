"""The material service's own tables."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import Entity


class Base(DeclarativeBase):
    pass


class Part(Entity, Base):
    __tablename__ = "parts"
    __table_args__ = (Index("idx_parts_part_number", "part_number", unique=True),)

    part_number: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    revision: Mapped[str] = mapped_column(String(16), nullable=False, default="A")
    unit_of_measure: Mapped[str] = mapped_column(String(16), nullable=False, default="EA")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
