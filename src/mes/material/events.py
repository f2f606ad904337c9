"""Events the material service publishes (names and payloads from seed 001)."""
from __future__ import annotations

from typing import Any

from isles import Event


class PartCreated(Event, type="mes.material.part.created", key="part_id"):
    part_id: str
    part_number: str
    part_name: str
    revision: str
    unit_of_measure: str


class PartUpdated(Event, type="mes.material.part.updated", key="part_id"):
    part_id: str
    part_number: str
    part_name: str
    revision: str
    unit_of_measure: str
    changes: dict[str, Any] = {}
    previous_values: dict[str, Any] = {}


class PartDeleted(Event, type="mes.material.part.deleted", key="part_id"):
    part_id: str
    part_number: str


PUBLISHES = [PartCreated, PartUpdated, PartDeleted]
