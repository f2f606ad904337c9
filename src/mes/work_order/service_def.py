"""The work order service declaration, with its replicated fields and read models.

Each copy of another service's data is declared once. Where a read model and the work orders'
display fields follow the same events, the read model is listed first: creating an order reads
the read-model row FOR SHARE, so an update applied in that order cannot miss a new work order.
"""
from __future__ import annotations

from isles import Replica, Service
from isles.idempotency import Idempotency
from isles.security import api_token_replica
from mes.work_order.api import router
from mes.work_order.events import PUBLISHES
from mes.work_order.handlers import handlers
from mes.work_order.models import (
    Base,
    ReplicatedBom,
    ReplicatedPart,
    ReplicatedRouting,
    ReplicatedSite,
    ReplicatedUser,
    ReplicatedWorkCenter,
    WorkOrder,
)

PART_FIELDS = {"part_number": "partNumber", "part_name": "partName"}
USER_EVENTS = ("created", "updated", "deleted")

service = Service(
    "work_order",
    metadata=Base.metadata,
    audit=True,  # releases, holds, instruction releases, report counter-entries
    publishes=PUBLISHES,
    handlers=handlers,
    router=router,
    replicas=[
        # "WorkOrder.part_number and part_name mirror Part through part_id" (seed 000's headline flow)
        Replica(ReplicatedPart, key="id", source="mes.material.part", fields={**PART_FIELDS, "tracking": "tracking"},
                upsert=True),
        Replica(WorkOrder, key="part_id", source="mes.material.part", fields=PART_FIELDS),
        # the site's name, and who created the order (still active or not)
        Replica(ReplicatedSite, key="id", source="mes.resource.site", upsert=True, optional=True, actions=("updated",),
                fields={"code": "code", "site_name": "siteName"}),
        Replica(WorkOrder, key="site_id", source="mes.resource.site", optional=True, actions=("updated",),
                fields={"site_name": "siteName"}),
        Replica(ReplicatedUser, key="id", source="mes.auth.user", upsert=True, optional=True, actions=USER_EVENTS,
                fields={"display_name": "displayName", "is_active": "isActive"}),
        Replica(WorkOrder, key="created_by_id", source="mes.auth.user", optional=True, actions=USER_EVENTS,
                fields={"created_by_name": "displayName", "created_by_active": "isActive"}),
        # what orders are planned from, and the work centers their operations run at
        Replica(ReplicatedRouting, key="id", source="mes.resource.routing", upsert=True, optional=True,
                actions=("updated",), fields={"product_id": "productId", "part_id": "partId", "site_id": "siteId",
                                              "code": "code", "revision": "revision", "status": "status",
                                              "operations": "operations"}),
        Replica(ReplicatedWorkCenter, key="id", source="mes.resource.work_center", upsert=True, optional=True,
                actions=("updated",), fields={"code": "code", "name": "name", "site_id": "siteId",
                                              "is_active": "isActive"}),
        # the BOM in force per part: the variance report's material requirement
        Replica(ReplicatedBom, key="id", source="mes.material.bom", upsert=True, optional=True, actions=("released",),
                fields={"bom_version": "bomVersion", "items": "items"}),
        # API tokens issued by auth, checked against this service's own copy
        api_token_replica(Base.metadata, source="mes.auth.api_token"),
    ],
    # commands are safe to retry with an Idempotency-Key header (a lost answer on a plant network)
    idempotency=Idempotency(),
    description="Work orders, operations, schedules, dispatch, performance and work instructions",
)
