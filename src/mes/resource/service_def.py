"""The resource service declaration: ISA-95 hierarchy, personnel, products, routings, tools."""
from __future__ import annotations

from isles import Replica, Service, Snapshot
from isles.idempotency import Idempotency
from isles.security import api_token_replica
from mes.resource.api import router
from mes.resource.events import PUBLISHES
from mes.resource.hierarchy import site_event
from mes.resource.models import Base, Personnel, Product, ReplicatedPart, Site
from mes.resource.personnel import personnel_event
from mes.resource.products import product_event

service = Service(
    "resource",
    metadata=Base.metadata,
    audit=True,  # record edits (renames), deactivations, routing releases
    publishes=PUBLISHES,
    router=router,
    snapshots=[
        Snapshot("mes.resource.site", Site, site_event),
        Snapshot("mes.resource.personnel", Personnel, personnel_event),
        Snapshot("mes.resource.product", Product, product_event),
    ],
    replicas=[
        # "Product.part_number mirrors Part.part_number through part_id" (the read model first: a new
        # product copies from it, see products.py)
        Replica(ReplicatedPart, key="id", source="mes.material.part", upsert=True, optional=True,
                fields={"part_number": "partNumber"}),
        Replica(Product, key="part_id", source="mes.material.part", optional=True,
                fields={"part_number": "partNumber"}),
        # API tokens issued by auth, checked against this service's own copy
        api_token_replica(Base.metadata, source="mes.auth.api_token"),
    ],
    # commands are safe to retry with an Idempotency-Key header (a lost answer on a plant network)
    idempotency=Idempotency(),
    description="ISA-95 hierarchy, equipment, personnel and qualifications, products, routings, tools",
)
