"""The genealogy queries as the API answers them: the index walks, the database labels.

A walk (:mod:`mes.traceability.graph`) gives node ids; this module reads those nodes' numbers,
parts and orders and the edges between them (quantities, operations) from the read model, for a
caller or a picture. A recall's roll-up is computed in the index and named from its dictionaries.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Iterable, Literal

from fastapi import HTTPException, status
from sqlalchemy import func, select

from isles import UnitOfWork
from mes.traceability.graph import GenealogyIndex, Impact
from mes.traceability.index import genealogy
from mes.traceability.models import (
    KIND_NAMES,
    SHIPMENT,
    TraceConsumption,
    TraceEdge,
    TraceEvent,
    TraceNode,
    TracePart,
    TraceWorkOrder,
)

Direction = Literal["backward", "forward", "both"]
CHUNK = 900  # ids per IN (...) list: under SQLite's variable limit


async def resolve(uow: UnitOfWork, kind: int, ref: str) -> TraceNode:
    """The node of a lot, unit or shipment by its id (material's) or its number; 404 otherwise."""
    query = select(TraceNode).where(TraceNode.kind == kind)
    found: TraceNode | None
    try:
        found = await uow.scalar(query.where(TraceNode.entity_id == str(uuid.UUID(ref))))
    except ValueError:
        found = None
    if found is None:
        found = await uow.scalar(query.where(TraceNode.number == ref).order_by(TraceNode.id).limit(1))
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{KIND_NAMES[kind]} {ref} not found")
    return found


async def nodes_by_id(uow: UnitOfWork, ids: Iterable[int]) -> dict[int, TraceNode]:
    ids = list(ids)
    found: dict[int, TraceNode] = {}
    for start in range(0, len(ids), CHUNK):
        for row in await uow.scalars(select(TraceNode).where(TraceNode.id.in_(ids[start:start + CHUNK]))):
            found[row.id] = row
    return found


async def edges_among(uow: UnitOfWork, ids: set[int]) -> list[TraceEdge]:
    """The edges whose both ends are in ``ids``, oldest first."""
    ordered = sorted(ids)
    found: list[TraceEdge] = []
    for start in range(0, len(ordered), CHUNK):
        found.extend(row for row in await uow.scalars(select(TraceEdge).where(
            TraceEdge.child_id.in_(ordered[start:start + CHUNK]))) if row.parent_id in ids)
    found.sort(key=lambda e: e.id)
    return found


@dataclass
class Labels:
    parts: dict[int, tuple[str, str | None]]  # key -> (part id, part number)
    orders: dict[int, tuple[str, str | None]]  # key -> (work order id, number)

    def part(self, key: int | None) -> tuple[str | None, str | None]:
        return self.parts.get(key, (None, None)) if key else (None, None)

    def order(self, key: int | None) -> tuple[str | None, str | None]:
        return self.orders.get(key, (None, None)) if key else (None, None)


async def labels(uow: UnitOfWork, nodes: Iterable[TraceNode], edges: Iterable[TraceEdge] = ()) -> Labels:
    """The part and work order names of ``nodes`` and ``edges``."""
    nodes = list(nodes)
    return await labels_of(uow, {n.part_key for n in nodes if n.part_key},
                           {n.work_order_key for n in nodes if n.work_order_key}
                           | {e.work_order_key for e in edges if e.work_order_key})


async def labels_of(uow: UnitOfWork, part_keys: set[int], order_keys: set[int]) -> Labels:
    parts = {k: (i, n) for k, i, n in (await uow.execute(
        select(TracePart.id, TracePart.part_id, TracePart.part_number)
        .where(TracePart.id.in_(part_keys)))).all()} if part_keys else {}
    orders = {k: (i, n) for k, i, n in (await uow.execute(
        select(TraceWorkOrder.id, TraceWorkOrder.work_order_id, TraceWorkOrder.work_order_number)
        .where(TraceWorkOrder.id.in_(order_keys)))).all()} if order_keys else {}
    return Labels(parts, orders)


@dataclass
class Trace:
    """A walk's nodes (with their signed distance from the root: negative upstream) and edges."""

    root: TraceNode
    direction: str
    depth: dict[int, int]
    nodes: dict[int, TraceNode]
    edges: list[TraceEdge]
    labels: Labels
    truncated: bool


def walk(index: GenealogyIndex, root: int, direction: Direction, depth: int | None,
         limit: int) -> tuple[dict[int, int], bool]:
    """Signed distances of the nodes reached (nearest levels first, at most ``limit`` nodes)."""
    reached: dict[int, int] = {root: 0}
    truncated = False
    walks = []
    if direction in ("backward", "both"):
        walks.append((-1, index.backward(root, depth).levels))
    if direction in ("forward", "both"):
        walks.append((1, index.forward(root, depth).levels))
    longest = max((len(levels) for _, levels in walks), default=1)
    for distance in range(1, longest):
        for sign, levels in walks:
            if distance < len(levels):
                for node in sorted(levels[distance]):
                    if len(reached) >= limit:
                        return reached, True
                    reached.setdefault(node, sign * distance)
    return reached, truncated


async def trace(uow: UnitOfWork, root: TraceNode, direction: Direction, depth: int | None = None,
                limit: int = 5000) -> Trace:
    index = await genealogy(uow)
    distances, truncated = walk(index, root.id, direction, depth, limit)
    nodes = await nodes_by_id(uow, distances)
    edges = await edges_among(uow, set(distances))
    return Trace(root, direction, distances, nodes, edges, await labels(uow, nodes.values(), edges), truncated)


async def upstream_path(uow: UnitOfWork, ancestor: TraceNode, descendant: TraceNode) -> list[TraceNode]:
    index = await genealogy(uow)
    path = index.upstream_path(ancestor.id, descendant.id) or []
    rows = await nodes_by_id(uow, path)
    return [rows[n] for n in path]


@dataclass
class Rollup:
    impact: Impact
    by_work_order: list[dict[str, Any]]
    by_product: list[dict[str, Any]]
    by_shipment: list[dict[str, Any]]
    by_customer: list[dict[str, Any]]


def rollup(index: GenealogyIndex, impact: Impact) -> Rollup:
    """The recall roll-up named from the index (in memory: no query)."""
    orders: list[dict[str, Any]] = [
        {"workOrderKey": k, "workOrderNumber": index.order_names.get(k), "lots": lots, "serials": serials}
        for k, (lots, serials) in impact.by_work_order.items()]
    orders.sort(key=lambda row: (-row["serials"], -row["lots"], row["workOrderNumber"] or ""))
    products: list[dict[str, Any]] = [
        {"partKey": k, "partNumber": index.part_names.get(k), "lots": lots, "serials": serials}
        for k, (lots, serials) in impact.by_part.items()]
    products.sort(key=lambda row: (-row["serials"], -row["lots"], row["partNumber"] or ""))
    shipments: list[dict[str, Any]] = [
        {"node": n, "customer": index.customers.get(n), "lots": lots, "serials": serials}
        for n, (lots, serials) in impact.by_shipment.items()]
    customers: dict[str, dict[str, Any]] = {}
    for row in shipments:
        name = row["customer"] or "(unknown)"
        entry = customers.setdefault(name, {"customer": name, "shipments": 0, "lots": 0, "serials": 0})
        entry["shipments"] += 1
        entry["lots"] += row["lots"]
        entry["serials"] += row["serials"]
    return Rollup(impact, orders, products, shipments,
                  sorted(customers.values(), key=lambda row: (-row["serials"], -row["lots"], row["customer"])))


async def recall(uow: UnitOfWork, root: TraceNode) -> tuple[Rollup, dict[int, TraceNode], Labels]:
    index = await genealogy(uow)
    result = rollup(index, index.recall(root.id))
    shipments = await nodes_by_id(uow, [row["node"] for row in result.by_shipment])
    order_keys = {row["workOrderKey"] for row in result.by_work_order}
    part_keys = {row["partKey"] for row in result.by_product}
    return result, shipments, await labels_of(uow, part_keys, order_keys)


async def thread(uow: UnitOfWork, node: TraceNode, limit: int, offset: int) -> tuple[list[TraceEvent], int]:
    """Everything that happened to ``node`` and to the orders that made it or used it, oldest first:
    one page of it, and how many there are in all."""
    orders = set(await uow.scalars(select(TraceConsumption.work_order_key).where(TraceConsumption.node_id == node.id)))
    if node.work_order_key:
        orders.add(node.work_order_key)
    query = select(TraceEvent).where(TraceEvent.node_id == node.id)
    if orders:
        query = select(TraceEvent).where((TraceEvent.node_id == node.id) | (
            TraceEvent.node_id.is_(None) & TraceEvent.work_order_key.in_(orders)))
    total = int(await uow.scalar(select(func.count()).select_from(query.subquery())) or 0)
    rows = list(await uow.scalars(query.order_by(TraceEvent.occurred_at, TraceEvent.id).limit(limit).offset(offset)))
    return rows, total


def kind_name(kind: int) -> str:
    return KIND_NAMES.get(kind, "node")


__all__ = ["Direction", "SHIPMENT", "Trace", "edges_among", "labels", "nodes_by_id", "recall", "resolve", "rollup",
           "thread", "trace", "upstream_path"]
