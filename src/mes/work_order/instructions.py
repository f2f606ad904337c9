"""Versioned work instructions: what the operator reads at an operation of a part.

Drafts are edited freely; a released version is immutable (an order that was released against it
keeps pointing at it). Releasing a new version supersedes the one in force; orders released
afterwards get the new one.
"""
from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from sqlalchemy import func, select

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut
from isles.audit_trail import audit
from isles.http import Page, Paged, PageOut, Uow, get_or_404, paged
from isles.orm import utcnow
from isles.text import Identifier, Name
from mes.work_order import reference
from mes.work_order.access import Engineer
from mes.work_order.models import WorkInstruction

router = APIRouter()


class InstructionIn(ApiModel):
    part_id: uuid.UUID
    operation_code: Identifier = Field(min_length=1, max_length=64, examples=["OP10"])
    title: Name = Field(min_length=1, max_length=255)
    body: str = Field(min_length=1, max_length=100_000, description="the steps (Markdown)")


class InstructionPatch(ApiModel):
    title: Name | None = Field(default=None, min_length=1, max_length=255)
    body: str | None = Field(default=None, min_length=1, max_length=100_000)


class InstructionOut(ApiOut):
    id: uuid.UUID
    part_id: uuid.UUID
    operation_code: str
    revision: int
    title: str
    body: str
    status: str
    approved_by_id: uuid.UUID | None
    released_at: datetime | None
    version: int


async def _get(uow: UnitOfWork, instruction_id: uuid.UUID) -> WorkInstruction:
    return await get_or_404(uow, WorkInstruction, instruction_id, what="work instruction")


@router.post("/work-instructions", status_code=status.HTTP_201_CREATED, response_model=InstructionOut)
async def post_instruction(data: InstructionIn, uow: Uow, _: Engineer) -> WorkInstruction:
    """A new draft version of the instruction for this part and operation."""
    part = (await reference.parts(uow, [data.part_id])).get(str(data.part_id))
    if part is None or not part["is_active"]:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"part {data.part_id} is unknown to work_order (or retired); parts arrive through "
                            "mes.material.part.created events")
    latest = await uow.scalar(select(func.max(WorkInstruction.revision)).where(
        WorkInstruction.part_id == data.part_id, WorkInstruction.operation_code == data.operation_code))
    row = WorkInstruction(**data.model_dump(), revision=(latest or 0) + 1)
    uow.add(row)
    await uow.commit()
    return row


@router.get("/work-instructions", response_model=PageOut[InstructionOut])
async def list_instructions(uow: Uow, page: Page, part_id: uuid.UUID | None = Query(None, alias="partId"),
                            operation_code: str | None = Query(None, alias="operationCode", max_length=64)
                            ) -> Paged[WorkInstruction]:
    query = select(WorkInstruction).order_by(WorkInstruction.operation_code, WorkInstruction.revision)
    if part_id is not None:
        query = query.where(WorkInstruction.part_id == part_id)
    if operation_code is not None:
        query = query.where(WorkInstruction.operation_code == operation_code)
    return await paged(uow, query, page)


@router.get("/work-instructions/{instruction_id}", response_model=InstructionOut)
async def get_instruction(instruction_id: uuid.UUID, uow: Uow) -> WorkInstruction:
    return await _get(uow, instruction_id)


@router.patch("/work-instructions/{instruction_id}", response_model=InstructionOut)
async def patch_instruction(instruction_id: uuid.UUID, data: InstructionPatch, uow: Uow,
                            _: Engineer) -> WorkInstruction:
    row = await _get(uow, instruction_id)
    if row.status != "draft":
        raise HTTPException(status.HTTP_409_CONFLICT, f"revision {row.revision} is {row.status}; "
                                                      "write a new version instead")
    for name, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(row, name, value)
    await uow.commit()
    return row


@router.post("/work-instructions/{instruction_id}/release", response_model=InstructionOut)
async def release_instruction(instruction_id: uuid.UUID, uow: Uow, principal: Engineer) -> WorkInstruction:
    row = await _get(uow, instruction_id)
    if row.status != "draft":
        raise HTTPException(status.HTTP_409_CONFLICT, f"revision {row.revision} is already {row.status}")
    for current in await uow.scalars(select(WorkInstruction).where(
            WorkInstruction.part_id == row.part_id, WorkInstruction.operation_code == row.operation_code,
            WorkInstruction.status == "released")):
        current.status = "superseded"
    row.status, row.released_at, row.approved_by_id = "released", utcnow(), uuid.UUID(principal.user_id)
    audit(uow, principal, "work_instruction.released", "work_instruction", row.id, {"status": ("draft", row.status)})
    await uow.commit()
    return row
