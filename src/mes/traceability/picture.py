"""The genealogy as a picture: an SVG laid out in columns by distance from the root.

Upstream nodes stand left of the root, downstream ones right of it, one column per level of the
walk; within a column the nodes are ordered by the mean position of their neighbours in the
column before and after (a few barycentre sweeps), which keeps edges short and crossings few.
Each node shows its number and part; each edge its quantity. Plain SVG written here (no
graphviz binary to install on a plant server); a browser opens it.
"""
from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

NODE_W, NODE_H, COL_GAP, ROW_GAP, MARGIN, HEADER = 188, 42, 96, 12, 24, 84
STYLE = {  # kind: (fill, stroke)
    "lot": ("#e8f0fe", "#1a73e8"),
    "serial": ("#e6f4ea", "#188038"),
    "shipment": ("#fef7e0", "#e37400"),
}


@dataclass
class Box:
    key: int
    kind: str
    title: str  # first line: lot number, serial, shipment number
    subtitle: str  # second line: part number, customer
    depth: int  # signed distance from the root
    detail: str = ""  # hover text


@dataclass
class Arrow:
    parent: int
    child: int
    label: str
    detail: str = ""


def _clip(text: str, room: int = 26) -> str:
    return text if len(text) <= room else text[:room - 1] + "\u2026"


def _longest(nodes: set[int], root: int, edges: list[tuple[int, int]]) -> dict[int, int]:
    """Longest-path layers from ``root`` over ``edges`` (from -> to) among ``nodes``, so that every
    edge points to a later column. A cycle is broken at its node nearest the root (in the order
    given), whose remaining incoming edges then point backwards."""
    incoming: dict[int, list[int]] = {n: [] for n in nodes}
    outgoing: dict[int, list[int]] = {n: [] for n in nodes}
    for a, b in edges:
        if a in nodes and b in nodes and a != b:
            incoming[b].append(a)
            outgoing[a].append(b)
    waiting = {n: len(set(incoming[n])) for n in nodes}
    waiting[root] = 0
    layer = {root: 0}
    done: set[int] = set()
    ready = [root]
    remaining = sorted(nodes - {root})
    while len(done) < len(nodes):
        if not ready:  # a cycle (a return, rework): take the earliest node still waiting
            pick = next(n for n in remaining if n not in done)
            layer.setdefault(pick, 1 + max((layer[p] for p in incoming[pick] if p in done), default=0))
            ready.append(pick)
        node = ready.pop()
        if node in done:
            continue
        done.add(node)
        for child in set(outgoing[node]):
            if child in done:
                continue
            layer[child] = max(layer.get(child, 0), layer[node] + 1)
            waiting[child] -= 1
            if waiting[child] <= 0:
                ready.append(child)
    return layer


def flow_depths(depth: dict[int, int], arrows: list["Arrow"], root: int) -> dict[int, int]:
    """Columns for ``depth`` (signed walk distances): upstream nodes on longest paths to the root,
    downstream ones on longest paths from it, so that edges run left to right."""
    edges = [(a.parent, a.child) for a in arrows]
    down = _longest({n for n, d in depth.items() if d >= 0}, root, edges)
    up = _longest({n for n, d in depth.items() if d <= 0}, root, [(b, a) for a, b in edges])
    return {n: (down[n] if d > 0 else -up[n] if d < 0 else 0) for n, d in depth.items()}


def layout(boxes: list[Box], arrows: list[Arrow], sweeps: int = 4) -> dict[int, tuple[float, float]]:
    """Top-left corner of each box."""
    depths = sorted({b.depth for b in boxes})
    column = {d: i for i, d in enumerate(depths)}
    layers: list[list[Box]] = [[] for _ in depths]
    for box in sorted(boxes, key=lambda b: (b.subtitle, b.title)):
        layers[column[box.depth]].append(box)
    col_of = {b.key: column[b.depth] for b in boxes}
    neighbours: dict[int, list[int]] = {b.key: [] for b in boxes}
    for arrow in arrows:
        if arrow.parent in neighbours and arrow.child in neighbours:
            neighbours[arrow.parent].append(arrow.child)
            neighbours[arrow.child].append(arrow.parent)
    position = {b.key: float(i) for layer in layers for i, b in enumerate(layer)}
    for sweep in range(sweeps):
        order = range(1, len(layers)) if sweep % 2 == 0 else range(len(layers) - 2, -1, -1)
        for index in order:
            side = index - 1 if sweep % 2 == 0 else index + 1

            def centre(box: Box, side: int = side) -> float:
                near = [position[n] for n in neighbours[box.key] if col_of[n] == side]
                return sum(near) / len(near) if near else position[box.key]
            layers[index].sort(key=centre)
            for i, box in enumerate(layers[index]):
                position[box.key] = float(i)
    tallest = max((len(layer) for layer in layers), default=1)
    corners: dict[int, tuple[float, float]] = {}
    for index, layer in enumerate(layers):
        offset = (tallest - len(layer)) * (NODE_H + ROW_GAP) / 2
        for row, box in enumerate(layer):
            corners[box.key] = (MARGIN + index * (NODE_W + COL_GAP), HEADER + offset + row * (NODE_H + ROW_GAP))
    return corners


def render(title: str, boxes: list[Box], arrows: list[Arrow], *, root: int, note: str = "") -> str:
    """The SVG document (a string) of ``boxes`` joined by ``arrows``."""
    columns = flow_depths({b.key: b.depth for b in boxes}, arrows, root)
    boxes = [Box(b.key, b.kind, b.title, b.subtitle, columns[b.key], b.detail) for b in boxes]
    corners = layout(boxes, arrows)
    depths = sorted({b.depth for b in boxes})
    width = MARGIN * 2 + max(len(depths), 1) * (NODE_W + COL_GAP) - COL_GAP
    bottom = max((y for _, y in corners.values()), default=HEADER) + NODE_H
    for arrow in arrows:  # arcs of edges against the flow hang below their boxes
        if arrow.parent in corners and arrow.child in corners and corners[arrow.child][0] <= corners[arrow.parent][0]:
            (px, py), (cx, cy) = corners[arrow.parent], corners[arrow.child]
            bottom = max(bottom, max(py, cy) + NODE_H + 0.75 * (40 + abs(px - cx) / 6) + 14)
    height = bottom + MARGIN
    width = max(width, 520)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
           f"<title>{escape(title)}</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#5f6368"/></marker></defs>',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{MARGIN}" y="26" font-size="16" font-weight="bold">{escape(title)}</text>']
    legend_x = MARGIN
    out.append(f'<text x="{legend_x}" y="46" fill="#5f6368">{escape(note)}</text>')
    out.append(f'<text x="{legend_x}" y="{HEADER - 22}" font-size="10" fill="#80868b">blue: lot  green: unit  '
               'orange: shipment  red dashed: against the flow (a return)</text>')
    for i, depth in enumerate(depths):
        x = MARGIN + i * (NODE_W + COL_GAP) + NODE_W / 2
        label = "root" if depth == 0 else (f"{-depth} up" if depth < 0 else f"{depth} down")  # longest path
        out.append(f'<text x="{x:.0f}" y="{HEADER - 8}" text-anchor="middle" fill="#80868b">{label}</text>')
    out.append('<g fill="none" stroke="#9aa0a6" stroke-width="1.2">')
    labels = []
    for arrow in arrows:
        if arrow.parent not in corners or arrow.child not in corners:
            continue
        (px, py), (cx, cy) = corners[arrow.parent], corners[arrow.child]
        x1, y1 = px + NODE_W, py + NODE_H / 2
        x2, y2 = cx, cy + NODE_H / 2
        if x2 > x1:
            bend = (x2 - x1) / 2
            path = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
            mid = ((x1 + x2) / 2, (y1 + y2) / 2)
            dash = ""
        else:  # against the flow: a cycle (a return) or an edge inside a column
            x1, x2 = px + NODE_W / 2, cx + NODE_W / 2
            y1, y2 = py + NODE_H, cy + NODE_H
            drop = 40 + abs(x1 - x2) / 6
            path = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + drop:.1f} {x2:.1f},{y2 + drop:.1f} {x2:.1f},{y2:.1f}"
            mid = ((x1 + x2) / 2, max(y1, y2) + drop * 0.75)
            dash = ' stroke-dasharray="5,3" stroke="#d93025"'
        tip = f"<title>{escape(arrow.detail)}</title>" if arrow.detail else ""
        out.append(f'<path d="{path}" marker-end="url(#arrow)"{dash}>{tip}</path>')
        if arrow.label:
            labels.append(f'<text x="{mid[0]:.1f}" y="{mid[1] - 3:.1f}" text-anchor="middle">'
                          f'{escape(arrow.label)}</text>')
    out.append("</g>")
    out.append('<g font-size="10" fill="#3c4043" stroke="white" stroke-width="3" paint-order="stroke">')
    out.extend(labels)
    out.append("</g>")
    for box in boxes:
        x, y = corners[box.key]
        fill, stroke = STYLE.get(box.kind, ("#f1f3f4", "#5f6368"))
        width_px = 3 if box.key == root else 1.2
        tip = f"<title>{escape(box.detail or box.title)}</title>"
        out.append(f'<g>{tip}<rect x="{x:.1f}" y="{y:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6" '
                   f'fill={quoteattr(fill)} stroke={quoteattr(stroke)} stroke-width="{width_px}"/>'
                   f'<text x="{x + 8:.1f}" y="{y + 17:.1f}" font-weight="bold">{escape(_clip(box.title))}</text>'
                   f'<text x="{x + 8:.1f}" y="{y + 33:.1f}" fill="#5f6368">{escape(_clip(box.subtitle, 30))}</text>'
                   "</g>")
    out.append("</svg>")
    return "\n".join(out)
