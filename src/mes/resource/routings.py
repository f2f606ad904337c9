"""Routings: a product's ordered operations, drafted, released (then immutable) and made obsolete.
Released and obsolete routings are published with their operations (work_order plans from them)."""
from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from isles import UnitOfWork
from isles.audit_trail import audit
from isles.http import Page, Paged, PageOut, Uow, get_or_404, paged
from mes.resource.access import Reader, Writer
from mes.resource.crud import Code, Name, Out, Schema
from mes.resource.events import RoutingStep, RoutingUpdated
from mes.resource.models import Operation, Product, Routing, Site, Skill, WorkCenter

router = APIRouter()


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
    routing = await get_or_404(uow, Routing, routing_id, what="routing")
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


@router.get("/routings", response_model=PageOut[RoutingOut])
async def list_routings(uow: Uow, principal: Reader, page: Page,
                        product_id: uuid.UUID | None = Query(None, alias="productId"),
                        code: str | None = Query(None, min_length=1, max_length=64,
                                                 description="the routing's code (every revision)"),
                        ) -> Paged[RoutingOut]:
    found = await paged(uow, select(Routing).order_by(Routing.code, Routing.revision), page, product_id=product_id,
                        code=code)
    return Paged([await _routing_out(uow, r) for r in found.items], found.total, found.limit, found.offset)


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
    audit(uow, principal, f"routing.{data.status}", "routing", routing.id, {"status": (routing.status, data.status)})
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
                         setup_minutes=float(o.setup_minutes or 0),
                         run_minutes_per_unit=float(o.run_minutes_per_unit or 0),
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
    operation: Operation | None = await uow.get(Operation, operation_id)
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
