"""The work order service declaration, with its replicated fields."""
from __future__ import annotations

from isles.security import accept_api_tokens
from isles import Replica, Service
from mes.work_order.events import PUBLISHES
from mes.work_order.handlers import handlers
from mes.work_order.models import Base, ReplicatedPart, WorkOrder

PART_FIELDS = {"part_number": "partNumber", "part_name": "partName"}

service = Service(
    "work_order",
    metadata=Base.metadata,
    publishes=PUBLISHES,
    handlers=handlers,
    replicas=[
        # "WorkOrder.part_number and part_name mirror Part through part_id" (seed 000's headline flow)
        Replica(WorkOrder, key="part_id", source="mes.material.part", fields=PART_FIELDS),
        # the local read model new work orders copy from
        Replica(ReplicatedPart, key="id", source="mes.material.part", fields=PART_FIELDS, upsert=True),
    ],
    description="Work orders, operations, schedules and dispatch",
)

# API tokens are checked against this service's own replica of auth's api_token events.
accept_api_tokens(service, source="mes.auth.api_token")
