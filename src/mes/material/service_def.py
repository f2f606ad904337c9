"""The material service declaration: parts and the events that keep other services' copies current."""
from __future__ import annotations

from isles.security import accept_api_tokens
from isles import Service, Snapshot
from mes.material.events import PUBLISHES, PartUpdated
from mes.material.models import Base, Part


def _part_snapshot(part: Part) -> PartUpdated:
    return PartUpdated(part_id=str(part.id), part_number=part.part_number, part_name=part.name,
                       revision=part.revision, unit_of_measure=part.unit_of_measure)


service = Service(
    "material",
    metadata=Base.metadata,
    publishes=PUBLISHES,
    snapshots=[Snapshot("mes.material.part", Part, _part_snapshot)],
    description="Parts, BOMs, lots and inventory",
)

# API tokens are checked against this service's own replica of auth's api_token events.
accept_api_tokens(service, source="mes.auth.api_token")
