"""Equipment: the machines of a work center (optionally of one of its work units), with their status."""
from __future__ import annotations

import uuid
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from mes.resource.crud import LevelIn, LevelOut, LevelPatch, crud
from mes.resource.models import Equipment, WorkCenter, WorkUnit

router = APIRouter()
EquipmentStatus = Literal["available", "in_use", "maintenance", "down", "retired"]


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


crud(router, "/equipment", Equipment, EquipmentIn, EquipmentPatch, EquipmentOut, label="equipment",
     parents={"work_center_id": WorkCenter, "work_unit_id": WorkUnit}, filters=("work_center_id",))
