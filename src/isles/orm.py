"""Column mixins for service models: UUID ids, timestamps and an entity version.

``Versioned`` gives the monotonic ``version`` every event carries as ``entityversion``; it is
also SQLAlchemy's optimistic-lock column, so two writers cannot both move an entity from
version n to n+1 (the second gets ``StaleDataError``).

``ReadModel`` is for the other kind of table: a copy of another service's rows kept from its
events (a :class:`isles.Replica` target).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any, Mapping

from sqlalchemy import BigInteger, DateTime, Table, Uuid
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
    def __mapper_args__(cls) -> dict[str, Any]:
        return {"version_id_col": cls.version}


class Entity(HasUuid, Timestamped, Versioned):
    """UUID primary key, created_at/updated_at (with time zone) and a version."""


class ReadModel:
    """A table that copies another service's data, fed by that service's events.

    Its ``id`` is the owning service's id (no default: the event brings it) and its ``version``
    is the owner's entity version, which the replica's version guard compares so that a copy
    never goes backwards. It is not an optimistic-lock column: only the owner's events write here.
    A read model has no local ``created_at``/``updated_at``: the version, not the moment this
    service happened to receive an event, says how fresh a row is - so ``isles lint`` does not
    ask for timestamps (ISL106) on it.

    Usage: ``class ReplicatedPart(ReadModel, Base): __tablename__ = "replicated_parts"; ...``.
    A read model whose version column has another name, or a Core ``Table``, opts in with
    ``info={"isles_read_model": True}`` on the table instead.
    """

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, sort_order=-1)
    version: Mapped[int] = mapped_column(BigInteger, nullable=False)


#: ``Table.info`` key marking a read model declared without the mixin
READ_MODEL_INFO = "isles_read_model"


def is_read_model(table: Table, cls: type | None = None) -> bool:
    """True for a table that copies another service's data (``ReadModel`` or the info marker)."""
    if table.info.get(READ_MODEL_INFO):
        return True
    return cls is not None and isinstance(cls, type) and issubclass(cls, ReadModel)
