"""HTTP API of the resource service.

Every endpoint needs a valid access token or API token (isles.security). Reads need the scope
``resource:read``; writes need the role engineer or admin and the scope ``resource:write``.
(User access tokens carry every scope; API tokens only the scopes they were issued with.)

This module deliberately has no ``from __future__ import annotations``: the generic CRUD
endpoints are built in a factory, and FastAPI must see their parameter types as objects.
"""
import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Callable, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import Field
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from isles import UnitOfWork
from isles.orm import apply_changes
from isles.api import ApiModel
from isles.security import Guard, Principal
from mes.resource.events import Qualification, RoutingStep, RoutingUpdated
from mes.resource.models import (Area, Certification, Enterprise, Equipment, Operation, Personnel, PersonnelClass,
                                 PersonnelSkill, Product, Routing, Site, Skill, Tool, WorkCenter, WorkUnit)
from mes.resource.service_def import personnel_event, product_event, service, site_event, work_center_event

guard = Guard(service)
router = APIRouter(dependencies=[Depends(guard.authenticated())])
Uow = Annotated[UnitOfWork, Depends(service.uow)]
OFFSET = Query(0, ge=0, le=1_000_000_000)
Reader = Annotated[Principal, Depends(guard.require_scopes("resource:read"))]
Writer = Annotated[Principal, Depends(guard.require(roles=("engineer", "admin"), scopes=("resource:write",)))]


Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


class Out(Schema):
    id: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime


Code = Field(min_length=1, max_length=64)
Name = Field(min_length=1, max_length=255)
WorkCenterKind = Literal["ProcessCell", "ProductionLine", "ProductionUnit", "StorageZone"]
WorkUnitKind = Literal["Unit", "WorkCell", "StorageUnit"]
EquipmentStatus = Literal["available", "in_use", "maintenance", "down", "retired"]
ToolStatus = Literal["available", "in_use", "calibration", "retired"]


def camel(values: dict[str, Any]) -> dict[str, Any]:
    def plain(v: Any) -> Any:
        if isinstance(v, (uuid.UUID, date, datetime)):
            return str(v) if isinstance(v, uuid.UUID) else v.isoformat()
        return float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, (int, float, bool)) else v
    return {to_camel(k): plain(v) for k, v in values.items()}


# -- the generic CRUD endpoints ------------------------------------------------------------------
OnChange = Callable[[UnitOfWork, Any, dict[str, Any], dict[str, Any]], Any]


def crud(path: str, model: type, create: type[Schema], patch: type[Schema], out: type[Schema], *,
         label: str, parents: dict[str, type] | None = None, filters: tuple[str, ...] = (),
         on_change: OnChange | None = None, order_by: str = "code") -> None:
    """POST/GET/GET one/PATCH/DELETE (= deactivate) for one entity; ``parents`` maps *_id fields to
    the model they must exist in; ``on_change`` publishes the entity's event in the same transaction."""
    parents = parents or {}

    async def check_parents(uow: UnitOfWork, values: dict[str, Any]) -> None:
        for field, parent in parents.items():
            if values.get(field) is not None and await uow.get(parent, values[field]) is None:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                    f"{to_camel(field)} {values[field]} does not exist")

    async def load(uow: UnitOfWork, entity_id: uuid.UUID) -> Any:
        row = await uow.get(model, entity_id)
        if row is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"{label} {entity_id} not found")
        return row

    async def commit(uow: UnitOfWork) -> None:
        try:
            await uow.commit()
        except IntegrityError:
            raise HTTPException(status.HTTP_409_CONFLICT, f"a {label} with these identifiers already exists") from None

    async def post(data: create, uow: Uow, principal: Writer) -> Any:  # type: ignore[valid-type]
        values = data.model_dump()
        await check_parents(uow, values)
        row = model(**values)
        uow.add(row)
        try:
            await uow.flush()
        except IntegrityError:
            raise HTTPException(status.HTTP_409_CONFLICT, f"a {label} with these identifiers already exists") from None
        if on_change is not None:
            await on_change(uow, row, {}, {})
        await commit(uow)
        return row

    async def list_(uow: Uow, principal: Reader, include_inactive: bool = Query(False, alias="includeInactive"),
                    limit: int = Query(100, ge=1, le=1000), offset: int = OFFSET,
                    parent_id: uuid.UUID | None = Query(None, alias="parentId",
                                                        description=f"filter by {', '.join(filters) or '-'}")) -> Any:
        query = select(model).order_by(getattr(model, order_by)).limit(limit).offset(offset)
        if not include_inactive and hasattr(model, "is_active"):
            query = query.where(model.is_active.is_(True))
        if parent_id is not None and filters:
            query = query.where(getattr(model, filters[0]) == parent_id)
        return list(await uow.scalars(query))

    async def get(entity_id: uuid.UUID, uow: Uow, principal: Reader) -> Any:
        return await load(uow, entity_id)

    async def patch_(entity_id: uuid.UUID, data: patch, uow: Uow, principal: Writer) -> Any:  # type: ignore[valid-type]
        row = await load(uow, entity_id)
        columns = model.__table__.c
        changes = {k: v for k, v in data.model_dump(exclude_unset=True).items()
                   if v is not None or (k in columns and columns[k].nullable)}
        await check_parents(uow, changes)
        changed, previous = apply_changes(row, changes)
        if not changed:
            return row
        try:
            await uow.flush()
        except IntegrityError:
            raise HTTPException(status.HTTP_409_CONFLICT, f"a {label} with these identifiers already exists") from None
        if on_change is not None:
            await on_change(uow, row, changed, previous)
        await commit(uow)
        return row

    async def delete(entity_id: uuid.UUID, uow: Uow, principal: Writer) -> Any:
        """Deactivate: rows other records (and other services) refer to are never erased."""
        row = await load(uow, entity_id)
        if getattr(row, "is_active", True):
            row.is_active = False
            await uow.flush()
            if on_change is not None:
                await on_change(uow, row, {"is_active": False}, {"is_active": True})
            await commit(uow)
        return row

    name = label.replace(" ", "_")
    router.add_api_route(path, post, methods=["POST"], status_code=201, response_model=out, name=f"create_{name}")
    router.add_api_route(path, list_, methods=["GET"], response_model=list[out], name=f"list_{name}")
    router.add_api_route(f"{path}/{{entity_id}}", get, methods=["GET"], response_model=out, name=f"get_{name}")
    router.add_api_route(f"{path}/{{entity_id}}", patch_, methods=["PATCH"], response_model=out, name=f"update_{name}")
    if hasattr(model, "is_active"):
        router.add_api_route(f"{path}/{{entity_id}}", delete, methods=["DELETE"], response_model=out,
                             name=f"deactivate_{name}")


# -- events --------------------------------------------------------------------------------------
async def publish_site(uow: UnitOfWork, site: Site, changed: dict, previous: dict) -> None:
    uow.publish(site_event(site, changes=camel(changed), previous_values=camel(previous)), entity=site)


async def publish_work_center(uow: UnitOfWork, center: WorkCenter, changed: dict, previous: dict) -> None:
    area = await uow.get(Area, center.area_id)
    uow.publish(work_center_event(center, area.site_id, changes=camel(changed), previous_values=camel(previous)),
                entity=center)


async def publish_product(uow: UnitOfWork, product: Product, changed: dict, previous: dict) -> None:
    uow.publish(product_event(product, changes=camel(changed), previous_values=camel(previous)), entity=product)


async def publish_personnel(uow: UnitOfWork, person: Personnel, changed: dict, previous: dict) -> None:
    skills = (await uow.execute(select(Skill.code, PersonnelSkill.level)
                                .join(Skill, Skill.id == PersonnelSkill.skill_id)
                                .where(PersonnelSkill.personnel_id == person.id).order_by(Skill.code))).all()
    certs = (await uow.execute(select(Certification, Skill.code).outerjoin(Skill, Skill.id == Certification.skill_id)
                               .where(Certification.personnel_id == person.id,
                                      Certification.is_revoked.is_(False)).order_by(Certification.name))).all()
    uow.publish(personnel_event(
        person,
        skills=[Qualification(skill_code=code, name=code, level=level) for code, level in skills],
        certifications=[Qualification(skill_code=code, name=c.name, level=c.level,
                                      valid_until=c.valid_until.isoformat() if c.valid_until else None)
                        for c, code in certs],
        changes=camel(changed), previous_values=camel(previous)), entity=person)


# -- the ISA-95 hierarchy ------------------------------------------------------------------------
class LevelIn(Schema):
    code: str = Code
    name: str = Name
    description: str | None = Field(default=None, max_length=2000)


class LevelPatch(Schema):
    code: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    is_active: bool | None = None


class LevelOut(Out):
    code: str
    name: str
    description: str | None
    is_active: bool


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


class EquipmentIn(LevelIn):
    work_center_id: uuid.UUID
    work_unit_id: uuid.UUID | None = None
    equipment_class: str | None = Field(default=None, max_length=64)
    manufacturer: str | None = Field(default=None, max_length=128)
    model: str | None = Field(default=None, max_length=128)
    serial_number: str | None = Field(default=None, max_length=128)
    status: EquipmentStatus = "available"


class EquipmentPatch(LevelPatch):
    work_unit_id: uuid.UUID | None = None
    status: EquipmentStatus | None = None
    serial_number: str | None = Field(default=None, max_length=128)


class EquipmentOut(LevelOut):
    work_center_id: uuid.UUID
    work_unit_id: uuid.UUID | None
    equipment_class: str | None
    manufacturer: str | None
    model: str | None
    serial_number: str | None
    status: str


crud("/enterprises", Enterprise, LevelIn, LevelPatch, EnterpriseOut, label="enterprise")
crud("/sites", Site, SiteIn, SitePatch, SiteOut, label="site", parents={"enterprise_id": Enterprise},
     filters=("enterprise_id",), on_change=publish_site)
crud("/areas", Area, AreaIn, LevelPatch, AreaOut, label="area", parents={"site_id": Site}, filters=("site_id",))
crud("/work-centers", WorkCenter, WorkCenterIn, WorkCenterPatch, WorkCenterOut, label="work center",
     parents={"area_id": Area}, filters=("area_id",), on_change=publish_work_center)
crud("/work-units", WorkUnit, WorkUnitIn, WorkUnitPatch, WorkUnitOut, label="work unit",
     parents={"work_center_id": WorkCenter}, filters=("work_center_id",))
crud("/equipment", Equipment, EquipmentIn, EquipmentPatch, EquipmentOut, label="equipment",
     parents={"work_center_id": WorkCenter, "work_unit_id": WorkUnit}, filters=("work_center_id",))


class TreeNode(Schema):
    id: uuid.UUID
    level: str
    code: str
    name: str
    kind: str | None = None
    children: list["TreeNode"] = []


@router.get("/enterprises/{enterprise_id}/tree", response_model=TreeNode)
async def hierarchy_tree(enterprise_id: uuid.UUID, uow: Uow, principal: Reader) -> TreeNode:
    """The active hierarchy under an enterprise: sites > areas > work centers > work units."""
    enterprise = await uow.get(Enterprise, enterprise_id)
    if enterprise is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"enterprise {enterprise_id} not found")
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


# -- personnel, skills, certifications -----------------------------------------------------------
class PersonnelIn(Schema):
    employee_number: str = Code
    first_name: str = Field(min_length=1, max_length=100)
    last_name: str = Field(min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=255)
    user_id: uuid.UUID | None = Field(default=None, description="the auth user of this person (no FK: other service)")
    personnel_class_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    work_center_id: uuid.UUID | None = None
    shift: str | None = Field(default=None, max_length=32)


class PersonnelPatch(Schema):
    first_name: str | None = Field(default=None, min_length=1, max_length=100)
    last_name: str | None = Field(default=None, min_length=1, max_length=100)
    email: str | None = Field(default=None, max_length=255)
    user_id: uuid.UUID | None = None
    personnel_class_id: uuid.UUID | None = None
    site_id: uuid.UUID | None = None
    work_center_id: uuid.UUID | None = None
    shift: str | None = Field(default=None, max_length=32)
    is_active: bool | None = None


class PersonnelOut(Out):
    employee_number: str
    first_name: str
    last_name: str
    email: str | None
    user_id: uuid.UUID | None
    personnel_class_id: uuid.UUID | None
    site_id: uuid.UUID | None
    work_center_id: uuid.UUID | None
    shift: str | None
    is_active: bool


crud("/personnel-classes", PersonnelClass, LevelIn, LevelPatch, LevelOut, label="personnel class")
crud("/skills", Skill, LevelIn, LevelPatch, LevelOut, label="skill")
crud("/personnel", Personnel, PersonnelIn, PersonnelPatch, PersonnelOut, label="personnel",
     parents={"personnel_class_id": PersonnelClass, "site_id": Site, "work_center_id": WorkCenter},
     filters=("work_center_id",), on_change=publish_personnel, order_by="employee_number")


class SkillLevelIn(Schema):
    skill_id: uuid.UUID
    level: int = Field(ge=1, le=5, description="1 trainee .. 5 expert/trainer")


class SkillLevelOut(Schema):
    skill_id: uuid.UUID
    skill_code: str
    level: int


class CertificationIn(Schema):
    name: str = Name
    skill_id: uuid.UUID | None = None
    certificate_number: str | None = Field(default=None, max_length=128)
    issuer: str | None = Field(default=None, max_length=255)
    level: int = Field(default=1, ge=1, le=5)
    valid_from: date
    valid_until: date | None = None


class CertificationOut(Out):
    personnel_id: uuid.UUID
    skill_id: uuid.UUID | None
    name: str
    certificate_number: str | None
    issuer: str | None
    level: int
    valid_from: date
    valid_until: date | None
    is_revoked: bool


class QualificationsOut(Schema):
    personnel_id: uuid.UUID
    skills: list[SkillLevelOut]
    certifications: list[CertificationOut]


async def _person(uow: UnitOfWork, personnel_id: uuid.UUID) -> Personnel:
    person = await uow.get(Personnel, personnel_id)
    if person is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"personnel {personnel_id} not found")
    return person


async def _touch(uow: UnitOfWork, person: Personnel, changed: dict, previous: dict) -> None:
    """A qualification changed: bump the person's version and publish personnel.updated."""
    person.updated_at = datetime.now(timezone.utc)
    await uow.flush()
    await publish_personnel(uow, person, changed, previous)


@router.get("/personnel/{personnel_id}/qualifications", response_model=QualificationsOut)
async def qualifications(personnel_id: uuid.UUID, uow: Uow, principal: Reader) -> QualificationsOut:
    person = await _person(uow, personnel_id)
    skills = (await uow.execute(select(PersonnelSkill, Skill.code).join(Skill, Skill.id == PersonnelSkill.skill_id)
                                .where(PersonnelSkill.personnel_id == person.id).order_by(Skill.code))).all()
    certs = await uow.scalars(select(Certification).where(Certification.personnel_id == person.id)
                              .order_by(Certification.valid_from))
    return QualificationsOut(personnel_id=person.id,
                             skills=[SkillLevelOut(skill_id=s.skill_id, skill_code=code, level=s.level)
                                     for s, code in skills],
                             certifications=[CertificationOut.model_validate(c) for c in certs])


@router.put("/personnel/{personnel_id}/skills", response_model=SkillLevelOut)
async def put_skill(personnel_id: uuid.UUID, data: SkillLevelIn, uow: Uow, principal: Writer) -> SkillLevelOut:
    """Set a person's level in a skill (creates or updates)."""
    person = await _person(uow, personnel_id)
    skill = await uow.get(Skill, data.skill_id)
    if skill is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"skillId {data.skill_id} does not exist")
    link = await uow.scalar(select(PersonnelSkill).where(PersonnelSkill.personnel_id == person.id,
                                                         PersonnelSkill.skill_id == skill.id))
    before = link.level if link else None
    if link is None:
        uow.add(PersonnelSkill(personnel_id=person.id, skill_id=skill.id, level=data.level))
    else:
        link.level = data.level
    if before != data.level:
        await _touch(uow, person, {f"skill:{skill.code}": data.level}, {f"skill:{skill.code}": before})
    await uow.commit()
    return SkillLevelOut(skill_id=skill.id, skill_code=skill.code, level=data.level)


@router.post("/personnel/{personnel_id}/certifications", status_code=201, response_model=CertificationOut)
async def post_certification(personnel_id: uuid.UUID, data: CertificationIn, uow: Uow,
                             principal: Writer) -> Certification:
    person = await _person(uow, personnel_id)
    if data.valid_until is not None and data.valid_until < data.valid_from:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "validUntil is before validFrom")
    if data.skill_id is not None and await uow.get(Skill, data.skill_id) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"skillId {data.skill_id} does not exist")
    cert = Certification(personnel_id=person.id, **data.model_dump())
    uow.add(cert)
    await uow.flush()
    await _touch(uow, person, {"certification": cert.name}, {})
    await uow.commit()
    return cert


@router.post("/certifications/{certification_id}/revoke", response_model=CertificationOut)
async def revoke_certification(certification_id: uuid.UUID, uow: Uow, principal: Writer) -> Certification:
    cert = await uow.get(Certification, certification_id)
    if cert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"certification {certification_id} not found")
    if not cert.is_revoked:
        cert.is_revoked = True
        await _touch(uow, await _person(uow, cert.personnel_id), {"certificationRevoked": cert.name}, {})
        await uow.commit()
    return cert


class ExpiryOut(Schema):
    certification_id: uuid.UUID
    personnel_id: uuid.UUID
    employee_number: str
    personnel_name: str
    name: str
    level: int
    valid_until: date
    days_left: int
    status: Literal["expired", "expiring"]


@router.get("/certifications/expiring", response_model=list[ExpiryOut])
async def expiring_certifications(uow: Uow, principal: Reader,
                                  within_days: int = Query(30, alias="withinDays", ge=0, le=3650),
                                  as_of: date | None = Query(None, alias="asOf",
                                                             description="the day to check (default: today, UTC)"),
                                  include_expired: bool = Query(True, alias="includeExpired")) -> list[ExpiryOut]:
    """Certifications of active personnel that have expired or expire within ``withinDays``,
    soonest first (revoked certifications are not listed)."""
    today = as_of or datetime.now(timezone.utc).date()
    try:
        horizon = today + timedelta(days=within_days)
    except OverflowError:
        horizon = date.max
    query = (select(Certification, Personnel).join(Personnel, Personnel.id == Certification.personnel_id)
             .where(Certification.valid_until.is_not(None), Certification.valid_until <= horizon,
                    Certification.is_revoked.is_(False), Personnel.is_active.is_(True))
             .order_by(Certification.valid_until, Personnel.employee_number))
    if not include_expired:
        query = query.where(Certification.valid_until >= today)
    out = []
    for cert, person in (await uow.execute(query)).all():
        out.append(ExpiryOut(certification_id=cert.id, personnel_id=person.id,
                             employee_number=person.employee_number,
                             personnel_name=f"{person.first_name} {person.last_name}", name=cert.name,
                             level=cert.level, valid_until=cert.valid_until,
                             days_left=(cert.valid_until - today).days,
                             status="expired" if cert.valid_until < today else "expiring"))
    return out


# -- products, routings, operations, tools -------------------------------------------------------
class ProductIn(Schema):
    product_number: str = Code
    name: str = Name
    revision: str = Field(default="A", min_length=1, max_length=16)
    description: str | None = Field(default=None, max_length=2000)
    part_id: uuid.UUID | None = Field(default=None, description="material's part (no FK: other service)")
    unit_of_measure: str = Field(default="EA", min_length=1, max_length=16)


class ProductPatch(Schema):
    product_number: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    revision: str | None = Field(default=None, min_length=1, max_length=16)
    description: str | None = Field(default=None, max_length=2000)
    part_id: uuid.UUID | None = None
    unit_of_measure: str | None = Field(default=None, min_length=1, max_length=16)
    is_active: bool | None = None


class ProductOut(Out):
    product_number: str
    name: str
    revision: str
    description: str | None
    part_id: uuid.UUID | None
    unit_of_measure: str
    is_active: bool


class ToolIn(Schema):
    tool_number: str = Code
    name: str = Name
    tool_type: str | None = Field(default=None, max_length=64)
    work_center_id: uuid.UUID | None = None
    status: ToolStatus = "available"
    calibration_due: date | None = None
    max_usage: int | None = Field(default=None, ge=1, le=2_000_000_000)


class ToolPatch(Schema):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    tool_type: str | None = Field(default=None, max_length=64)
    work_center_id: uuid.UUID | None = None
    status: ToolStatus | None = None
    calibration_due: date | None = None
    usage_count: int | None = Field(default=None, ge=0, le=2_000_000_000)
    max_usage: int | None = Field(default=None, ge=1, le=2_000_000_000)


class ToolOut(Out):
    tool_number: str
    name: str
    tool_type: str | None
    work_center_id: uuid.UUID | None
    status: str
    calibration_due: date | None
    usage_count: int
    max_usage: int | None


crud("/products", Product, ProductIn, ProductPatch, ProductOut, label="product", on_change=publish_product,
     order_by="product_number")
crud("/tools", Tool, ToolIn, ToolPatch, ToolOut, label="tool", parents={"work_center_id": WorkCenter},
     filters=("work_center_id",), order_by="tool_number")


class OperationIn(Schema):
    sequence: int = Field(ge=1, le=100000, description="order within the routing (e.g. 10, 20, 30); unique")
    code: str = Code
    name: str = Name
    description: str | None = Field(default=None, max_length=2000)
    work_center_id: uuid.UUID | None = None
    setup_minutes: float = Field(default=0, ge=0, le=1e7)
    run_minutes_per_unit: float = Field(default=0, ge=0, le=1e6)
    required_skill_id: uuid.UUID | None = None


class OperationPatch(Schema):
    sequence: int | None = Field(default=None, ge=1, le=100000)
    code: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    description: str | None = Field(default=None, max_length=2000)
    work_center_id: uuid.UUID | None = None
    setup_minutes: float | None = Field(default=None, ge=0, le=1e7)
    run_minutes_per_unit: float | None = Field(default=None, ge=0, le=1e6)
    required_skill_id: uuid.UUID | None = None


class OperationOut(Out):
    routing_id: uuid.UUID
    sequence: int
    code: str
    name: str
    description: str | None
    work_center_id: uuid.UUID | None
    setup_minutes: float
    run_minutes_per_unit: float
    required_skill_id: uuid.UUID | None


class RoutingIn(Schema):
    product_id: uuid.UUID
    site_id: uuid.UUID | None = None
    code: str = Code
    name: str = Name
    revision: str = Field(default="A", min_length=1, max_length=16)
    operations: list[OperationIn] = Field(default_factory=list, max_length=500)


class RoutingOut(Out):
    product_id: uuid.UUID
    site_id: uuid.UUID | None
    code: str
    name: str
    revision: str
    status: str
    operations: list[OperationOut] = []


class RoutingStatusIn(Schema):
    status: Literal["released", "obsolete"]


async def _routing_out(uow: UnitOfWork, routing: Routing) -> RoutingOut:
    out = RoutingOut.model_validate(routing)
    ops = await uow.scalars(select(Operation).where(Operation.routing_id == routing.id).order_by(Operation.sequence))
    out.operations = [OperationOut.model_validate(o) for o in ops]
    return out


async def _routing(uow: UnitOfWork, routing_id: uuid.UUID, *, editable: bool = False) -> Routing:
    routing = await uow.get(Routing, routing_id)
    if routing is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"routing {routing_id} not found")
    if editable and routing.status != "draft":
        raise HTTPException(status.HTTP_409_CONFLICT, f"routing {routing.code} rev {routing.revision} is "
                            f"{routing.status}; its operations can no longer change (create a new revision)")
    return routing


async def _check_operation_refs(uow: UnitOfWork, values: dict[str, Any]) -> None:
    for field, model in (("work_center_id", WorkCenter), ("required_skill_id", Skill)):
        if values.get(field) is not None and await uow.get(model, values[field]) is None:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"{to_camel(field)} {values[field]} does not exist")


@router.post("/routings", status_code=201, response_model=RoutingOut)
async def post_routing(data: RoutingIn, uow: Uow, principal: Writer) -> RoutingOut:
    """A routing for a product with its operations in order (sequence numbers unique per routing)."""
    sequences = [op.sequence for op in data.operations]
    duplicates = sorted({s for s in sequences if sequences.count(s) > 1})
    if duplicates:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"operation sequence numbers must be unique in a routing; repeated: {duplicates}")
    if await uow.get(Product, data.product_id) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"productId {data.product_id} does not exist")
    if data.site_id is not None and await uow.get(Site, data.site_id) is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"siteId {data.site_id} does not exist")
    routing = Routing(**data.model_dump(exclude={"operations"}))
    uow.add(routing)
    try:
        await uow.flush()
        for op in data.operations:
            values = op.model_dump()
            await _check_operation_refs(uow, values)
            uow.add(Operation(routing_id=routing.id, **values))
        await uow.commit()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"routing {data.code} rev {data.revision} already exists for this product") from None
    return await _routing_out(uow, routing)


@router.get("/routings", response_model=list[RoutingOut])
async def list_routings(uow: Uow, principal: Reader, product_id: uuid.UUID | None = Query(None, alias="productId"),
                        limit: int = Query(100, ge=1, le=1000), offset: int = OFFSET) -> list[RoutingOut]:
    query = select(Routing).order_by(Routing.code, Routing.revision).limit(limit).offset(offset)
    if product_id is not None:
        query = query.where(Routing.product_id == product_id)
    return [await _routing_out(uow, r) for r in await uow.scalars(query)]


@router.get("/routings/{routing_id}", response_model=RoutingOut)
async def get_routing(routing_id: uuid.UUID, uow: Uow, principal: Reader) -> RoutingOut:
    return await _routing_out(uow, await _routing(uow, routing_id))


@router.post("/routings/{routing_id}/status", response_model=RoutingOut)
async def set_routing_status(routing_id: uuid.UUID, data: RoutingStatusIn, uow: Uow, principal: Writer) -> RoutingOut:
    """draft -> released (needs at least one operation) -> obsolete."""
    routing = await _routing(uow, routing_id)
    allowed = {"draft": {"released", "obsolete"}, "released": {"obsolete"}, "obsolete": set()}
    if data.status not in allowed[routing.status]:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a {routing.status} routing cannot become {data.status}")
    has_operations = await uow.scalar(select(Operation.id).where(Operation.routing_id == routing.id).limit(1))
    if data.status == "released" and not has_operations:
        raise HTTPException(status.HTTP_409_CONFLICT, "a routing without operations cannot be released")
    routing.status = data.status
    await uow.flush()
    await publish_routing(uow, routing)
    await uow.commit()
    return await _routing_out(uow, routing)


async def publish_routing(uow: UnitOfWork, routing: Routing) -> None:
    """Tell consumers (work_order) about a released or obsolete routing, with its operations."""
    product = await uow.get(Product, routing.product_id)
    ops = await uow.scalars(select(Operation).where(Operation.routing_id == routing.id).order_by(Operation.sequence))
    steps = [RoutingStep(sequence=o.sequence, code=o.code, name=o.name,
                         work_center_id=str(o.work_center_id) if o.work_center_id else None,
                         setup_minutes=float(o.setup_minutes or 0), run_minutes_per_unit=float(o.run_minutes_per_unit or 0),
                         required_skill_id=str(o.required_skill_id) if o.required_skill_id else None) for o in ops]
    uow.publish(RoutingUpdated(routing_id=str(routing.id), product_id=str(routing.product_id),
                               part_id=str(product.part_id) if product and product.part_id else None,
                               site_id=str(routing.site_id) if routing.site_id else None, code=routing.code,
                               name=routing.name, revision=routing.revision, status=routing.status,
                               operations=steps), entity=routing)


@router.post("/routings/{routing_id}/operations", status_code=201, response_model=OperationOut)
async def post_operation(routing_id: uuid.UUID, data: OperationIn, uow: Uow, principal: Writer) -> Operation:
    routing = await _routing(uow, routing_id, editable=True)
    values = data.model_dump()
    await _check_operation_refs(uow, values)
    if await uow.scalar(select(Operation.id).where(Operation.routing_id == routing.id,
                                                   Operation.sequence == data.sequence)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"routing {routing.code} already has sequence {data.sequence}")
    operation = Operation(routing_id=routing.id, **values)
    uow.add(operation)
    try:
        await uow.commit()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"routing {routing.code} already has sequence {data.sequence}") from None
    return operation


@router.patch("/routings/{routing_id}/operations/{operation_id}", response_model=OperationOut)
async def patch_operation(routing_id: uuid.UUID, operation_id: uuid.UUID, data: OperationPatch, uow: Uow,
                          principal: Writer) -> Operation:
    await _routing(uow, routing_id, editable=True)
    operation = await uow.get(Operation, operation_id)
    if operation is None or operation.routing_id != routing_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"operation {operation_id} not found in routing {routing_id}")
    values = data.model_dump(exclude_unset=True)
    await _check_operation_refs(uow, values)
    for key, value in values.items():
        if key in ("sequence", "code", "name", "setup_minutes", "run_minutes_per_unit") and value is None:
            continue
        setattr(operation, key, value)
    try:
        await uow.commit()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"the routing already has sequence {data.sequence}") from None
    return operation


@router.delete("/routings/{routing_id}/operations/{operation_id}", status_code=204)
async def delete_operation(routing_id: uuid.UUID, operation_id: uuid.UUID, uow: Uow, principal: Writer) -> None:
    """Operations of a draft routing can be removed; released routings are immutable."""
    await _routing(uow, routing_id, editable=True)
    operation = await uow.get(Operation, operation_id)
    if operation is None or operation.routing_id != routing_id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"operation {operation_id} not found in routing {routing_id}")
    await uow.session.delete(operation)
    await uow.commit()
