"""HTTP API of the work order service: one router per concept, all behind a token with work_order:read.

``create_work_order``, ``release`` and ``WorkOrderIn`` are re-exported for code that seeds or
benchmarks the service without HTTP.
"""
from __future__ import annotations

from fastapi import APIRouter

from mes.work_order import instructions, operations, orders, output, schedules, variance
from mes.work_order.access import Reader
from mes.work_order.orders import WorkOrderIn, WorkOrderOut, create_work_order, release

router = APIRouter(dependencies=[Reader])
for module in (orders, operations, output, schedules, instructions, variance):
    router.include_router(module.router)

__all__ = ["router", "WorkOrderIn", "WorkOrderOut", "create_work_order", "release"]
