"""A service's audit trail: who did what to which record, when, which field, old and new value, why.

21 CFR Part 11 11.10(e) asks for "secure, computer-generated, time-stamped audit trails" that
record the operator's actions which create, modify or delete records, where a change never
obscures what was recorded before. isles gives every service that declares it
(``Service(..., audit=True)``) a table ``isles_audit_trail`` in its **own** database and one call:

    audit(uow, principal, "lot.status_changed", "lot", lot.id,
          changes={"status": ("quarantine", "released")}, reason="CoA checked")

* **Same transaction.** The rows are added to the unit of work's session, so they commit with
  the change they describe, or not at all: no change without its entry, no entry for a change
  that rolled back. (The call is synchronous, like ``uow.publish``; the rows are flushed with
  the rest.)
* **System-generated time.** ``occurred_at`` is the server's UTC clock when ``audit`` is
  called; nothing a client sends reaches it.
* **One row per field.** ``changes={field: (old, new)}`` writes a row per field, all with one
  ``change_id``; no ``changes`` writes one row with no field (a release, a hold). Values are
  stored as text (ISO 8601 for times, plain decimals, ``null`` as SQL NULL) so any type reads back
  the same way in a year.
* **Append-only in the database.** Triggers refuse UPDATE and DELETE (and TRUNCATE on
  PostgreSQL) for every connection, the owner's included (:mod:`isles.append_only`). They ship
  with the table in isles' migration step ``audit:1`` and with ``create_all``.

Read a record's history with :func:`history` (oldest first); a service's read route or an export
is built on it.
"""
from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import BigInteger, Column, DateTime, Index, Integer, MetaData, String, Table, Text, select
from sqlalchemy.orm import registry

from isles import append_only
from isles.errors import ConfigurationError
from isles.orm import as_utc, utcnow
from isles.unit_of_work import UnitOfWork

__all__ = ["AUDIT_TRAIL", "AuditEntry", "SYSTEM", "Actor", "audit", "history", "install_audit_trail",
           "text_of"]

AUDIT_TRAIL = "isles_audit_trail"
#: the PostgreSQL trigger function that refuses changes (dropped by the step's downgrade)
REFUSE_FUNCTION = "isles_audit_trail_append_only"
APPEND_ONLY_MESSAGE = (f"{AUDIT_TRAIL} is append-only (21 CFR Part 11 11.10(e)): "
                       "audit entries cannot be updated or deleted")
#: the actor recorded when no person acted (a scheduled sweep, an event handler)
SYSTEM = "system"

_Id = BigInteger().with_variant(Integer(), "sqlite")


class Actor(Protocol):
    """Who acted: an :class:`isles.security.Principal` (anything with these two attributes)."""

    @property
    def user_id(self) -> str: ...

    @property
    def username(self) -> str: ...


def _columns() -> list[Any]:
    return [
        Column("id", _Id, primary_key=True, autoincrement=True),
        Column("change_id", String(36), nullable=False),  # the rows of one call share it
        Column("occurred_at", DateTime(timezone=True), nullable=False),
        Column("actor_id", String(64), nullable=False),  # the user's id, or "system"
        Column("actor_name", String(150), nullable=False),
        Column("action", String(64), nullable=False),
        Column("entity", String(64), nullable=False),
        Column("entity_id", String(64), nullable=False),
        Column("field", String(64)),
        Column("old_value", Text),
        Column("new_value", Text),
        Column("reason", Text),
        Index("idx_isles_audit_trail_entity_entity_id", "entity", "entity_id"),
        Index("idx_isles_audit_trail_occurred_at", "occurred_at"),
        Index("idx_isles_audit_trail_actor_id", "actor_id"),
    ]


#: per dialect, the triggers that make the table append-only (the migration step runs the same)
TRIGGERS = append_only.refuse_statements(AUDIT_TRAIL, message=APPEND_ONLY_MESSAGE, function=REFUSE_FUNCTION)


def install_audit_trail(metadata: MetaData) -> Table:
    """Add ``isles_audit_trail`` (and its triggers, for ``create_all``) to ``metadata``; idempotent.

    ``Service(..., audit=True)`` calls it; the isles migration component ``audit`` creates it.
    """
    if AUDIT_TRAIL in metadata.tables:
        return metadata.tables[AUDIT_TRAIL]
    table = Table(AUDIT_TRAIL, metadata, *_columns())
    append_only.listen(table, TRIGGERS)
    return table


@dataclass(eq=False)
class AuditEntry:
    """One row of the audit trail (read it; the database refuses to change it)."""

    change_id: str
    occurred_at: datetime
    actor_id: str
    actor_name: str
    action: str
    entity: str
    entity_id: str
    field: str | None = None
    old_value: str | None = None
    new_value: str | None = None
    reason: str | None = None
    id: int | None = None


# The rows are written through a table of isles' own metadata (the same name and columns as the
# service's copy, found by search_path), mapped so that ``audit`` can add them to the session
# synchronously and they flush with the change they describe.
_TABLE = Table(AUDIT_TRAIL, MetaData(), *_columns())
registry().map_imperatively(AuditEntry, _TABLE)


def text_of(value: Any) -> str | None:
    """A value as the audit trail stores it: text that reads back the same in a year."""
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if isinstance(value, (uuid.UUID, str, int, float)):
        return str(value)
    if isinstance(value, (set, frozenset)):
        value = sorted(value, key=str)
    return json.dumps(value, default=str, sort_keys=True, separators=(",", ":"))


def _check_declared(uow: UnitOfWork) -> None:
    metadata = uow.runtime.tables.outbox.metadata  # the service's own metadata
    if AUDIT_TRAIL not in metadata.tables:
        raise ConfigurationError("writes an audit entry but does not declare an audit trail", service=uow.service,
                                 fix="declare it: Service(..., audit=True), then `isles migrate up` creates "
                                     f"{AUDIT_TRAIL}")


def audit(uow: UnitOfWork, principal: Actor | None, action: str, entity: str, entity_id: Any,
          changes: Mapping[str, tuple[Any, Any]] | None = None, reason: str | None = None) -> list[AuditEntry]:
    """Record in ``uow``'s transaction that ``principal`` did ``action`` to ``entity`` ``entity_id``.

    ``changes`` maps each changed field to ``(old, new)`` (one row each; unchanged fields are
    skipped); without it one row records the action itself. ``principal`` None records the
    system as the actor. The time is the server's UTC clock, never the caller's. Returns the rows.
    """
    _check_declared(uow)
    if entity_id is None:
        raise ValueError(f"audit {action}: the {entity} has no id yet (flush the unit of work first)")
    base: dict[str, Any] = dict(change_id=str(uuid.uuid4()), occurred_at=utcnow(),
                                actor_id=SYSTEM if principal is None else str(principal.user_id),
                                actor_name=SYSTEM if principal is None else principal.username,
                                action=action, entity=entity, entity_id=str(entity_id), reason=reason)
    fields = [(name, text_of(old), text_of(new)) for name, (old, new) in (changes or {}).items()]
    fields = [(name, old, new) for name, old, new in fields if old != new]
    entries = ([AuditEntry(**base, field=name, old_value=old, new_value=new) for name, old, new in fields]
               if fields else [AuditEntry(**base)])
    for entry in entries:
        uow.add(entry)
    return entries


async def history(uow: UnitOfWork, entity: str, entity_id: Any, *, action: str | None = None) -> list[AuditEntry]:
    """Every audit entry of one record, oldest first (optionally of one action).

    A record's prior values stay retrievable here after any edit (11.10(e)).
    """
    _check_declared(uow)
    query = select(AuditEntry).where(_TABLE.c.entity == entity, _TABLE.c.entity_id == str(entity_id))
    if action is not None:
        query = query.where(_TABLE.c.action == action)
    entries = list(await uow.scalars(query.order_by(_TABLE.c.id)))
    for entry in entries:
        uow.session.expunge(entry)  # detached first: a read must never flush back as an UPDATE
        entry.occurred_at = as_utc(entry.occurred_at)  # SQLite hands back naive UTC
    return entries
