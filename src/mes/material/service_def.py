"""The material service declaration: what it owns, publishes, and copies from work_order."""
from __future__ import annotations

from datetime import timedelta

from isles import Replica, Service, Snapshot
from isles.idempotency import Idempotency
from isles.jobs import Job
from isles.security import api_token_replica
from mes.material.api import router
from mes.material.events import PUBLISHES, PartUpdated
from mes.material.lots import expire_due_lots
from mes.material.models import Base, Part, ReplicatedWorkOrder
from mes.material.production import handlers


def _part_snapshot(part: Part) -> PartUpdated:
    return PartUpdated(part_id=str(part.id), part_number=part.part_number, part_name=part.name,
                       revision=part.revision, unit_of_measure=part.unit_of_measure, tracking=part.tracking)


service = Service(
    "material",
    metadata=Base.metadata,
    audit=True,  # lot dispositions, part renames, BOM releases, consumption reversals
    publishes=PUBLISHES,
    handlers=handlers,  # production output (production.py)
    router=router,
    snapshots=[Snapshot("mes.material.part", Part, _part_snapshot)],
    replicas=[
        # the work orders material may issue lots to (status) and whose BOM applies (part)
        Replica(ReplicatedWorkOrder, key="id", source="mes.work_order.work_order", upsert=True, optional=True,
                actions=("created", "status_changed", "completed"),
                fields={"work_order_number": "workOrderNumber", "part_id": "partId", "status": "status",
                        "quantity": "quantity", "operation_codes": "operationCodes"}),
        # API tokens issued by auth, checked against this service's own copy
        api_token_replica(Base.metadata, source="mes.auth.api_token"),
    ],
    # commands are safe to retry with an Idempotency-Key header (a lost answer on a plant network)
    idempotency=Idempotency(),
    # a lot's expiry is recorded on its own (use and inventory refuse expired lots before that, too)
    jobs=[Job("expire-due", every=timedelta(minutes=5), run=expire_due_lots)],
    description="Parts, BOMs, locations, lots, sublots, serials and material issues",
)
