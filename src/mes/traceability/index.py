"""The service's in-memory genealogy index: built from the read model, kept current after commits.

One index per running service (per database), built on first use from the tables (on
PostgreSQL with a binary COPY, parsed with ``struct``: a million nodes and five million edges in
seconds). Handlers record what they changed in :func:`changes`; once their transaction has
committed (SQLAlchemy's ``after_commit`` on the unit of work's session) the changes are applied
to the index, and a rolled-back transaction leaves it untouched. Changes that commit while the
index is being built are queued and applied after it; applying twice is harmless (an edge
already present is skipped), so nothing is lost between the snapshot and the queue.

The index serves the process that runs the service's consumer (``isles run`` and ``isles serve``
run the API and the consumer together). Another process serving the same database sees the
graph as of its own start until :func:`rebuild`.
"""
from __future__ import annotations

import asyncio
import gc
import struct
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import event, func, select

from isles import UnitOfWork
from mes.traceability.graph import GenealogyIndex
from mes.traceability.models import SERIAL, SHIPMENT, TraceEdge, TraceNode, TracePart, TraceWorkOrder

_CHANGES = "mes_traceability_changes"
FREEZE_AT = 100_000  # node ids from which a built index is moved out of the cyclic GC's walks

#: a change to apply after commit: ("node", id, kind, part, order) | ("edge", parent, child) |
#: ("part", key, number) | ("order", key, number) | ("customer", node, name)
Change = tuple[Any, ...]


@dataclass
class Holder:
    """The index of one running service, and how it came to be."""

    index: GenealogyIndex | None = None
    build_seconds: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    queued: list[Change] | None = None  # not None while building

    def apply(self, changes: Iterable[Change]) -> None:
        if self.queued is not None:
            self.queued.extend(changes)
        elif self.index is not None:
            apply(self.index, changes)


_holders: dict[int, Holder] = {}


def holder(uow: UnitOfWork) -> Holder:
    database = uow.runtime.database
    key = id(database)
    found = _holders.get(key)
    if found is None:
        found = _holders[key] = Holder()
        weakref.finalize(database, _holders.pop, key, None)
    return found


def apply(index: GenealogyIndex, changes: Iterable[Change]) -> None:
    for change in changes:
        what = change[0]
        if what == "edge":
            index.add_edge(change[1], change[2])
        elif what == "node":
            index.set_node(change[1], change[2], change[3], change[4])
        elif what == "part":
            index.part_names[change[1]] = change[2]
        elif what == "order":
            index.order_names[change[1]] = change[2]
        elif what == "customer":
            index.customers[change[1]] = change[2]


def changes(uow: UnitOfWork) -> list[Change]:
    """The changes this unit of work made to the graph; they reach the index once it commits."""
    info = uow.session.info
    found = info.get(_CHANGES)
    if found is None:
        found = info[_CHANGES] = []
        target = holder(uow)
        event.listen(uow.session.sync_session, "after_commit", lambda _session: target.apply(found))
    return found


async def genealogy(uow: UnitOfWork) -> GenealogyIndex:
    """The index of ``uow``'s service, built from its tables on first use."""
    found = holder(uow)
    if found.index is None:
        async with found.lock:
            if found.index is None:
                await _build(uow, found)
    return found.index  # type: ignore[return-value]


async def rebuild(uow: UnitOfWork) -> Holder:
    """Build the index again from the tables (the benchmark's "from scratch"; another process's writes)."""
    found = holder(uow)
    async with found.lock:
        await _build(uow, found)
    return found


async def _build(uow: UnitOfWork, found: Holder) -> None:
    started = time.perf_counter()
    found.queued = []
    try:
        index = await load(uow)
        apply(index, found.queued)
    finally:
        queued, found.queued = found.queued, None
    found.index, found.build_seconds = index, time.perf_counter() - started
    del queued
    # A million tuples the cyclic garbage collector would walk on every full collection (pauses of
    # tens of milliseconds): they hold no cycles, reference counting frees them on a rebuild. A
    # small graph is not worth freezing the rest of the heap for (tests build many).
    if len(index) >= FREEZE_AT:
        gc.collect()
        gc.freeze()


async def load(uow: UnitOfWork) -> GenealogyIndex:
    """A new index from the read model's tables."""
    index = GenealogyIndex()
    size = (await uow.scalar(select(func.max(TraceNode.id))) or 0) + 1
    copy = await _copier(uow)
    node_sql = ("SELECT id::int4, kind::int4, coalesce(part_key, 0), coalesce(work_order_key, 0) "
                "FROM trace_nodes")
    edge_sql = "SELECT parent_id::int4, child_id::int4 FROM trace_edges"
    if copy is not None:
        nodes = ((row[2], row[4], row[6], row[8]) for row in struct.iter_unpack(">hiiiiiiii", await copy(node_sql)))
        edges: Iterable[tuple[int, int]] = ((row[2], row[4]) for row in struct.iter_unpack(">hiiii",
                                                                                           await copy(edge_sql)))
    else:
        nodes = iter((await uow.execute(select(TraceNode.id, TraceNode.kind, func.coalesce(TraceNode.part_key, 0),
                                                func.coalesce(TraceNode.work_order_key, 0)))).all())
        edges = iter((await uow.execute(select(TraceEdge.parent_id, TraceEdge.child_id))).all())
    index.reserve(size)
    kind, part, order = index.kind, index.part, index.order
    serials, shipments = index.serials, index.shipments
    for node, k, p, o in nodes:
        kind[node], part[node], order[node] = k, p, o
        if k == SERIAL:
            serials.add(node)
        elif k == SHIPMENT:
            shipments.add(node)
    index.load(size, edges)
    index.part_names = {k: n for k, n in (await uow.execute(select(TracePart.id, TracePart.part_number))).all() if n}
    index.order_names = {k: n for k, n in (await uow.execute(select(TraceWorkOrder.id,
                                                                    TraceWorkOrder.work_order_number))).all() if n}
    index.customers = {k: n for k, n in (await uow.execute(select(TraceNode.id, TraceNode.customer)
                                                           .where(TraceNode.kind == SHIPMENT))).all() if n}
    return index


async def _copier(uow: UnitOfWork) -> Any:
    """On PostgreSQL (asyncpg): ``await copy(sql)`` -> the rows of ``sql`` in binary COPY format,
    header and trailer cut off (fixed-width rows of int4 columns, none NULL). None elsewhere.
    (A schema-per-service database sets ``search_path`` on its connections, so names resolve.)"""
    if uow.runtime.database.engine.dialect.name != "postgresql":
        return None
    connection = await uow.session.connection()
    raw = (await connection.get_raw_connection()).driver_connection
    if raw is None or not hasattr(raw, "copy_from_query"):
        return None

    async def copy(sql: str) -> memoryview:
        chunks: list[bytes] = []

        async def sink(chunk: bytes) -> None:
            chunks.append(chunk)
        await raw.copy_from_query(sql, output=sink, format="binary")
        data = b"".join(chunks)
        chunks.clear()
        extension = struct.unpack_from(">i", data, 15)[0]
        return memoryview(data)[19 + extension:-2]
    return copy


__all__ = ["Holder", "apply", "changes", "genealogy", "load", "rebuild"]
