"""Events the resource service publishes (names from seed 001). Each ``.updated`` event carries the
entity's whole current state (so a consumer can copy it whatever changed), plus what changed. They
are also published when the entity is created: for consumers, "it now looks like this"."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from isles import Event


class SiteUpdated(Event, type="mes.resource.site.updated", key="site_id"):
    site_id: str
    enterprise_id: str
    code: str
    name: str
    site_name: str
    timezone: str
    is_active: bool
    changes: dict[str, Any] = {}
    previous_values: dict[str, Any] = {}


class WorkCenterUpdated(Event, type="mes.resource.work_center.updated", key="work_center_id"):
    work_center_id: str
    area_id: str
    site_id: str
    code: str
    name: str
    work_center_name: str
    kind: str
    is_active: bool
    changes: dict[str, Any] = {}
    previous_values: dict[str, Any] = {}


class Qualification(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    skill_code: str | None
    name: str
    level: int
    valid_until: str | None = None  # ISO date; None = does not expire


class PersonnelUpdated(Event, type="mes.resource.personnel.updated", key="personnel_id"):
    personnel_id: str
    employee_number: str
    first_name: str
    last_name: str
    display_name: str
    user_id: str | None = None
    work_center_id: str | None = None
    is_active: bool
    skills: list[Qualification] = []
    certifications: list[Qualification] = []
    changes: dict[str, Any] = {}
    previous_values: dict[str, Any] = {}


class ProductUpdated(Event, type="mes.resource.product.updated", key="product_id"):
    product_id: str
    product_number: str
    product_name: str
    revision: str
    part_id: str | None = None
    unit_of_measure: str
    is_active: bool
    changes: dict[str, Any] = {}
    previous_values: dict[str, Any] = {}


class RoutingStep(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)

    sequence: int
    code: str
    name: str
    work_center_id: str | None = None
    setup_minutes: float = 0
    run_minutes_per_unit: float = 0
    required_skill_id: str | None = None


class RoutingUpdated(Event, type="mes.resource.routing.updated", key="routing_id"):
    """A routing was released or made obsolete. ``part_id`` is its product's material part (if any):
    what a work order for that part is made by. Released routings never change, so the operations
    carried by the release are the routing's operations for good."""

    routing_id: str
    product_id: str
    part_id: str | None = None
    site_id: str | None = None
    code: str
    name: str
    revision: str
    status: str
    operations: list[RoutingStep] = []


PUBLISHES: list[type[Event]] = [SiteUpdated, WorkCenterUpdated, PersonnelUpdated, ProductUpdated, RoutingUpdated]
