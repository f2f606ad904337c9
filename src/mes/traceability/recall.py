"""Route: a recall simulation - everything made from a lot (or unit), rolled up for the recall."""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field

from isles.api import ApiOut
from isles.http import Uow
from mes.traceability import queries
from mes.traceability.genealogy import NodeKind, NodeOut, node_out

router = APIRouter()


class OrderImpact(ApiOut):
    work_order_id: str | None = None
    work_order_number: str | None = None
    lots: int
    serials: int


class ProductImpact(ApiOut):
    part_id: str | None = None
    part_number: str | None = None
    lots: int
    serials: int


class ShipmentImpact(ApiOut):
    shipment_id: str
    shipment_number: str | None = None
    customer: str | None = None
    lots: int = Field(description="affected lots in the shipment")
    serials: int = Field(description="affected units in the shipment")


class CustomerImpact(ApiOut):
    customer: str
    shipments: int
    lots: int
    serials: int


class RecallOut(ApiOut):
    root: NodeOut
    affected: int = Field(description="lots, units and shipments made from the root (the root included)")
    lots: int
    serials: int
    shipments: int
    by_work_order: list[OrderImpact]
    by_product: list[ProductImpact]
    by_shipment: list[ShipmentImpact]
    by_customer: list[CustomerImpact]


@router.get("/{kind}/{ref}/recall", response_model=RecallOut)
async def recall(kind: NodeKind, ref: str, uow: Uow) -> RecallOut:
    """Simulate recalling a lot or unit: what was made from it, by work order, product, shipment and customer."""
    root = await queries.resolve(uow, kind.code, ref)
    result, shipments, names = await queries.recall(uow, root)
    impact = result.impact
    root_labels = await queries.labels(uow, [root])
    return RecallOut(
        root=node_out(root, root_labels), affected=impact.affected, lots=impact.lots, serials=impact.serials,
        shipments=impact.shipments,
        by_work_order=[OrderImpact(work_order_id=names.order(row["workOrderKey"])[0],
                                   work_order_number=row["workOrderNumber"], lots=row["lots"], serials=row["serials"])
                       for row in result.by_work_order],
        by_product=[ProductImpact(part_id=names.part(row["partKey"])[0], part_number=row["partNumber"],
                                  lots=row["lots"], serials=row["serials"]) for row in result.by_product],
        by_shipment=sorted((ShipmentImpact(shipment_id=shipments[row["node"]].entity_id,
                                           shipment_number=shipments[row["node"]].number, customer=row["customer"],
                                           lots=row["lots"], serials=row["serials"])
                            for row in result.by_shipment if row["node"] in shipments),
                           key=lambda s: (s.customer or "", s.shipment_number or "")),
        by_customer=[CustomerImpact(**row) for row in result.by_customer])
