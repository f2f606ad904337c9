"""HTTP API of the material service."""
from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import Field
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from isles import UnitOfWork
from isles.orm import apply_changes
from isles.api import ApiModel
from isles.security import Guard
from mes.material.events import PartCreated, PartDeleted, PartUpdated
from mes.material.models import Part
from mes.material.service_def import service

guard = Guard(service)
# Every route needs a valid access token or API token; writes need a role and the write scope.
router = APIRouter(dependencies=[Depends(guard.require_scopes("material:read"))])
CanWrite = Depends(guard.require(roles=("engineer", "admin"), scopes=("material:write",)))
Uow = Annotated[UnitOfWork, Depends(service.uow)]


Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


class PartIn(Schema):
    part_number: str = Field(min_length=1, max_length=64, examples=["P-12345"])
    name: str = Field(min_length=1, max_length=255, examples=["Landing Gear Strut"])
    revision: str = Field(default="A", min_length=1, max_length=16)
    unit_of_measure: str = Field(default="EA", min_length=1, max_length=16)


class PartPatch(Schema):
    part_number: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    revision: str | None = Field(default=None, min_length=1, max_length=16)
    unit_of_measure: str | None = Field(default=None, min_length=1, max_length=16)


class PartOut(Schema):
    id: uuid.UUID
    part_number: str
    name: str
    revision: str
    unit_of_measure: str
    is_active: bool
    version: int


def part_updated(part: Part, changes: dict | None = None, previous: dict | None = None) -> PartUpdated:
    return PartUpdated(part_id=str(part.id), part_number=part.part_number, part_name=part.name,
                       revision=part.revision, unit_of_measure=part.unit_of_measure,
                       changes=changes or {}, previous_values=previous or {})


async def _get(uow: UnitOfWork, part_id: uuid.UUID) -> Part:
    part = await uow.get(Part, part_id)
    if part is None or not part.is_active:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"part {part_id} not found")
    return part


async def create_part(uow: UnitOfWork, data: PartIn) -> Part:
    if await uow.scalar(select(Part.id).where(Part.part_number == data.part_number)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"part number {data.part_number} is already used")
    part = Part(part_number=data.part_number, name=data.name, revision=data.revision,
                unit_of_measure=data.unit_of_measure)
    uow.add(part)
    await uow.flush()
    uow.publish(PartCreated(part_id=str(part.id), part_number=part.part_number, part_name=part.name,
                            revision=part.revision, unit_of_measure=part.unit_of_measure), entity=part)
    return part


async def update_part(uow: UnitOfWork, part_id: uuid.UUID, patch: PartPatch) -> Part:
    part = await _get(uow, part_id)
    changes = patch.model_dump(exclude_unset=True, exclude_none=True)
    if "part_number" in changes and changes["part_number"] != part.part_number:
        if await uow.scalar(select(Part.id).where(Part.part_number == changes["part_number"])):
            raise HTTPException(status.HTTP_409_CONFLICT, f"part number {changes['part_number']} is already used")
    changed, previous = apply_changes(part, changes)
    if not changed:
        return part
    uow.publish(part_updated(part, {to_camel(k): v for k, v in changed.items()},
                             {to_camel(k): v for k, v in previous.items()}), entity=part)
    return part


@router.post("/parts", dependencies=[CanWrite], status_code=status.HTTP_201_CREATED, response_model=PartOut, response_model_by_alias=True)
async def post_part(data: PartIn, uow: Uow) -> Part:
    try:
        part = await create_part(uow, data)
        await uow.commit()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"part number {data.part_number} is already used") from None
    return part


@router.get("/parts", response_model=list[PartOut])
async def list_parts(uow: Uow, limit: int = 100, offset: int = 0) -> list[Part]:
    limit = max(1, min(limit, 1000))
    rows = await uow.scalars(select(Part).where(Part.is_active.is_(True)).order_by(Part.part_number)
                             .limit(limit).offset(max(offset, 0)))
    return list(rows)


@router.get("/parts/{part_id}", response_model=PartOut)
async def get_part(part_id: uuid.UUID, uow: Uow) -> Part:
    return await _get(uow, part_id)


@router.patch("/parts/{part_id}", dependencies=[CanWrite], response_model=PartOut)
async def patch_part(part_id: uuid.UUID, patch: PartPatch, uow: Uow) -> Part:
    try:
        part = await update_part(uow, part_id, patch)
        await uow.commit()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, "part number is already used") from None
    return part


@router.delete("/parts/{part_id}", dependencies=[CanWrite], status_code=status.HTTP_204_NO_CONTENT)
async def delete_part(part_id: uuid.UUID, uow: Uow) -> None:
    """Parts are retired, never erased: work orders and lots keep referring to them."""
    from isles.orm import utcnow
    part = await _get(uow, part_id)
    part.is_active = False
    part.deleted_at = utcnow()
    uow.publish(PartDeleted(part_id=str(part.id), part_number=part.part_number), entity=part)
    await uow.commit()
