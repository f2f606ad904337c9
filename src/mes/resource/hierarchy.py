"""The ISA-95 equipment hierarchy: enterprise > site > area > work center > work unit, and the tree
under an enterprise. Sites and work centers publish their events (other services copy their names)."""
from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy import select

from isles import UnitOfWork
from isles.api import ApiOut
from isles.http import Uow, get_or_404
from mes.resource.access import Reader
from mes.resource.crud import LevelIn, LevelOut, LevelPatch, camel, crud
from mes.resource.events import SiteUpdated, WorkCenterUpdated
from mes.resource.models import Area, Enterprise, Site, WorkCenter, WorkUnit

router = APIRouter()
WorkCenterKind = Literal["ProcessCell", "ProductionLine", "ProductionUnit", "StorageZone"]
WorkUnitKind = Literal["Unit", "WorkCell", "StorageUnit"]


def site_event(site: Site, **changes: Any) -> SiteUpdated:
    return SiteUpdated(site_id=str(site.id), enterprise_id=str(site.enterprise_id), code=site.code, name=site.name,
                       site_name=site.name, timezone=site.timezone, is_active=site.is_active, **changes)


def work_center_event(center: WorkCenter, site_id: Any, **changes: Any) -> WorkCenterUpdated:
    return WorkCenterUpdated(work_center_id=str(center.id), area_id=str(center.area_id), site_id=str(site_id),
                             code=center.code, name=center.name, work_center_name=center.name, kind=center.kind,
                             is_active=center.is_active, **changes)


async def publish_site(uow: UnitOfWork, site: Site, changed: dict[str, Any], previous: dict[str, Any]) -> None:
    uow.publish(site_event(site, changes=camel(changed), previous_values=camel(previous)), entity=site)


async def publish_work_center(uow: UnitOfWork, center: WorkCenter, changed: dict[str, Any],
                              previous: dict[str, Any]) -> None:
    area = await uow.get(Area, center.area_id)
    uow.publish(work_center_event(center, area.site_id, changes=camel(changed), previous_values=camel(previous)),
                entity=center)


class EnterpriseOut(LevelOut):
    pass


class SiteIn(LevelIn):
    enterprise_id: uuid.UUID
    timezone: str = Field(default="UTC", max_length=64, examples=["America/Chicago"])
    address: str | None = Field(default=None, max_length=500)


class SitePatch(LevelPatch):
    timezone: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=500)


class SiteOut(LevelOut):
    enterprise_id: uuid.UUID
    timezone: str
    address: str | None


class AreaIn(LevelIn):
    site_id: uuid.UUID


class AreaOut(LevelOut):
    site_id: uuid.UUID


class WorkCenterIn(LevelIn):
    area_id: uuid.UUID
    kind: WorkCenterKind = "ProductionLine"
    capacity_per_hour: float | None = Field(default=None, ge=0, le=1e8)


class WorkCenterPatch(LevelPatch):
    kind: WorkCenterKind | None = None
    capacity_per_hour: float | None = Field(default=None, ge=0, le=1e8)


class WorkCenterOut(LevelOut):
    area_id: uuid.UUID
    kind: str
    capacity_per_hour: float | None


class WorkUnitIn(LevelIn):
    work_center_id: uuid.UUID
    kind: WorkUnitKind = "WorkCell"


class WorkUnitPatch(LevelPatch):
    kind: WorkUnitKind | None = None


class WorkUnitOut(LevelOut):
    work_center_id: uuid.UUID
    kind: str


crud(router, "/enterprises", Enterprise, LevelIn, LevelPatch, EnterpriseOut, label="enterprise")
crud(router, "/sites", Site, SiteIn, SitePatch, SiteOut, label="site", parents={"enterprise_id": Enterprise},
     filters=("enterprise_id",), on_change=publish_site)
crud(router, "/areas", Area, AreaIn, LevelPatch, AreaOut, label="area", parents={"site_id": Site}, filters=("site_id",))
crud(router, "/work-centers", WorkCenter, WorkCenterIn, WorkCenterPatch, WorkCenterOut, label="work center",
     parents={"area_id": Area}, filters=("area_id",), on_change=publish_work_center)
crud(router, "/work-units", WorkUnit, WorkUnitIn, WorkUnitPatch, WorkUnitOut, label="work unit",
     parents={"work_center_id": WorkCenter}, filters=("work_center_id",))


class TreeNode(ApiOut):
    id: uuid.UUID
    level: str
    code: str
    name: str
    kind: str | None = None
    children: list["TreeNode"] = []


@router.get("/enterprises/{enterprise_id}/tree", response_model=TreeNode)
async def hierarchy_tree(enterprise_id: uuid.UUID, uow: Uow, principal: Reader) -> TreeNode:
    """The active hierarchy under an enterprise: sites > areas > work centers > work units."""
    enterprise = await get_or_404(uow, Enterprise, enterprise_id, what="enterprise")
    sites = list(await uow.scalars(select(Site).where(Site.enterprise_id == enterprise.id, Site.is_active.is_(True))
                                   .order_by(Site.code)))
    areas = list(await uow.scalars(select(Area).where(Area.site_id.in_([s.id for s in sites]),
                                                      Area.is_active.is_(True)).order_by(Area.code)))
    centers = list(await uow.scalars(select(WorkCenter).where(WorkCenter.area_id.in_([a.id for a in areas]),
                                                              WorkCenter.is_active.is_(True))
                                     .order_by(WorkCenter.code)))
    units = list(await uow.scalars(select(WorkUnit).where(WorkUnit.work_center_id.in_([c.id for c in centers]),
                                                          WorkUnit.is_active.is_(True)).order_by(WorkUnit.code)))

    def node(row: Any, level: str, children: list[TreeNode]) -> TreeNode:
        return TreeNode(id=row.id, level=level, code=row.code, name=row.name, kind=getattr(row, "kind", None),
                        children=children)

    return node(enterprise, "Enterprise", [
        node(s, "Site", [
            node(a, "Area", [
                node(c, "WorkCenter", [node(u, "WorkUnit", []) for u in units if u.work_center_id == c.id])
                for c in centers if c.area_id == a.id])
            for a in areas if a.site_id == s.id])
        for s in sites])
