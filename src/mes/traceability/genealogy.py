"""Routes: the genealogy of a lot, a unit or a shipment - traces, pictures, as-built, upstream checks."""
from __future__ import annotations

import enum
from typing import Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import Field
from sqlalchemy import select

from isles.api import ApiOut, Quantity
from isles.http import Page, Paged, PageOut, Uow, paged
from mes.traceability import picture, queries
from mes.traceability.models import KIND_CODES, TraceEdge, TraceNode, TracePart
from mes.traceability.queries import Direction, Labels

router = APIRouter()


class NodeKind(str, enum.Enum):
    """Which kind of node a path names."""

    lots = "lots"
    serials = "serials"
    shipments = "shipments"

    @property
    def code(self) -> int:
        return KIND_CODES[self.value[:-1]]


Depth = Query(None, ge=1, le=1000, description="levels to walk (1: one up / one down); all when omitted")


class NodeOut(ApiOut):
    key: str = Field(description="kind:id, unique in a trace")
    id: str = Field(description="the owning service's id of the lot, unit or shipment")
    kind: str
    number: str | None = None
    part_id: str | None = None
    part_number: str | None = None
    work_order_id: str | None = None
    work_order_number: str | None = None
    status: str | None = None
    quantity: Quantity | None = None
    unit_of_measure: str | None = None
    origin: str
    supplier: str | None = None
    supplier_lot_number: str | None = None
    customer: str | None = None
    depth: int = Field(0, description="distance from the root: negative upstream, positive downstream")


class EdgeOut(ApiOut):
    parent: str
    child: str
    kind: str
    quantity: Quantity | None = None
    work_order_id: str | None = None
    work_order_number: str | None = None
    operation_code: str | None = None


class TraceOut(ApiOut):
    root: NodeOut
    direction: str
    nodes: list[NodeOut]
    edges: list[EdgeOut]
    truncated: bool = Field(description="more nodes were reached than `limit`; the nearest levels are listed")


class UpstreamOut(ApiOut):
    upstream: bool = Field(description="the first node went (through any number of steps) into the second")
    path: list[NodeOut] = Field(description="a shortest chain from the first to the second, when upstream")


class AsBuiltOut(ApiOut):
    node: NodeOut
    quantity: Quantity | None = None
    edge_kind: str | None = None
    operation_code: str | None = None
    repeated: bool = Field(default=False,
                           description="shown in full elsewhere in the tree (or a cycle): not expanded again")
    components: list["AsBuiltOut"] = []


def key(node: TraceNode) -> str:
    return f"{queries.kind_name(node.kind)}:{node.entity_id}"


def node_out(node: TraceNode, labels: Labels, depth: int = 0) -> NodeOut:
    part_id, part_number = labels.part(node.part_key)
    order_id, order_number = labels.order(node.work_order_key)
    return NodeOut(key=key(node), id=node.entity_id, kind=queries.kind_name(node.kind), number=node.number,
                   part_id=part_id, part_number=part_number, work_order_id=order_id, work_order_number=order_number,
                   status=node.status, quantity=node.quantity, unit_of_measure=node.unit_of_measure, origin=node.origin,
                   supplier=node.supplier, supplier_lot_number=node.supplier_lot_number, customer=node.customer,
                   depth=depth)


def edge_out(edge: TraceEdge, nodes: dict[int, TraceNode], labels: Labels) -> EdgeOut:
    order_id, order_number = labels.order(edge.work_order_key)
    return EdgeOut(parent=key(nodes[edge.parent_id]), child=key(nodes[edge.child_id]), kind=edge.kind,
                   quantity=edge.quantity, work_order_id=order_id, work_order_number=order_number,
                   operation_code=edge.operation_code)


@router.get("/nodes", response_model=PageOut[NodeOut])
async def list_nodes(uow: Uow, page: Page, kind: Literal["lot", "serial", "shipment"] | None = None,
                     number: str | None = Query(None, max_length=128),
                     part_number: str | None = Query(None, alias="partNumber", max_length=64)) -> Paged[NodeOut]:
    """The lots, units and shipments the genealogy knows, by number."""
    query = select(TraceNode).order_by(TraceNode.id)
    if part_number is not None:
        query = query.join(TracePart, TracePart.id == TraceNode.part_key).where(TracePart.part_number == part_number)
    rows = await paged(uow, query, page, kind=KIND_CODES[kind] if kind else None, number=number)
    found = await queries.labels(uow, rows.items)
    return Paged([node_out(row, found) for row in rows.items], rows.total, rows.limit, rows.offset)


async def _trace(uow: Uow, kind: NodeKind, ref: str, direction: Direction, depth: int | None,
                 limit: int) -> queries.Trace:
    root = await queries.resolve(uow, kind.code, ref)
    return await queries.trace(uow, root, direction, depth, limit)


@router.get("/{kind}/{ref}/genealogy", response_model=TraceOut)
async def genealogy(kind: NodeKind, ref: str, uow: Uow, direction: Direction = "both", depth: int | None = Depth,
                    limit: int = Query(5000, ge=1, le=50000)) -> TraceOut:
    """Where-from (backward), where-used (forward) or both, of a lot, unit or shipment (by id or number)."""
    found = await _trace(uow, kind, ref, direction, depth, limit)
    nearest_first = sorted(found.depth.items(), key=lambda i: (i[1], i[0]))
    nodes = [node_out(found.nodes[n], found.labels, d) for n, d in nearest_first if n in found.nodes]
    return TraceOut(root=node_out(found.root, found.labels), direction=direction, nodes=nodes,
                    edges=[edge_out(e, found.nodes, found.labels) for e in found.edges], truncated=found.truncated)


@router.get("/{kind}/{ref}/genealogy.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}, "description": "the genealogy as a picture"}})
async def genealogy_picture(kind: NodeKind, ref: str, uow: Uow, direction: Direction = "both",
                            depth: int | None = Depth, limit: int = Query(500, ge=1, le=2000)) -> Response:
    """The genealogy as an SVG picture: upstream on the left, downstream on the right, quantities on the edges."""
    found = await _trace(uow, kind, ref, direction, depth, limit)
    boxes = []
    for node_id, distance in found.depth.items():
        node = found.nodes.get(node_id)
        if node is None:
            continue
        out = node_out(node, found.labels, distance)
        subtitle = out.customer if node.kind == 3 else " ".join(filter(None, [out.part_number, out.work_order_number]))
        fields = out.model_dump(by_alias=True, exclude_none=True)
        detail = "\n".join(f"{name}: {value}" for name, value in fields.items() if name not in ("key", "depth"))
        boxes.append(picture.Box(node_id, out.kind, out.number or out.id[:8], subtitle or out.origin, distance, detail))
    arrows = []
    for edge in found.edges:
        link = edge_out(edge, found.nodes, found.labels)
        quantity = f"{edge.quantity.normalize():f}" if edge.quantity is not None else ""
        detail = " ".join(filter(None, [edge.kind, quantity, link.work_order_number, link.operation_code]))
        arrows.append(picture.Arrow(edge.parent_id, edge.child_id, quantity, detail))
    root = node_out(found.root, found.labels)
    note = f"{direction} trace, {len(boxes)} nodes, {len(arrows)} edges" + (
        f" (the nearest {limit}; more exist)" if found.truncated else "")
    svg = picture.render(f"Genealogy of {root.kind} {root.number or root.id}"
                         + (f" ({root.part_number})" if root.part_number else ""), boxes, arrows,
                         root=found.root.id, note=note)
    return Response(svg, media_type="image/svg+xml")


@router.get("/{kind}/{ref}/upstream-of/{other_kind}/{other_ref}", response_model=UpstreamOut)
async def upstream_of(kind: NodeKind, ref: str, other_kind: NodeKind, other_ref: str, uow: Uow) -> UpstreamOut:
    """Is the first lot/unit upstream of the second (did it go into it, through any steps)? With the chain."""
    ancestor = await queries.resolve(uow, kind.code, ref)
    descendant = await queries.resolve(uow, other_kind.code, other_ref)
    path = await queries.upstream_path(uow, ancestor, descendant)
    found = await queries.labels(uow, path)
    return UpstreamOut(upstream=bool(path), path=[node_out(n, found, i) for i, n in enumerate(path)])


@router.get("/serials/{ref}/as-built", response_model=AsBuiltOut)
async def as_built(ref: str, uow: Uow, depth: int | None = Depth) -> AsBuiltOut:
    """The unit's as-built tree: its components (units and lots) and theirs, down to the supplier lots."""
    root = await queries.resolve(uow, NodeKind.serials.code, ref)
    found = await queries.trace(uow, root, "backward", depth, limit=50000)
    incoming: dict[int, list[TraceEdge]] = {}
    for edge in found.edges:
        incoming.setdefault(edge.child_id, []).append(edge)
    expanded: set[int] = set()

    def tree(node_id: int, via: TraceEdge | None, level: int) -> AsBuiltOut:
        node = found.nodes[node_id]
        out = AsBuiltOut(node=node_out(node, found.labels, -level), quantity=via.quantity if via else None,
                         edge_kind=via.kind if via else None, operation_code=via.operation_code if via else None)
        if node_id in expanded:
            out.repeated = True
            return out
        expanded.add(node_id)
        if depth is None or level < depth:
            seen_parents = set()
            for edge in incoming.get(node_id, []):
                if edge.parent_id not in seen_parents:
                    seen_parents.add(edge.parent_id)
                    out.components.append(tree(edge.parent_id, edge, level + 1))
        return out
    return tree(root.id, None, 0)


__all__ = ["router", "NodeKind", "NodeOut", "node_out", "key"]
