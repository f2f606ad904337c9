"""The audit trail, read-only: filtered and paged, and exported as CSV for inspectors."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic.alias_generators import to_camel
from sqlalchemy import select

from isles.api import ApiModel, ApiOut
from isles.http import Page, Paged, PageOut, Uow, paged
from mes.auth.access import Auditor
from mes.auth.accounts import audit
from mes.auth.models import AuditLog

router = APIRouter()
Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


TEXT = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL


class AuditLogOut(ApiOut):
    id: uuid.UUID
    occurred_at: datetime
    actor_id: uuid.UUID | None
    actor_username: str | None
    action: str
    entity_type: str
    entity_id: str | None
    field: str | None
    old_value: str | None
    new_value: str | None
    reason: str | None
    ip_address: str | None


class AuditFilter(Schema):
    entity_type: str | None = None
    entity_id: str | None = None
    actor_id: uuid.UUID | None = None
    action: str | None = None


def audit_filter(entity_type: str | None = Query(None, alias="entityType", max_length=64, pattern=TEXT),
                 entity_id: str | None = Query(None, alias="entityId", max_length=64, pattern=TEXT),
                 actor_id: uuid.UUID | None = Query(None, alias="actorId"),
                 action: str | None = Query(None, max_length=64, pattern=TEXT)) -> AuditFilter:
    return AuditFilter(entity_type=entity_type, entity_id=entity_id, actor_id=actor_id, action=action)


def _audit_query(f: AuditFilter) -> Any:
    query = select(AuditLog).order_by(AuditLog.occurred_at.desc(), AuditLog.id)
    for name in ("entity_type", "entity_id", "actor_id", "action"):
        if getattr(f, name) is not None:
            query = query.where(getattr(AuditLog, name) == getattr(f, name))
    return query


@router.get("/audit-logs", response_model=PageOut[AuditLogOut])
async def list_audit_logs(principal: Auditor, uow: Uow, f: Annotated[AuditFilter, Depends(audit_filter)],
                          page: Page) -> Paged[AuditLog]:
    """The audit trail, newest first (read-only: the database refuses changes)."""
    return await paged(uow, _audit_query(f), page)


@router.get("/audit-logs/export.csv", response_class=Response,
            responses={200: {"content": {"text/csv": {}}}})
async def export_audit_logs(principal: Auditor, uow: Uow, f: Annotated[AuditFilter, Depends(audit_filter)],
                            limit: int = Query(10000, ge=1, le=100000)) -> Response:
    """The audit trail as CSV for inspectors (21 CFR Part 11 11.10(b)); times are UTC."""
    import csv
    import io
    columns = list(AuditLogOut.model_fields)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([to_camel(c) for c in columns])
    for row in await uow.scalars(_audit_query(f).limit(limit)):
        out = AuditLogOut.model_validate(row)
        writer.writerow([_csv_cell(getattr(out, c)) for c in columns])
    audit(uow, "audit_log.exported", "audit_log", None, actor=principal, reason=f.model_dump_json())
    await uow.commit()
    return Response(buffer.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'})


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text  # no formula injection in spreadsheets
