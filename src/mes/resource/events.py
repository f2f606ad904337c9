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


PUBLISHES = [SiteUpdated, WorkCenterUpdated, PersonnelUpdated, ProductUpdated]
