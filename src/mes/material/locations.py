"""Storage locations, and inventory: what is on hand, per part and location, read from the lots.

Inventory is not a table of its own: the lots are the record (each with a quantity, status and
location), and a second copy of the same numbers would sooner or later disagree with them.
"""
from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.exc import IntegrityError

from isles.api import ApiModel, ApiOut, Quantity
from isles.http import Page, Paged, PageOut, Uow, get_or_404, page_of, paged
from isles.orm import utcnow
from isles.text import Identifier, Name
from mes.material.access import Engineer
from mes.material.lots import ON_HAND
from mes.material.models import Location, MaterialLot, Part

router = APIRouter()
Kind = Literal["warehouse", "stores", "line_side", "quarantine", "shipping", "finished_goods"]


class LocationIn(ApiModel):
    code: Identifier = Field(min_length=1, max_length=64)
    name: Name = Field(min_length=1, max_length=255)
    kind: Kind = "warehouse"
    site_id: uuid.UUID | None = None


class LocationPatch(ApiModel):
    name: Name | None = Field(default=None, min_length=1, max_length=255)
    kind: Kind | None = None
    is_active: bool | None = None


class LocationOut(ApiOut):
    id: uuid.UUID
    code: str
    name: str
    kind: str
    site_id: uuid.UUID | None
    is_active: bool
    version: int


class InventoryRow(ApiOut):
    part_id: uuid.UUID
    part_number: str
    location_id: uuid.UUID | None
    location_code: str | None
    unit_of_measure: str
    available: Quantity = Field(description="released lots: may be issued")
    received: Quantity = Field(description="received, not yet dispositioned")
    quarantine: Quantity
    expired: Quantity = Field(default=Decimal(0), description="past its expiry: not available")
    lots: int


@router.post("/locations", status_code=status.HTTP_201_CREATED, response_model=LocationOut)
async def post_location(data: LocationIn, uow: Uow, _: Engineer) -> Location:
    if await uow.scalar(select(Location.id).where(Location.code == data.code)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"location code {data.code} is already used")
    location = Location(**data.model_dump())
    uow.add(location)
    try:
        await uow.commit()
    except IntegrityError:
        raise HTTPException(status.HTTP_409_CONFLICT, f"location code {data.code} is already used") from None
    return location


@router.get("/locations", response_model=PageOut[LocationOut])
async def list_locations(uow: Uow, page: Page, code: str | None = Query(None, min_length=1, max_length=64,
                                                                        description="the location with this code")
                         ) -> Paged[Location]:
    query = select(Location).order_by(Location.code)
    if code is not None:
        query = query.where(Location.code == code)
    return await paged(uow, query, page)


@router.patch("/locations/{location_id}", response_model=LocationOut)
async def patch_location(location_id: uuid.UUID, data: LocationPatch, uow: Uow, _: Engineer) -> Location:
    location = await get_or_404(uow, Location, location_id, what="location")
    for name, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(location, name, value)
    await uow.commit()
    return location


@router.get("/inventory", response_model=PageOut[InventoryRow])
async def inventory(uow: Uow, page: Page, part_id: uuid.UUID | None = Query(None, alias="partId"),
                    location_id: uuid.UUID | None = Query(None, alias="locationId")) -> Paged[InventoryRow]:
    """On-hand quantities per part and location, by status (lots received, quarantined or released).

    A lot past its expiry counts as ``expired`` - never as available - from the moment it expires,
    whether or not the expire-due sweep has marked it yet; lots marked expired count there too."""
    due = and_(MaterialLot.expires_at.is_not(None), MaterialLot.expires_at <= utcnow())
    bucket = case((or_(MaterialLot.status == "expired", due), "expired"), else_=MaterialLot.status)
    query = (select(MaterialLot.part_id, Part.part_number, MaterialLot.location_id, Location.code,
                    MaterialLot.unit_of_measure, bucket, func.sum(MaterialLot.quantity), func.count())
             .join(Part, Part.id == MaterialLot.part_id)
             .outerjoin(Location, Location.id == MaterialLot.location_id)
             .where(MaterialLot.status.in_((*ON_HAND, "expired")), MaterialLot.quantity > 0)
             .group_by(MaterialLot.part_id, Part.part_number, MaterialLot.location_id, Location.code,
                       MaterialLot.unit_of_measure, bucket)
             .order_by(Part.part_number, Location.code))
    if part_id is not None:
        query = query.where(MaterialLot.part_id == part_id)
    if location_id is not None:
        query = query.where(MaterialLot.location_id == location_id)
    rows: dict[tuple[Any, ...], InventoryRow] = {}
    for part, number, location, code, unit, lot_status, total, count in (await uow.execute(query)).all():
        row = rows.setdefault((part, location, unit), InventoryRow(
            part_id=part, part_number=number, location_id=location, location_code=code, unit_of_measure=unit,
            available=Decimal(0), received=Decimal(0), quarantine=Decimal(0), expired=Decimal(0), lots=0))
        setattr(row, "available" if lot_status == "released" else lot_status,
                Decimal(str(total)).quantize(Decimal("0.000001")))
        row.lots += count
    return page_of(list(rows.values()), page)
