"""Personnel with their classes, skills and certifications, and the certifications about to expire.
A person's event carries their current qualifications, so any change to them republishes it."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from sqlalchemy import func, select

from isles import UnitOfWork
from isles.api import ApiOut
from isles.http import Page, Paged, PageOut, Uow, get_or_404
from mes.resource.access import Reader, Writer
from mes.resource.crud import Code, LevelIn, LevelOut, LevelPatch, Name, Out, Schema, camel, crud
from mes.resource.events import PersonnelUpdated, Qualification
from mes.resource.models import Certification, Personnel, PersonnelClass, PersonnelSkill, Site, Skill, WorkCenter

router = APIRouter()


def personnel_event(person: Personnel, **extra: Any) -> PersonnelUpdated:
    return PersonnelUpdated(personnel_id=str(person.id), employee_number=person.employee_number,
                            first_name=person.first_name, last_name=person.last_name,
                            display_name=f"{person.first_name} {person.last_name}".strip(),
                            user_id=str(person.user_id) if person.user_id else None,
                            work_center_id=str(person.work_center_id) if person.work_center_id else None,
                            is_active=person.is_active, **extra)


async def publish_personnel(uow: UnitOfWork, person: Personnel, changed: dict[str, Any],
                            previous: dict[str, Any]) -> None:
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


crud(router, "/personnel-classes", PersonnelClass, LevelIn, LevelPatch, LevelOut, label="personnel class")
crud(router, "/skills", Skill, LevelIn, LevelPatch, LevelOut, label="skill")
crud(router, "/personnel", Personnel, PersonnelIn, PersonnelPatch, PersonnelOut, label="personnel",
     parents={"personnel_class_id": PersonnelClass, "site_id": Site, "work_center_id": WorkCenter},
     filters=("work_center_id",), on_change=publish_personnel, order_by="employee_number")


class SkillLevelIn(Schema):
    skill_id: uuid.UUID
    level: int = Field(ge=1, le=5, description="1 trainee .. 5 expert/trainer")


class SkillLevelOut(ApiOut):
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


class QualificationsOut(ApiOut):
    personnel_id: uuid.UUID
    skills: list[SkillLevelOut]
    certifications: list[CertificationOut]


async def _person(uow: UnitOfWork, personnel_id: uuid.UUID) -> Personnel:
    return await get_or_404(uow, Personnel, personnel_id, what="personnel")


async def _touch(uow: UnitOfWork, person: Personnel, changed: dict[str, Any], previous: dict[str, Any]) -> None:
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
    cert = await get_or_404(uow, Certification, certification_id, what="certification")
    if not cert.is_revoked:
        cert.is_revoked = True
        await _touch(uow, await _person(uow, cert.personnel_id), {"certificationRevoked": cert.name}, {})
        await uow.commit()
    return cert


class ExpiryOut(ApiOut):
    certification_id: uuid.UUID
    personnel_id: uuid.UUID
    employee_number: str
    personnel_name: str
    name: str
    level: int
    valid_until: date
    days_left: int
    status: Literal["expired", "expiring"]


@router.get("/certifications/expiring", response_model=PageOut[ExpiryOut])
async def expiring_certifications(uow: Uow, principal: Reader, page: Page,
                                  within_days: int = Query(30, alias="withinDays", ge=0, le=3650),
                                  as_of: date | None = Query(None, alias="asOf",
                                                             description="the day to check (default: today, UTC)"),
                                  include_expired: bool = Query(True, alias="includeExpired")) -> Paged[ExpiryOut]:
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
    total = await uow.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    out = []
    for cert, person in (await uow.execute(query.limit(page.limit).offset(page.offset))).all():
        out.append(ExpiryOut(certification_id=cert.id, personnel_id=person.id,
                             employee_number=person.employee_number,
                             personnel_name=f"{person.first_name} {person.last_name}", name=cert.name,
                             level=cert.level, valid_until=cert.valid_until,
                             days_left=(cert.valid_until - today).days,
                             status="expired" if cert.valid_until < today else "expiring"))
    return Paged(out, int(total or 0), page.limit, page.offset)
