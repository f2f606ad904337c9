"""Writing the read model: nodes, edges, consumptions and thread entries, for the handlers.

Every write that changes the graph's shape also records an index change (see
:mod:`mes.traceability.index`), applied once the handler's transaction commits.
"""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from isles import UnitOfWork
from mes.traceability import index
from mes.traceability.models import TraceConsumption, TraceEdge, TraceEvent, TraceNode, TracePart, TraceWorkOrder


def occurred(uow: UnitOfWork) -> datetime:
    """When the event being handled happened (its CloudEvents ``time``)."""
    moment = uow.incoming.time if uow.incoming is not None else datetime.now(timezone.utc)
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def version(uow: UnitOfWork) -> int:
    return (uow.incoming.entityversion or 0) if uow.incoming is not None else 0


async def part(uow: UnitOfWork, part_id: str | None, number: str | None = None, name: str | None = None,
               *, owner_version: int | None = None) -> int | None:
    """The part's key, made on first mention; a newer part event renames it."""
    if not part_id:
        return None
    row: TracePart | None = await uow.scalar(select(TracePart).where(TracePart.part_id == part_id))
    if row is None:
        row = TracePart(part_id=part_id, part_number=number, part_name=name, version=owner_version or 0)
        uow.add(row)
        await uow.flush()
    elif owner_version is not None and owner_version >= row.version:
        row.part_number, row.part_name, row.version = number or row.part_number, name or row.part_name, owner_version
    elif row.part_number is None and number:
        row.part_number = number
    else:
        return row.id
    if row.part_number:
        index.changes(uow).append(("part", row.id, row.part_number))
    return row.id


async def work_order(uow: UnitOfWork, work_order_id: str | None, number: str | None = None,
                     **state: Any) -> int | None:
    """The work order's key, made on first mention (``state`` from work_order's own events)."""
    if not work_order_id:
        return None
    row: TraceWorkOrder | None = await uow.scalar(
        select(TraceWorkOrder).where(TraceWorkOrder.work_order_id == work_order_id))
    owner_version = state.pop("owner_version", None)
    if row is None:
        row = TraceWorkOrder(work_order_id=work_order_id, work_order_number=number, version=owner_version or 0,
                             **state)
        uow.add(row)
        await uow.flush()
    elif owner_version is not None and owner_version >= row.version:
        row.work_order_number, row.version = number or row.work_order_number, owner_version
        for key, value in state.items():
            if value is not None:
                setattr(row, key, value)
    elif row.work_order_number is None and number:
        row.work_order_number = number
    else:
        return row.id
    if row.work_order_number:
        index.changes(uow).append(("order", row.id, row.work_order_number))
    return row.id


async def find(uow: UnitOfWork, kind: int, entity_id: str) -> TraceNode | None:
    row: TraceNode | None = await uow.scalar(
        select(TraceNode).where(TraceNode.kind == kind, TraceNode.entity_id == entity_id))
    return row


async def node(uow: UnitOfWork, kind: int, entity_id: str, *, owner_version: int | None = None,
               **state: Any) -> TraceNode:
    """The node of ``entity_id``, made on first mention (maybe by a later event than its own).

    ``state`` (number, part_key, status, ...) is copied when the event is not older than what the
    node holds (``owner_version``: the owner's entity version; None: fill only what is missing).
    """
    row = await find(uow, kind, entity_id)
    state = {k: v for k, v in state.items() if v is not None}
    if row is None:
        row = TraceNode(kind=kind, entity_id=entity_id, version=owner_version or 0, **state)
        uow.add(row)
        await uow.flush()
        shape_changed = True
    else:
        before = (row.part_key, row.work_order_key)
        newer = owner_version is not None and owner_version >= row.version
        for key, value in state.items():
            if newer or getattr(row, key) in (None, "unknown"):
                setattr(row, key, value)
        if newer and owner_version is not None:
            row.version = owner_version
        shape_changed = (row.part_key, row.work_order_key) != before
    if shape_changed:
        index.changes(uow).append(("node", row.id, kind, row.part_key or 0, row.work_order_key or 0))
    if row.customer and kind == 3:
        index.changes(uow).append(("customer", row.id, row.customer))
    return row


def edge(uow: UnitOfWork, parent: TraceNode, child: TraceNode, kind: str, *, quantity: Decimal | None = None,
         work_order_key: int | None = None, operation_code: str | None = None) -> None:
    """``parent`` went into ``child``."""
    uow.add(TraceEdge(parent_id=parent.id, child_id=child.id, kind=kind, quantity=quantity,
                      work_order_key=work_order_key, operation_code=operation_code, occurred_at=occurred(uow)))
    index.changes(uow).append(("edge", parent.id, child.id))


async def inherit(uow: UnitOfWork, output: TraceNode, work_order_key: int) -> None:
    """``output`` was made by its work order from what was issued into it (to it, for a unit)."""
    issued = await uow.scalars(select(TraceConsumption).where(TraceConsumption.work_order_key == work_order_key))
    for row in issued:
        if row.serial_node_id in (None, output.id):
            source = await uow.get(TraceNode, row.node_id)
            if source is not None and source.id != output.id:
                edge(uow, source, output, "consume", quantity=row.quantity, work_order_key=work_order_key,
                     operation_code=row.operation_code)


async def outputs(uow: UnitOfWork, work_order_key: int) -> list[TraceNode]:
    """The nodes a work order made that inherit what is issued into it."""
    return list(await uow.scalars(select(TraceNode).where(TraceNode.work_order_key == work_order_key,
                                                          TraceNode.inherits.is_(True))))


def thread(uow: UnitOfWork, kind: str, summary: str, *, node: TraceNode | None = None,
           work_order_key: int | None = None, data: dict[str, Any] | None = None) -> None:
    """One entry of a digital thread (of ``node``, and of ``work_order_key`` when no node)."""
    incoming = uow.incoming
    uow.add(TraceEvent(event_id=incoming.id if incoming else "", type=incoming.type if incoming else kind,
                       source=incoming.source if incoming else "", kind=kind,
                       node_id=node.id if node is not None else None, work_order_key=work_order_key,
                       occurred_at=occurred(uow), summary=summary,
                       data=incoming.json() if incoming is not None and data is None else (data or {})))
