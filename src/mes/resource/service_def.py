"""The resource service declaration: ISA-95 hierarchy, personnel, products, routings, tools."""
from __future__ import annotations

from typing import Any

from isles import Service, Snapshot
from isles.security import accept_api_tokens
from mes.resource.events import PUBLISHES, PersonnelUpdated, ProductUpdated, SiteUpdated, WorkCenterUpdated
from mes.resource.models import Base, Personnel, Product, Site, WorkCenter


def site_event(site: Site, **changes: Any) -> SiteUpdated:
    return SiteUpdated(site_id=str(site.id), enterprise_id=str(site.enterprise_id), code=site.code, name=site.name,
                       site_name=site.name, timezone=site.timezone, is_active=site.is_active, **changes)


def work_center_event(center: WorkCenter, site_id: Any, **changes: Any) -> WorkCenterUpdated:
    return WorkCenterUpdated(work_center_id=str(center.id), area_id=str(center.area_id), site_id=str(site_id),
                             code=center.code, name=center.name, work_center_name=center.name, kind=center.kind,
                             is_active=center.is_active, **changes)


def personnel_event(person: Personnel, **extra: Any) -> PersonnelUpdated:
    return PersonnelUpdated(personnel_id=str(person.id), employee_number=person.employee_number,
                            first_name=person.first_name, last_name=person.last_name,
                            display_name=f"{person.first_name} {person.last_name}".strip(),
                            user_id=str(person.user_id) if person.user_id else None,
                            work_center_id=str(person.work_center_id) if person.work_center_id else None,
                            is_active=person.is_active, **extra)


def product_event(product: Product, **changes: Any) -> ProductUpdated:
    return ProductUpdated(product_id=str(product.id), product_number=product.product_number,
                          product_name=product.name, revision=product.revision,
                          part_id=str(product.part_id) if product.part_id else None,
                          unit_of_measure=product.unit_of_measure, is_active=product.is_active, **changes)


service = Service(
    "resource",
    metadata=Base.metadata,
    publishes=PUBLISHES,
    snapshots=[
        Snapshot("mes.resource.site", Site, site_event),
        Snapshot("mes.resource.personnel", Personnel, personnel_event),
        Snapshot("mes.resource.product", Product, product_event),
    ],
    description="ISA-95 hierarchy, equipment, personnel and qualifications, products, routings, tools",
)

# API tokens issued by auth are verified against this service's own replica of auth's token events.
accept_api_tokens(service, source="mes.auth.api_token")
