"""HTTP API of the traceability service: one router per concept, all behind ``traceability:read``."""
from __future__ import annotations

from fastapi import APIRouter

from mes.traceability import genealogy, recall, thread
from mes.traceability.access import Reader

router = APIRouter(dependencies=[Reader])
# the fixed paths (/nodes, /serials/{ref}/as-built) before the /{kind}/{ref}/... ones
for module in (genealogy, recall, thread):
    router.include_router(module.router)

__all__ = ["router"]
