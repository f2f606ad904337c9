"""Column mixins for service models: UUID ids, timestamps and an entity version.

``Versioned`` gives the monotonic ``version`` every event carries as ``entityversion``; it is
also SQLAlchemy's optimistic-lock column, so two writers cannot both move an entity from
version n to n+1 (the second gets ``StaleDataError``).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import BigInteger, DateTime, Uuid
from sqlalchemy.orm import Mapped, declared_attr, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """A stored timestamp as an aware one: SQLite hands back naive datetimes, and isles stores UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def apply_changes(row: Any, changes: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Set the attributes of ``row`` that ``changes`` alters; return (changed, previous) for those only.

    Services use the pair for their ``.updated`` events (changes / previousValues) and audit trails;
    an empty ``changed`` means nothing to save or publish.
    """
    previous = {name: getattr(row, name) for name in changes}
    changed = {name: value for name, value in changes.items() if previous[name] != value}
    for name, value in changed.items():
        setattr(row, name, value)
    return changed, {name: previous[name] for name in changed}


class HasUuid:
    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow,
                                                 nullable=False)


class Versioned:
    version: Mapped[int] = mapped_column(BigInteger, nullable=False, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict:
        return {"version_id_col": cls.version}


class Entity(HasUuid, Timestamped, Versioned):
    """UUID primary key, created_at/updated_at (with time zone) and a version."""
