"""HTTP API of the resource service: one router per concept, all behind a valid token.

``publish_site``, ``publish_work_center``, ``publish_personnel``, ``publish_product`` and
``publish_routing`` are re-exported for code that seeds the service without HTTP.
"""
from __future__ import annotations

from fastapi import APIRouter

from mes.resource import equipment, hierarchy, personnel, products, routings, tools
from mes.resource.access import Authenticated
from mes.resource.hierarchy import publish_site, publish_work_center
from mes.resource.personnel import publish_personnel
from mes.resource.products import publish_product
from mes.resource.routings import publish_routing

router = APIRouter(dependencies=[Authenticated])
for module in (hierarchy, equipment, personnel, products, routings, tools):
    router.include_router(module.router)

__all__ = ["router", "publish_personnel", "publish_product", "publish_routing", "publish_site", "publish_work_center"]
