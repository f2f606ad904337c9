"""Route: the digital thread of a lot, unit or shipment - everything that happened to it, in time order."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter

from isles.api import ApiOut
from isles.http import Page, Paged, PageOut, Uow
from mes.traceability import queries
from mes.traceability.genealogy import NodeKind

router = APIRouter()


class ThreadEntry(ApiOut):
    occurred_at: datetime
    kind: str
    summary: str
    work_order_number: str | None = None
    type: str
    source: str
    event_id: str
    data: dict[str, Any]


@router.get("/{kind}/{ref}/thread", response_model=PageOut[ThreadEntry])
async def thread(kind: NodeKind, ref: str, uow: Uow, page: Page) -> Paged[ThreadEntry]:
    """Everything that happened to the lot/unit/shipment, and to the work orders that made or used it,
    across services, oldest first."""
    node = await queries.resolve(uow, kind.code, ref)
    rows, total = await queries.thread(uow, node, page.limit, page.offset)
    names = await queries.labels_of(uow, set(), {r.work_order_key for r in rows if r.work_order_key})
    return Paged([ThreadEntry(occurred_at=r.occurred_at, kind=r.kind, summary=r.summary,
                              work_order_number=names.order(r.work_order_key)[1], type=r.type, source=r.source,
                              event_id=r.event_id, data=r.data) for r in rows], total, page.limit, page.offset)
