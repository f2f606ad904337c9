"""The traceability service declaration: a read model of the other services' events."""
from __future__ import annotations

from isles import Service
from isles.security import api_token_replica
from mes.traceability.api import router
from mes.traceability.events import PUBLISHES
from mes.traceability.handlers import handlers
from mes.traceability.models import Base

service = Service(
    "traceability",
    metadata=Base.metadata,
    publishes=PUBLISHES,
    handlers=handlers,
    router=router,
    replicas=[
        # API tokens issued by auth, checked against this service's own copy
        api_token_replica(Base.metadata, source="mes.auth.api_token"),
    ],
    description="Lot and serial genealogy (backward, forward, upstream, as-built), recall simulation, "
                "digital threads and genealogy pictures",
)
