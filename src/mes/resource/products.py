"""Products: what the plant makes (each may name material's part), published for other services."""
from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from pydantic import Field

from isles import UnitOfWork
from mes.resource.crud import Code, Name, Out, Schema, camel, crud
from mes.resource.events import ProductUpdated
from mes.resource.models import Product, ReplicatedPart

router = APIRouter()


def product_event(product: Product, **changes: Any) -> ProductUpdated:
    return ProductUpdated(product_id=str(product.id), product_number=product.product_number,
                          product_name=product.name, revision=product.revision,
                          part_id=str(product.part_id) if product.part_id else None,
                          unit_of_measure=product.unit_of_measure, is_active=product.is_active, **changes)


async def publish_product(uow: UnitOfWork, product: Product, changed: dict[str, Any], previous: dict[str, Any]) -> None:
    if not changed or "part_id" in changed:  # created, or pointed at another part: copy its number now
        part = await uow.get(ReplicatedPart, product.part_id) if product.part_id else None
        product.part_number, product.part_version = (part.part_number, part.version) if part else (None, None)
    uow.publish(product_event(product, changes=camel(changed), previous_values=camel(previous)), entity=product)


class ProductIn(Schema):
    product_number: str = Code
    name: str = Name
    revision: str = Field(default="A", min_length=1, max_length=16)
    description: str | None = Field(default=None, max_length=2000)
    part_id: uuid.UUID | None = Field(default=None, description="material's part (no FK: other service)")
    unit_of_measure: str = Field(default="EA", min_length=1, max_length=16)


class ProductPatch(Schema):
    product_number: str | None = Field(default=None, min_length=1, max_length=64)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    revision: str | None = Field(default=None, min_length=1, max_length=16)
    description: str | None = Field(default=None, max_length=2000)
    part_id: uuid.UUID | None = None
    unit_of_measure: str | None = Field(default=None, min_length=1, max_length=16)
    is_active: bool | None = None


class ProductOut(Out):
    product_number: str
    name: str
    revision: str
    description: str | None
    part_id: uuid.UUID | None
    part_number: str | None = Field(default=None, description="material's part number (follows a rename)")
    unit_of_measure: str
    is_active: bool


crud(router, "/products", Product, ProductIn, ProductPatch, ProductOut, label="product", on_change=publish_product,
     order_by="product_number")
