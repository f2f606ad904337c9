"""The generic CRUD endpoints of the resource service's coded records (hierarchy levels, equipment,
personnel, products, tools): create, list, read, update and deactivate, in one place.

This module deliberately has no ``from __future__ import annotations``: the endpoints are built in
a factory, and FastAPI must see their parameter types as objects.
"""
import uuid
from datetime import date, datetime
from typing import Any, Callable

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import Field
from pydantic.alias_generators import to_camel
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from isles import UnitOfWork
from isles.api import ApiModel, ApiOut
from isles.audit_trail import audit
from isles.http import Page, PageOut, Uow, get_or_404, paged
from isles.orm import apply_changes
from mes.resource.access import Reader, Writer

Schema = ApiModel  # camelCase bodies, UTC times, no NUL characters (see isles.api)


class Out(ApiOut):
    id: uuid.UUID
    version: int
    created_at: datetime
    updated_at: datetime


Code = Field(min_length=1, max_length=64)
Name = Field(min_length=1, max_length=255)


def camel(values: dict[str, Any]) -> dict[str, Any]:
    """``changes`` / ``previousValues`` of an event: camelCase keys, JSON values."""
    def plain(v: Any) -> Any:
        if isinstance(v, (uuid.UUID, date, datetime)):
            return str(v) if isinstance(v, uuid.UUID) else v.isoformat()
        return float(v) if hasattr(v, "as_integer_ratio") and not isinstance(v, (int, float, bool)) else v
    return {to_camel(k): plain(v) for k, v in values.items()}


# -- the generic CRUD endpoints ------------------------------------------------------------------
OnChange = Callable[[UnitOfWork, Any, dict[str, Any], dict[str, Any]], Any]


def crud(router: APIRouter, path: str, model: type[Any], create: type[Schema], patch: type[Schema],
         out: type[Schema], *, label: str, parents: dict[str, type] | None = None, filters: tuple[str, ...] = (),
         on_change: OnChange | None = None, order_by: str = "code", natural_key: str | None = None) -> None:
    """POST/GET/GET one/PATCH/DELETE (= deactivate) for one entity; ``parents`` maps *_id fields to
    the model they must exist in; ``on_change`` publishes the entity's event in the same transaction.
    The list filters by the ``natural_key`` (default: the ``order_by`` column, e.g. ``?code=CNC-1``)."""
    parents = parents or {}
    natural_key = natural_key or order_by
    entity = label.replace(" ", "_")  # its name in the audit trail
    key_param = to_camel(natural_key)
    parent_help = f"filter by {', '.join(filters) or '-'}"

    async def check_parents(uow: UnitOfWork, values: dict[str, Any]) -> None:
        for field, parent in parents.items():
            if values.get(field) is not None and await uow.get(parent, values[field]) is None:
                raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                    f"{to_camel(field)} {values[field]} does not exist")

    async def load(uow: UnitOfWork, entity_id: uuid.UUID) -> Any:
        return await get_or_404(uow, model, entity_id, what=label)

    async def commit(uow: UnitOfWork) -> None:
        try:
            await uow.commit()
        except IntegrityError:
            raise HTTPException(status.HTTP_409_CONFLICT, f"a {label} with these identifiers already exists") from None

    async def post(data: Schema, uow: Uow, principal: Writer) -> Any:
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

    async def list_(uow: Uow, principal: Reader, page: Page,
                    include_inactive: bool = Query(False, alias="includeInactive"),
                    parent_id: uuid.UUID | None = Query(None, alias="parentId", description=parent_help),
                    key: str | None = Query(None, alias=key_param, min_length=1, max_length=255,
                                            description=f"the {label} with this {key_param}")) -> Any:
        query = select(model).order_by(getattr(model, order_by))
        if not include_inactive and hasattr(model, "is_active"):
            query = query.where(model.is_active.is_(True))
        return await paged(uow, query, page, **({filters[0]: parent_id} if filters else {}), **{natural_key: key})

    async def get(entity_id: uuid.UUID, uow: Uow, principal: Reader) -> Any:
        return await load(uow, entity_id)

    async def patch_(entity_id: uuid.UUID, data: Schema, uow: Uow, principal: Writer) -> Any:
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
        audit(uow, principal, f"{entity}.updated", entity, row.id, {k: (previous[k], v) for k, v in changed.items()})
        if on_change is not None:
            await on_change(uow, row, changed, previous)
        await commit(uow)
        return row

    async def delete(entity_id: uuid.UUID, uow: Uow, principal: Writer) -> Any:
        """Deactivate: rows other records (and other services) refer to are never erased."""
        row = await load(uow, entity_id)
        if getattr(row, "is_active", True):
            row.is_active = False
            audit(uow, principal, f"{entity}.deactivated", entity, row.id, {"is_active": (True, False)})
            await uow.flush()
            if on_change is not None:
                await on_change(uow, row, {"is_active": False}, {"is_active": True})
            await commit(uow)
        return row

    # The body models are classes known only at run time: FastAPI reads them from the annotations
    # (this module has no postponed annotations), and a type checker sees the Schema they derive from.
    post.__annotations__["data"] = create
    patch_.__annotations__["data"] = patch
    # PageOut[out], spelled as the call it is (a type checker would read PageOut[out] as a type)
    page_model = PageOut.__class_getitem__(out)
    name = label.replace(" ", "_")
    router.add_api_route(path, post, methods=["POST"], status_code=201, response_model=out, name=f"create_{name}")
    router.add_api_route(path, list_, methods=["GET"], response_model=page_model, name=f"list_{name}")
    router.add_api_route(f"{path}/{{entity_id}}", get, methods=["GET"], response_model=out, name=f"get_{name}")
    router.add_api_route(f"{path}/{{entity_id}}", patch_, methods=["PATCH"], response_model=out, name=f"update_{name}")
    if hasattr(model, "is_active"):
        router.add_api_route(f"{path}/{{entity_id}}", delete, methods=["DELETE"], response_model=out,
                             name=f"deactivate_{name}")


# -- the schemas of a coded record (hierarchy levels, personnel classes, skills) -------------------
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
