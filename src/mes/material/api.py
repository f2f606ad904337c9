"""HTTP API of the material service: one router per concept, all behind a token with material:read.

``create_part``, ``update_part``, ``PartIn`` and ``PartPatch`` are re-exported for code that seeds
or benchmarks the service without HTTP.
"""
from __future__ import annotations

from fastapi import APIRouter

from mes.material import boms, consumption, locations, lots, parts, production, reversals, serials, shipments
from mes.material.access import Reader
from mes.material.parts import PartIn, PartOut, PartPatch, create_part, update_part

router = APIRouter(dependencies=[Reader])
for module in (parts, boms, locations, lots, consumption, serials, production, reversals, shipments):
    router.include_router(module.router)

__all__ = ["router", "PartIn", "PartOut", "PartPatch", "create_part", "update_part"]
