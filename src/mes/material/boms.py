"""Versioned bills of materials.

A part's BOM is built as a draft (version 1, 2, ...), then released. A released version never
changes - work orders were planned and material was issued against it - so a change is a new
draft (``POST .../boms`` copies the version in force when asked). Releasing a version makes the
one in force obsolete: a part has at most one released BOM at any time.

A BOM structure is a tree: releasing a version that would make a part contain itself, at any
depth (P-50001 contains P-50010, whose BOM would contain P-50001), is refused with the path.
Every release is checked, so the released BOMs never hold a cycle and the walk always ends.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import Field
from sqlalchemy import func, select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut, Quantity
from isles.audit_trail import audit
from isles.http import Page, Paged, PageOut, Uow, paged
from isles.orm import as_utc, utcnow
from isles.text import Identifier
from mes.material.access import Engineer
from mes.material.events import BomLine, BomReleased
from mes.material.models import Bom, BomItem, Part
from mes.material.parts import get_part

router = APIRouter()
BomVersion = Annotated[int, Path(ge=1, le=1_000_000)]
LineNumber = Annotated[int, Path(ge=1, le=100_000)]


class BomItemIn(ApiModel):
    line_number: int = Field(ge=1, le=100000, description="position in the BOM (10, 20, ...); unique")
    component_part_id: uuid.UUID
    quantity_per: Quantity = Field(gt=0, description="quantity of the component per one unit of the parent")
    unit_of_measure: Identifier | None = Field(default=None, min_length=1, max_length=16,
                                        description="defaults to the component's unit of measure")
    operation_code: Identifier | None = Field(default=None, min_length=1, max_length=64)


class BomIn(ApiModel):
    items: list[BomItemIn] = Field(default_factory=list, max_length=1000)
    notes: str | None = Field(default=None, max_length=4000)
    copy_released: bool = Field(default=False, description="start from the items of the version in force")


class BomItemOut(ApiOut):
    id: uuid.UUID
    line_number: int
    component_part_id: uuid.UUID
    component_part_number: str | None = None
    quantity_per: Quantity
    unit_of_measure: str
    operation_code: str | None


class BomOut(ApiOut):
    id: uuid.UUID
    part_id: uuid.UUID
    bom_version: int
    status: str
    notes: str | None
    released_at: datetime | None
    items: list[BomItemOut] = []
    version: int


async def bom_out(uow: UnitOfWork, bom: Bom) -> BomOut:
    rows = (await uow.execute(select(BomItem, Part.part_number).join(Part, Part.id == BomItem.component_part_id)
                              .where(BomItem.bom_id == bom.id).order_by(BomItem.line_number))).all()
    out = BomOut.model_validate(bom)
    out.items = [BomItemOut.model_validate(item).model_copy(update={"component_part_number": number})
                 for item, number in rows]
    return out


async def released_bom(uow: UnitOfWork, part_id: uuid.UUID) -> Bom | None:
    bom: Bom | None = await uow.scalar(select(Bom).where(Bom.part_id == part_id, Bom.status == "released"))
    return bom


async def _add_item(uow: UnitOfWork, bom: Bom, item: BomItemIn) -> BomItem:
    if item.component_part_id == bom.part_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "a part cannot be a component of itself")
    component = await uow.get(Part, item.component_part_id)
    if component is None or not component.is_active:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"componentPartId {item.component_part_id} is not an active part")
    if await uow.scalar(select(BomItem.id).where(BomItem.bom_id == bom.id, BomItem.line_number == item.line_number)):
        raise HTTPException(status.HTTP_409_CONFLICT, f"line {item.line_number} is already used in this BOM")
    row = BomItem(bom_id=bom.id, line_number=item.line_number, component_part_id=component.id,
                  quantity_per=item.quantity_per, unit_of_measure=item.unit_of_measure or component.unit_of_measure,
                  operation_code=item.operation_code)
    uow.add(row)
    await uow.flush()
    return row


async def _draft(uow: UnitOfWork, part_id: uuid.UUID, bom_version: int) -> Bom:
    bom: Bom | None = await uow.scalar(select(Bom).where(Bom.part_id == part_id, Bom.bom_version == bom_version))
    if bom is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"part {part_id} has no BOM version {bom_version}")
    if bom.status != "draft":
        raise HTTPException(status.HTTP_409_CONFLICT, f"BOM version {bom_version} is {bom.status}: it can no longer "
                                                      "change (create a new version with copyReleased=true)")
    return bom


async def create_bom(uow: UnitOfWork, part_id: uuid.UUID, data: BomIn) -> Bom:
    part = await get_part(uow, part_id)
    latest = await uow.scalar(select(func.max(Bom.bom_version)).where(Bom.part_id == part.id))
    bom = Bom(part_id=part.id, bom_version=(latest or 0) + 1, notes=data.notes)
    uow.add(bom)
    await uow.flush()
    items = list(data.items)
    if data.copy_released:
        current = await released_bom(uow, part.id)
        if current is None:
            raise HTTPException(status.HTTP_409_CONFLICT, f"part {part.part_number} has no released BOM to copy")
        given = {i.line_number for i in items}
        for old in await uow.scalars(select(BomItem).where(BomItem.bom_id == current.id)):
            if old.line_number not in given:
                items.append(BomItemIn(line_number=old.line_number, component_part_id=old.component_part_id,
                                       quantity_per=old.quantity_per, unit_of_measure=old.unit_of_measure,
                                       operation_code=old.operation_code))
    for item in sorted(items, key=lambda i: i.line_number):
        await _add_item(uow, bom, item)
    return bom


async def _components(uow: UnitOfWork, bom_id: uuid.UUID) -> list[uuid.UUID]:
    return list(await uow.scalars(select(BomItem.component_part_id).where(BomItem.bom_id == bom_id)
                                  .order_by(BomItem.line_number)))


async def _cycle(uow: UnitOfWork, part_id: uuid.UUID, bom: Bom) -> list[uuid.UUID] | None:
    """The path from ``part_id`` back to itself through ``bom`` and the released BOMs below it, if any."""
    children: dict[uuid.UUID, list[uuid.UUID]] = {part_id: await _components(uow, bom.id)}
    stack: list[tuple[uuid.UUID, list[uuid.UUID]]] = [(c, [part_id, c]) for c in reversed(children[part_id])]
    seen: set[uuid.UUID] = set()
    while stack:
        node, path = stack.pop()
        if node == part_id:
            return path
        if node in seen:
            continue
        seen.add(node)
        below = await released_bom(uow, node)
        for child in reversed(await _components(uow, below.id) if below else []):
            stack.append((child, [*path, child]))
    return None


async def release_bom(uow: UnitOfWork, part_id: uuid.UUID, bom_version: BomVersion, released_by: str | None) -> Bom:
    bom = await _draft(uow, part_id, bom_version)
    if not await uow.scalar(select(BomItem.id).where(BomItem.bom_id == bom.id).limit(1)):
        raise HTTPException(status.HTTP_409_CONFLICT, "a BOM without items cannot be released")
    path = await _cycle(uow, part_id, bom)
    if path is not None:
        numbers = {p.id: p.part_number for p in await uow.scalars(select(Part).where(Part.id.in_(set(path))))}
        shown = " -> ".join(numbers.get(p, str(p)) for p in path)
        raise HTTPException(status.HTTP_409_CONFLICT, f"BOM version {bom_version} of part {numbers.get(part_id)} "
                                                      f"would make it contain itself: {shown}; remove the line "
                                                      "that closes the loop")
    current = await released_bom(uow, part_id)
    if current is not None:
        current.status = "obsolete"
        await uow.flush()  # one released version at a time, also for the unique check below
    bom.status, bom.released_at, bom.released_by = "released", utcnow(), released_by
    return bom


@router.post("/parts/{part_id}/boms", status_code=status.HTTP_201_CREATED, response_model=BomOut)
async def post_bom(part_id: uuid.UUID, data: BomIn, uow: Uow, _: Engineer) -> BomOut:
    """A new draft version of the part's BOM (optionally starting from the version in force)."""
    bom = await create_bom(uow, part_id, data)
    await uow.commit()
    return await bom_out(uow, bom)


@router.get("/parts/{part_id}/boms", response_model=PageOut[BomOut])
async def list_boms(part_id: uuid.UUID, uow: Uow, page: Page) -> Paged[BomOut]:
    await get_part(uow, part_id, active=False)
    found = await paged(uow, select(Bom).where(Bom.part_id == part_id).order_by(Bom.bom_version), page)
    return Paged([await bom_out(uow, b) for b in found.items], found.total, found.limit, found.offset)


@router.get("/parts/{part_id}/bom", response_model=BomOut)
async def get_released_bom(part_id: uuid.UUID, uow: Uow) -> BomOut:
    """The BOM in force (the released version)."""
    bom = await released_bom(uow, part_id)
    if bom is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"part {part_id} has no released BOM")
    return await bom_out(uow, bom)


@router.post("/parts/{part_id}/boms/{bom_version}/items", status_code=status.HTTP_201_CREATED,
             response_model=BomOut)
async def post_bom_item(part_id: uuid.UUID, bom_version: BomVersion, item: BomItemIn, uow: Uow, _: Engineer) -> BomOut:
    bom = await _draft(uow, part_id, bom_version)
    await _add_item(uow, bom, item)
    await uow.commit()
    return await bom_out(uow, bom)


@router.delete("/parts/{part_id}/boms/{bom_version}/items/{line_number}", response_model=BomOut)
async def delete_bom_item(part_id: uuid.UUID, bom_version: BomVersion, line_number: LineNumber, uow: Uow,
                          _: Engineer) -> BomOut:
    bom = await _draft(uow, part_id, bom_version)
    item = await uow.scalar(select(BomItem).where(BomItem.bom_id == bom.id, BomItem.line_number == line_number))
    if item is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"BOM version {bom_version} has no line {line_number}")
    await uow.session.delete(item)
    await uow.commit()
    return await bom_out(uow, bom)


@router.post("/parts/{part_id}/boms/{bom_version}/release", response_model=BomOut)
async def post_release_bom(part_id: uuid.UUID, bom_version: BomVersion, uow: Uow, principal: Engineer) -> BomOut:
    """Put this draft in force; the previous released version becomes obsolete."""
    bom = await release_bom(uow, part_id, bom_version, principal.user_id)
    audit(uow, principal, "bom.released", "bom", bom.id, {"status": ("draft", bom.status)})
    out = await bom_out(uow, bom)
    part = await get_part(uow, part_id, active=False)
    assert bom.released_at is not None  # release_bom stamped it
    uow.publish(BomReleased(part_id=str(part_id), part_number=part.part_number, bom_version=bom.bom_version, items=[
        BomLine(line_number=i.line_number, component_part_id=str(i.component_part_id),
                component_part_number=i.component_part_number or "", quantity_per=i.quantity_per,
                unit_of_measure=i.unit_of_measure, operation_code=i.operation_code) for i in out.items]),
        key=str(part_id), version=int(as_utc(bom.released_at).timestamp() * 1_000_000))
    await uow.commit()
    return out
