"""Tools: fixtures and gauges with their calibration due dates and usage counts."""
from __future__ import annotations

import uuid
from datetime import date
from typing import Literal

from fastapi import APIRouter
from pydantic import Field

from mes.resource.crud import Code, Name, Out, Schema, crud
from mes.resource.models import Tool, WorkCenter

router = APIRouter()
ToolStatus = Literal["available", "in_use", "calibration", "retired"]


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


crud(router, "/tools", Tool, ToolIn, ToolPatch, ToolOut, label="tool", parents={"work_center_id": WorkCenter},
     filters=("work_center_id",), order_by="tool_number")
