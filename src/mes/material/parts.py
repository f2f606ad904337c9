"""Parts: the material master. Retired, never erased - lots, BOMs and work orders refer to them."""
from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut
from isles.audit_trail import audit
from isles.http import Page, Paged, PageOut, Uow, paged
from isles.orm import apply_changes, utcnow
from isles.security import Principal
from isles.text import Identifier, Name, UpperIdentifier
from mes.material.access import Engineer
from mes.material.events import PartCreated, PartDeleted, PartUpdated
from mes.material.models import Part

router = APIRouter()
Tracking = Literal["lot", "serial", "none"]


class PartIn(ApiModel):
    part_number: UpperIdentifier = Field(min_length=1, max_length=64, examples=["P-12345"])
    name: Name = Field(min_length=1, max_length=255, examples=["Landing Gear Strut"])
    revision: Identifier = Field(default="A", min_length=1, max_length=16)
    unit_of_measure: Identifier = Field(default="EA", min_length=1, max_length=16)
    tracking: Tracking = Field(default="lot", description="lot, serial (each unit serialized) or none")


class PartPatch(ApiModel):
    part_number: UpperIdentifier | None = Field(default=None, min_length=1, max_length=64)
    name: Name | None = Field(default=None, min_length=1, max_length=255)
    revision: Identifier | None = Field(default=None, min_length=1, max_length=16)
    unit_of_measure: Identifier | None = Field(default=None, min_length=1, max_length=16)
    tracking: Tracking | None = None


class PartOut(ApiOut):
    id: uuid.UUID
    part_number: str
    name: str
    revision: str
    unit_of_measure: str
    tracking: str
    is_active: bool
    version: int


def part_updated(part: Part, changes: dict[str, Any] | None = None,
                 previous: dict[str, Any] | None = None) -> PartUpdated:
    """The part's whole current state (also what `isles resync` backfills copies from)."""
    return PartUpdated(part_id=str(part.id), part_number=part.part_number, part_name=part.name,
                       revision=part.revision, unit_of_measure=part.unit_of_measure, tracking=part.tracking,
                       changes=changes or {}, previous_values=previous or {})


async def get_part(uow: UnitOfWork, part_id: uuid.UUID, *, active: bool = True) -> Part:
    part: Part | None = await uow.get(Part, part_id)
    if part is None or (active and not part.is_active):
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"part {part_id} not found" + (" (or retired)" if active else ""))
    return part


async def _number_free(uow: UnitOfWork, number: str) -> None:
    if await uow.scalar(select(Part.id).where(Part.part_number == number)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"part number {number} is already used (part numbers are "
                                                      "never reused, not even those of retired parts)")


async def create_part(uow: UnitOfWork, data: PartIn) -> Part:
    await _number_free(uow, data.part_number)
    part = Part(**data.model_dump())
    uow.add(part)
    await uow.flush()
    uow.publish(PartCreated(part_id=str(part.id), part_number=part.part_number, part_name=part.name,
                            revision=part.revision, unit_of_measure=part.unit_of_measure, tracking=part.tracking),
                entity=part)
    return part


async def update_part(uow: UnitOfWork, part_id: uuid.UUID, patch: PartPatch,
                      principal: Principal | None = None) -> Part:
    part = await get_part(uow, part_id)
    changes = patch.model_dump(exclude_unset=True, exclude_none=True)
    if changes.get("part_number", part.part_number) != part.part_number:
        await _number_free(uow, changes["part_number"])
    changed, previous = apply_changes(part, changes)
    if changed:
        audit(uow, principal, "part.updated", "part", part.id, {k: (previous[k], v) for k, v in changed.items()})
        uow.publish(part_updated(part, {to_camel(k): v for k, v in changed.items()},
                                 {to_camel(k): v for k, v in previous.items()}), entity=part)
    return part


async def _commit(uow: UnitOfWork) -> None:
    try:
        await uow.commit()
    except IntegrityError:  # a concurrent request took the number between our check and the insert
        raise HTTPException(status.HTTP_409_CONFLICT, "part number is already used") from None


@router.post("/parts", status_code=status.HTTP_201_CREATED, response_model=PartOut)
async def post_part(data: PartIn, uow: Uow, _: Engineer) -> Part:
    part = await create_part(uow, data)
    await _commit(uow)
    return part


@router.get("/parts", response_model=PageOut[PartOut])
async def list_parts(uow: Uow, page: Page, include_retired: bool = Query(False, alias="includeRetired"),
                     part_number: str | None = Query(None, alias="partNumber", min_length=1, max_length=64,
                                                     description="the part with this number (any case)"),
                     ) -> Paged[Part]:
    query = select(Part).order_by(Part.part_number)
    if not include_retired:
        query = query.where(Part.is_active.is_(True))
    return await paged(uow, query, page, part_number=part_number.strip().upper() if part_number else None)


@router.get("/parts/{part_id}", response_model=PartOut)
async def read_part(part_id: uuid.UUID, uow: Uow) -> Part:
    return await get_part(uow, part_id, active=False)


@router.patch("/parts/{part_id}", response_model=PartOut)
async def patch_part(part_id: uuid.UUID, patch: PartPatch, uow: Uow, principal: Engineer) -> Part:
    part = await update_part(uow, part_id, patch, principal)
    await _commit(uow)
    return part


@router.delete("/parts/{part_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_part(part_id: uuid.UUID, uow: Uow, _: Engineer) -> None:
    """Retire the part: it can no longer be received or ordered; what refers to it keeps working."""
    part = await get_part(uow, part_id)
    part.is_active = False
    part.deleted_at = utcnow()
    uow.publish(PartDeleted(part_id=str(part.id), part_number=part.part_number), entity=part)
    await uow.commit()
