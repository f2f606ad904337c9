"""The genealogy as an in-memory index: adjacency tuples by integer node id, walked breadth-first.

Why in memory: a recursive SQL query walks the graph one join per level, through an index, with
a de-duplicating UNION per step; a plant's hot raw lot (a resin drum in 1.3k orders) costs
milliseconds that way, and tens of thousands of nodes cost tens. Here each node id is a list
position, its children and parents are tuples of ints, and a level of a breadth-first walk is
one C-level set union over the frontier minus what was seen (the set is the visited bitmap; it
also stops the walk on cycles, such as a return of a return). No query touches the database.

The index holds integers only (kind, part key, work order key per node) plus the names of
parts, work orders and customers that a recall roll-up prints; labels of a trace's nodes are
read from the database for the nodes a caller asks about. The database tables stay the source of
truth: :mod:`mes.traceability.index` builds this from them and applies each committed change.
"""
from __future__ import annotations

from array import array
from collections import Counter
from dataclasses import dataclass, field
from itertools import chain
from typing import Iterable

from mes.traceability.models import LOT, SERIAL, SHIPMENT  # noqa: F401 (LOT: the rest)

EMPTY: tuple[int, ...] = ()


@dataclass
class Levels:
    """A walk from ``root``: ``levels[d]`` are the nodes first reached at distance ``d`` (level 0
    is the root alone)."""

    root: int
    levels: list[set[int]]
    #: every node reached, the root included
    nodes: set[int] = field(default_factory=set)

    def __len__(self) -> int:
        return sum(len(level) for level in self.levels)

    def depth_of(self) -> dict[int, int]:
        return {node: depth for depth, level in enumerate(self.levels) for node in level}


@dataclass
class Impact:
    """A recall's reach from one node: what is affected, rolled up (keys are the index's ints)."""

    root: int
    affected: int
    lots: int
    serials: int
    shipments: int
    #: work order key -> (lots, serials) it made among the affected
    by_work_order: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: part key -> (lots, serials)
    by_part: dict[int, tuple[int, int]] = field(default_factory=dict)
    #: shipment node -> (affected lots, affected serials) in it
    by_shipment: dict[int, tuple[int, int]] = field(default_factory=dict)


class GenealogyIndex:
    """Children and parents of every node, by integer id (see the module docstring)."""

    def __init__(self) -> None:
        self.children: list[tuple[int, ...]] = []
        self.parents: list[tuple[int, ...]] = []
        self.kind = bytearray()
        self.part = array("i")
        self.order = array("i")
        self.edges = 0
        self.part_names: dict[int, str] = {}
        self.order_names: dict[int, str] = {}
        self.customers: dict[int, str] = {}  # shipment node -> customer
        #: the units and the shipments (the rest are lots): a recall sorts what it reached with two
        #: set intersections instead of a look-up per node
        self.serials: set[int] = set()
        self.shipments: set[int] = set()
        self._ints: list[int] = []  # one int object per id, shared by every tuple that holds it

    # -- building ----------------------------------------------------------------------------------
    def reserve(self, size: int) -> None:
        """Room for node ids ``0 .. size - 1``."""
        grow = size - len(self.children)
        if grow > 0:
            self.children.extend([EMPTY] * grow)
            self.parents.extend([EMPTY] * grow)
            self.kind.extend(bytes(grow))
            self.part.extend(array("i", bytes(4 * grow)))
            self.order.extend(array("i", bytes(4 * grow)))
            self._ints.extend(range(len(self._ints), size))

    def __len__(self) -> int:
        return len(self.children)

    def set_node(self, node: int, kind: int, part: int = 0, order: int = 0) -> None:
        if node >= len(self.children):
            self.reserve(max(node + 1, len(self.children) * 2))
        self.kind[node], self.part[node], self.order[node] = kind, part or 0, order or 0
        self.serials.discard(node)
        self.shipments.discard(node)
        if kind == SERIAL:
            self.serials.add(node)
        elif kind == SHIPMENT:
            self.shipments.add(node)

    def add_edge(self, parent: int, child: int) -> None:
        """``parent`` went into ``child``; a second edge between them adds nothing to reachability."""
        top = max(parent, child)
        if top >= len(self.children):
            self.reserve(max(top + 1, len(self.children) * 2))
        if child in self.children[parent]:
            return
        ints = self._ints
        self.children[parent] += (ints[child],)
        self.parents[child] += (ints[parent],)
        self.edges += 1

    def load(self, size: int, edges: Iterable[tuple[int, int]]) -> None:
        """Build from scratch: ``edges`` are (parent, child) pairs of ids below ``size``."""
        self.reserve(size)
        ints = self._ints
        kids: list[list[int] | None] = [None] * size
        dads: list[list[int] | None] = [None] * size
        count = 0
        for parent, child in edges:
            p, c = ints[parent], ints[child]
            row = kids[p]
            if row is None:
                kids[p] = [c]
            else:
                row.append(c)
            row = dads[c]
            if row is None:
                dads[c] = [p]
            else:
                row.append(p)
            count += 1
        self.children = [tuple(dict.fromkeys(row)) if row else EMPTY for row in kids]
        del kids
        self.parents = [tuple(dict.fromkeys(row)) if row else EMPTY for row in dads]
        self.edges = count

    # -- walking -------------------------------------------------------------------------------------
    def _walk(self, adjacency: list[tuple[int, ...]], root: int, depth: int | None) -> Levels:
        levels = [{root}]
        seen = {root}
        if not 0 <= root < len(adjacency):
            return Levels(root, levels, seen)
        frontier: Iterable[int] = (root,)
        step = adjacency.__getitem__
        while depth is None or len(levels) <= depth:
            reached = set(chain.from_iterable(map(step, frontier)))
            reached -= seen
            if not reached:
                break
            seen |= reached
            levels.append(reached)
            frontier = reached
        return Levels(root, levels, seen)

    def backward(self, root: int, depth: int | None = None) -> Levels:
        """Where-from: every node ``root`` was made from, level by level (``depth=1``: one up)."""
        return self._walk(self.parents, root, depth)

    def forward(self, root: int, depth: int | None = None) -> Levels:
        """Where-used: every node made from ``root`` (``depth=1``: one down)."""
        return self._walk(self.children, root, depth)

    def forward_many(self, roots: Iterable[int]) -> set[int]:
        """Every node made from any of ``roots`` (the roots included): a recall of several lots."""
        seen = set(roots)
        frontier: Iterable[int] = tuple(seen)
        step = self.children.__getitem__
        while True:
            reached = set(chain.from_iterable(map(step, frontier)))
            reached -= seen
            if not reached:
                return seen
            seen |= reached
            frontier = reached

    def upstream_path(self, ancestor: int, descendant: int) -> list[int] | None:
        """The shortest chain ``ancestor -> ... -> descendant``, or None when ``ancestor`` is not
        upstream of ``descendant``. Walks backward from the descendant (its ancestry is the small
        side in a plant), remembering one child per node reached to give the path."""
        size = len(self.parents)
        if not (0 <= ancestor < size and 0 <= descendant < size):
            return None
        if ancestor == descendant:
            return [ancestor]
        via: dict[int, int] = {descendant: descendant}
        frontier = [descendant]
        parents = self.parents
        while frontier:
            nxt = []
            for node in frontier:
                for parent in parents[node]:
                    if parent not in via:
                        via[parent] = node
                        if parent == ancestor:
                            path = [ancestor]
                            while path[-1] != descendant:
                                path.append(via[path[-1]])
                            return path
                        nxt.append(parent)
            frontier = nxt
        return None

    def recall(self, root: int) -> Impact:
        """Everything made from ``root``, rolled up by work order, part and shipment."""
        return self.impact(root, self.forward(root).nodes)

    def impact(self, root: int, affected: set[int]) -> Impact:
        kind = self.kind
        serials = affected & self.serials
        shipments = affected & self.shipments
        lots = affected.difference(serials, shipments)
        order, part = self.order.__getitem__, self.part.__getitem__
        lots_by_order, serials_by_order = Counter(map(order, lots)), Counter(map(order, serials))
        lots_by_part, serials_by_part = Counter(map(part, lots)), Counter(map(part, serials))
        by_shipment = {}
        for shipment in shipments:
            inside = [p for p in self.parents[shipment] if p in affected]
            by_shipment[shipment] = (sum(1 for p in inside if kind[p] == LOT),
                                     sum(1 for p in inside if kind[p] == SERIAL))
        return Impact(root, len(affected), len(lots), len(serials), len(shipments),
                      by_work_order={k: (lots_by_order[k], serials_by_order[k])
                                     for k in lots_by_order.keys() | serials_by_order.keys() if k},
                      by_part={k: (lots_by_part[k], serials_by_part[k])
                               for k in lots_by_part.keys() | serials_by_part.keys() if k},
                      by_shipment=by_shipment)
