"""Benchmark of the traceability service's genealogy queries against a recursive CTE, in one run.

    python -m bench.genealogy [--tier S|M] [--quick] [--keep]

Builds a synthetic plant history in PostgreSQL, in the traceability service's own tables, shaped
like a plant: raw lots received, then stages of lots each made from a few lots of the stage before
that were made shortly before it (a sliding window, so a typical lot has tens to a few hundred
ancestors, not the whole graph), splits and merges in between, a few rework cycles, serialized
units at the end, and units shipped to customers (some returned: more cycles). About ten hot raw
lots (a resin drum, a steel heat) are used across a long stretch of the first stage and fan out
to 1-5k descendants at tier M.

Then it builds the service's in-memory index from those tables (the read model rebuilt from
scratch: ``build_s``), and measures, on the same data in the same run:

- the service's queries called in process (what its routes call before labelling the nodes):
  backward trace of finished units and late lots, forward trace of ordinary raw lots and of hot
  lots, four hot lots together (over 10k nodes), "is A upstream of B", the recall roll-up of a hot
  lot (affected units by work order, product and customer shipment);
- the baseline: ``WITH RECURSIVE t(id) AS (SELECT :root UNION SELECT e.child_id FROM edges e JOIN t
  ON e.parent_id = t.id) SELECT id FROM t`` (UNION over the id: cycle-safe), and its mirror for
  backward traces, on indexes (parent_id, child_id) and (child_id, parent_id), one prepared
  statement over asyncpg;
- a few HTTP figures (the whole route: token check, walk, labels from the database, JSON).

Tiers: S 10k lots / 50k edges / depth <= 5; M 1M lots / 5M edges / depth 6-8. ``--quick`` is
tier S with fewer samples. Ends with a ``RESULT genealogy ...`` line.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bench import make_console

PG_ADMIN = dict(host="127.0.0.1", port=5432, user="postgres", database="postgres")
LOT, SERIAL, SHIPMENT = 1, 2, 3
console = make_console()


@dataclass(frozen=True)
class Tier:
    name: str
    nodes: int
    stages: int  # lot stages between raw material and units
    window: int  # a lot takes its parents from this many positions either side, in the stage before
    hot_span: tuple[int, int]  # how many first-stage lots a hot raw lot goes into
    samples: int


TIERS = {
    "S": Tier("S", 10_000, 2, 6, (40, 120), 300),
    "M": Tier("M", 1_000_000, 5, 8, (150, 650), 300),
}


# -- the synthetic plant --------------------------------------------------------------------------------
class Plant:
    """A plant history as compact arrays: node kind/part/order/stage, edges (parent, child, kind)."""

    def __init__(self, tier: Tier, seed: int = 42):
        self.tier = tier
        self.rng = random.Random(seed)
        self.kind = bytearray([0])  # node 0 unused: ids start at 1
        self.stage = bytearray([0])
        self.part = array("i", [0])
        self.order = array("i", [0])
        self.origin = bytearray([0])  # 0 received 1 produced 2 split 3 merge 4 serial 5 shipment
        self.customer = array("i", [0])
        self.parents = array("i")
        self.children = array("i")
        self.edge_kind = bytearray()  # 0 consume 1 split 2 merge 3 ship 4 return 5 rework
        self.orders = 0
        self.hot: list[int] = []
        self.raw: list[int] = []
        self.units: list[int] = []
        self.late: list[int] = []

    def node(self, kind: int, stage: int, part: int, order: int, origin: int, customer: int = 0) -> int:
        self.kind.append(kind)
        self.stage.append(stage)
        self.part.append(part)
        self.order.append(order)
        self.origin.append(origin)
        self.customer.append(customer)
        return len(self.kind) - 1

    def edge(self, parent: int, child: int, kind: int = 0) -> None:
        self.parents.append(parent)
        self.children.append(child)
        self.edge_kind.append(kind)

    def new_order(self) -> int:
        self.orders += 1
        return self.orders

    def build(self, advance: Callable[[int], None]) -> "Plant":
        t, rng = self.tier, self.rng
        n = t.nodes
        raw_n, unit_n = int(n * 0.12), int(n * 0.25)
        stage_n = int(n * 0.60 / t.stages)
        # raw material, received
        layer = [self.node(LOT, 0, 1 + i % 40, 0, 0) for i in range(raw_n)]
        self.raw = list(layer)
        self.hot = rng.sample(layer[raw_n // 10: raw_n // 2], 10)
        advance(raw_n)
        for stage in range(1, t.stages + 1):
            made: list[int] = []
            order = 0
            for j in range(stage_n):
                if j % 4 == 0:
                    order = self.new_order()
                lot = self.node(LOT, stage, 100 * stage + j % 50, order, 1)
                centre = j * len(layer) // stage_n
                low, high = max(0, centre - t.window), min(len(layer), centre + t.window + 1)
                chosen = rng.sample(layer[low:high], min(high - low, rng.randint(4, 8)))
                for parent in chosen:
                    self.edge(parent, lot)
                if stage >= 2 and rng.random() < 0.0005:  # rework: the lot goes back into one of its sources
                    self.edge(lot, chosen[0], 5)
                made.append(lot)
            if stage == 1:  # hot raw lots: each goes into a long stretch of first-stage lots
                for hot in self.hot:
                    span = rng.randint(*t.hot_span)
                    start = rng.randrange(0, stage_n - span)
                    for lot in made[start:start + span]:
                        self.edge(hot, lot)
            # splits and merges between this stage and the next: the next stage consumes the pieces
            for index in rng.sample(range(len(made)), len(made) * 3 // 100):
                source = made[index]
                piece = self.node(LOT, stage, self.part[source], self.order[source], 2)
                self.edge(source, piece, 1)
                made[index] = piece
            for index in rng.sample(range(1, len(made) - 2), len(made) // 100):
                merged = self.node(LOT, stage, self.part[made[index]], 0, 3)
                for source in made[index:index + rng.randint(2, 3)]:
                    self.edge(source, merged, 2)
                made[index] = merged
            layer = made
            advance(stage_n)
        self.late = list(layer)
        # serialized units, ten per order, each assembled from lots of the last stage
        order = 0
        units = []
        for j in range(unit_n):
            if j % 10 == 0:
                order = self.new_order()
            unit = self.node(SERIAL, t.stages + 1, 1000 + j % 20, order, 4)
            centre = j * len(layer) // unit_n
            low, high = max(0, centre - t.window), min(len(layer), centre + t.window + 1)
            for parent in rng.sample(layer[low:high], min(high - low, rng.randint(3, 6))):
                self.edge(parent, unit)
            units.append(unit)
        self.units = units
        advance(unit_n)
        # shipments of about twenty units to one of 40 customers; a few units come back
        for start in range(0, len(units), 20):
            shipment = self.node(SHIPMENT, t.stages + 2, 0, 0, 5, customer=1 + (start // 20) % 40)
            for unit in units[start:start + 20]:
                self.edge(unit, shipment, 3)
            if rng.random() < 0.02:
                self.edge(shipment, units[start], 4)
        advance(len(self.kind) - 1 - raw_n - stage_n * t.stages - unit_n)
        return self

    # rows for COPY ----------------------------------------------------------------------------------------
    def node_rows(self, progress: Callable[[int], None]) -> Iterator[tuple]:
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        origins = ("received", "produced", "split", "merge", "serial", "shipment")
        qty = {LOT: Decimal(25), SERIAL: Decimal(1), SHIPMENT: None}
        uom = {LOT: "KG", SERIAL: "EA", SHIPMENT: None}
        for node in range(1, len(self.kind)):
            kind = self.kind[node]
            prefix = "L" if kind == LOT else "SN" if kind == SERIAL else "SH"
            customer = self.customer[node]
            yield (node, kind, f"00000000-0000-4000-8000-{node:012x}", f"{prefix}{self.stage[node]}-{node:07d}",
                   self.part[node] or None, self.order[node] or None, "released", qty[kind], uom[kind],
                   origins[self.origin[node]], f"Customer {customer:02d}" if customer else None, False,
                   start + timedelta(seconds=node), 1)
            if node % 50_000 == 0:
                progress(50_000)

    def edge_rows(self, progress: Callable[[int], None]) -> Iterator[tuple]:
        kinds = ("consume", "split", "merge", "ship", "return", "rework")
        start = datetime(2026, 1, 1, tzinfo=timezone.utc)
        qty = Decimal(5)
        parents, children, edge_kind, order = self.parents, self.children, self.edge_kind, self.order
        for i in range(len(parents)):
            child = children[i]
            yield (i + 1, parents[i], child, kinds[edge_kind[i]], qty, order[child] or None, "OP10",
                   start + timedelta(seconds=child))
            if i % 50_000 == 0:
                progress(50_000)


# -- measuring --------------------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


CPU: list[float] = []  # the CPU time of each timed() call, beside its wall-clock time


def timed(fn: Callable[[], Any]) -> float:
    """Wall-clock milliseconds of ``fn()`` (the figure reported); its CPU time goes to ``CPU``: on a
    shared machine the difference is the time the process waited for a core."""
    cpu = time.thread_time()
    started = time.perf_counter()
    fn()
    wall = (time.perf_counter() - started) * 1000
    CPU.append((time.thread_time() - cpu) * 1000)
    return wall


async def atimed(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    await fn()
    return (time.perf_counter() - started) * 1000


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Row:
    name: str
    p50: float
    p95: float
    nodes: float
    cte_p50: float | None = None
    cte_p95: float | None = None
    cpu_p95: float | None = None


async def run(tier: Tier, quick: bool, keep: bool) -> None:
    import asyncpg
    import httpx

    from isles import System
    from isles.api import create_app
    from isles.security.tokens import issue_access_token
    from mes import traceability
    from mes.traceability import index as trace_index
    from mes.traceability.queries import rollup

    samples = 60 if quick else tier.samples
    db = f"isles_bench_genealogy_{tier.name.lower()}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(**PG_ADMIN)
    await admin.execute(f'CREATE DATABASE "{db}"')
    await admin.close()
    url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    env = {"ISLES_DATA_DIR": tempfile.mkdtemp(prefix="isles-bench-"), "TRACEABILITY_DATABASE_URL": url,
           "ISLES_AUTH_SECRET": uuid.uuid4().hex * 2}
    os.environ.update({"ISLES_AUTH_SECRET": env["ISLES_AUTH_SECRET"]})
    from mes.system import system as mes
    system = System("mes", list(mes.services.values()), env=env)  # only traceability is started
    try:
        console.print(f"[bold]genealogy benchmark[/] tier {tier.name}: ~{tier.nodes:,} nodes, database {db}")
        await system.start(services=["traceability"], relays=False, consumers=False)
        conn = await asyncpg.connect(url)
        columns = dict(bar_width=40)
        with Progress(TextColumn("{task.description:<28}"), BarColumn(**columns), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as progress:
            started = time.perf_counter()
            task = progress.add_task("generating the plant history", total=tier.nodes)
            plant = Plant(tier).build(lambda k: progress.advance(task, k))
            progress.update(task, completed=tier.nodes)
            nodes, edges = len(plant.kind) - 1, len(plant.parents)
            for name in ("idx_trace_edges_parent_id_child_id", "idx_trace_edges_child_id_parent_id",
                         "idx_trace_nodes_entity_id_kind", "idx_trace_nodes_number"):
                await conn.execute(f"DROP INDEX {name}")
            task = progress.add_task("COPY trace_nodes", total=nodes)
            await conn.copy_records_to_table("trace_nodes",
                                             records=plant.node_rows(lambda k: progress.advance(task, k)),
                                             columns=["id", "kind", "entity_id", "number", "part_key",
                                                      "work_order_key", "status", "quantity", "unit_of_measure",
                                                      "origin", "customer", "inherits", "occurred_at", "version"])
            progress.update(task, completed=nodes)
            task = progress.add_task("COPY trace_edges", total=edges)
            await conn.copy_records_to_table("trace_edges",
                                             records=plant.edge_rows(lambda k: progress.advance(task, k)),
                                             columns=["id", "parent_id", "child_id", "kind", "quantity",
                                                      "work_order_key", "operation_code", "occurred_at"])
            progress.update(task, completed=edges)
            task = progress.add_task("parts, orders, indexes", total=6)
            await conn.copy_records_to_table("trace_parts", records=[
                (k, f"00000000-0000-4000-9000-{k:012x}", f"P-{k:05d}", f"part {k}", 1)
                for k in sorted(set(plant.part) - {0})],
                columns=["id", "part_id", "part_number", "part_name", "version"])
            await conn.copy_records_to_table("trace_work_orders", records=[
                (k, f"00000000-0000-4000-a000-{k:012x}", f"WO-{k:07d}", "completed", 1)
                for k in range(1, plant.orders + 1)], columns=["id", "work_order_id", "work_order_number", "status",
                                                             "version"])
            progress.advance(task)
            for statement in (
                    "CREATE INDEX idx_trace_edges_parent_id_child_id ON trace_edges (parent_id, child_id)",
                    "CREATE INDEX idx_trace_edges_child_id_parent_id ON trace_edges (child_id, parent_id)",
                    "CREATE UNIQUE INDEX idx_trace_nodes_entity_id_kind ON trace_nodes (entity_id, kind)",
                    "CREATE INDEX idx_trace_nodes_number ON trace_nodes (number)",
                    "VACUUM ANALYZE"):
                await conn.execute(statement)
                progress.advance(task)
            for table in ("trace_nodes", "trace_edges", "trace_parts", "trace_work_orders"):
                await conn.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                   f"(SELECT max(id) FROM {table}))")
            sql_seconds = time.perf_counter() - started
        hot, raw, units, late = plant.hot, plant.raw, plant.units, plant.late
        del plant
        gc.collect()
        console.print(f"history: {nodes:,} nodes, {edges:,} edges in PostgreSQL ({sql_seconds:.1f} s)")

        # -- the read model's index, from scratch ------------------------------------------------------
        before = rss_mb()
        async with traceability.service.unit_of_work() as uow:
            holder = await trace_index.rebuild(uow)
        index, build_s = holder.index, holder.build_seconds
        gc.collect()
        rss = rss_mb()
        console.print(f"index built in {build_s:.2f} s: {len(index):,} ids, {index.edges:,} edges; "
                      f"process RSS {rss:.0f} MB ({rss - before:+.0f} MB for the index)")

        # -- the samples ---------------------------------------------------------------------------------
        rng = random.Random(7)
        ordinary = [n for n in rng.sample(raw, min(len(raw), samples * 2)) if n not in hot][:samples]
        finished = rng.sample(units, samples // 2) + rng.sample(late, samples - samples // 2)
        rows: list[Row] = []
        forward_cte = await conn.prepare("WITH RECURSIVE t(id) AS (SELECT $1::bigint UNION SELECT e.child_id "
                                         "FROM trace_edges e JOIN t ON e.parent_id = t.id) SELECT id FROM t")
        backward_cte = await conn.prepare("WITH RECURSIVE t(id) AS (SELECT $1::bigint UNION SELECT e.parent_id "
                                          "FROM trace_edges e JOIN t ON e.child_id = t.id) SELECT id FROM t")
        for statement, node in ((forward_cte, hot[0]), (backward_cte, finished[0])):  # warm the plan and cache
            await statement.fetch(node)

        async def measure(name: str, nodes_: list[int], walk: Callable[[int], Any], cte: Any, repeat: int = 1) -> Row:
            ours, theirs, sizes = [], [], []
            CPU.clear()
            for node in nodes_:
                for _ in range(repeat):
                    ours.append(timed(lambda node=node: walk(node)))
            cpu = pct(CPU, .95)
            for node in nodes_:
                sizes.append(len(walk(node)))
            if cte is not None:
                for node in nodes_:
                    for _ in range(repeat):
                        theirs.append(await atimed(lambda node=node: cte.fetch(node)))
                    assert len(await cte.fetch(node)) == sizes[nodes_.index(node)], name
            row = Row(name, pct(ours, .5), pct(ours, .95), statistics.mean(sizes),
                      pct(theirs, .5) if theirs else None, pct(theirs, .95) if theirs else None, cpu)
            rows.append(row)
            return row

        with console.status("measuring ..."):
            back = await measure("backward (units, late lots)", finished, index.backward, backward_cte)
            await measure("forward, ordinary raw lots", ordinary, index.forward, forward_cte)
            hot_row = await measure("forward, hot raw lots", hot, index.forward, forward_cte,
                                    repeat=max(3, samples // 10))
            four = sorted(hot, key=lambda n: -len(index.forward(n)))[:4]
            CPU.clear()
            many = [timed(lambda: index.forward_many(four)) for _ in range(20)]
            many_cpu = pct(CPU, .95)
            reached = len(index.forward_many(four))
            union = ("WITH RECURSIVE t(id) AS (SELECT unnest($1::bigint[]) UNION SELECT e.child_id "
                     "FROM trace_edges e JOIN t ON e.parent_id = t.id) SELECT id FROM t")
            cte_many = [await atimed(lambda: conn.fetch(union, four)) for _ in range(10)]
            rows.append(Row("forward, four hot lots together", pct(many, .5), pct(many, .95), reached,
                            pct(cte_many, .5), pct(cte_many, .95), many_cpu))
            pairs = []
            for node in finished:
                ancestry = sorted(index.backward(node).nodes - {node})
                pairs.append((rng.choice(ancestry) if ancestry and rng.random() < 0.5 else rng.choice(raw), node))
            CPU.clear()
            up = [timed(lambda a=a, b=b: index.upstream_path(a, b)) for a, b in pairs]
            up_cpu = pct(CPU, .95)
            yes = sum(1 for a, b in pairs if index.upstream_path(a, b))
            upstream_sql = await conn.prepare(
                "WITH RECURSIVE t(id) AS (SELECT $2::bigint UNION SELECT e.parent_id FROM trace_edges e "
                "JOIN t ON e.child_id = t.id) SELECT EXISTS (SELECT 1 FROM t WHERE id = $1)")
            cte_up = [await atimed(lambda a=a, b=b: upstream_sql.fetchval(a, b)) for a, b in pairs]
            rows.append(Row(f"is A upstream of B ({yes}/{len(pairs)} yes)", pct(up, .5), pct(up, .95), 2,
                            pct(cte_up, .5), pct(cte_up, .95), up_cpu))
            recall_times, recall_units = [], []
            CPU.clear()
            for node in hot:
                for _ in range(max(3, samples // 10)):
                    recall_times.append(timed(lambda node=node: rollup(index, index.recall(node))))
            recall_cpu = pct(CPU, .95)
            for node in hot:
                recall_units.append(index.recall(node).serials)
            recall_sql = await conn.prepare(
                "WITH RECURSIVE t(id) AS (SELECT $1::bigint UNION SELECT e.child_id FROM trace_edges e "
                "JOIN t ON e.parent_id = t.id) SELECT n.work_order_key, count(*) FROM t JOIN trace_nodes n "
                "ON n.id = t.id WHERE n.kind = 2 GROUP BY n.work_order_key")
            cte_recall = [await atimed(lambda node=node: recall_sql.fetch(node)) for node in hot for _ in range(3)]
            rows.append(Row("recall roll-up of a hot lot (units)", pct(recall_times, .5), pct(recall_times, .95),
                            statistics.mean(recall_units), pct(cte_recall, .5), pct(cte_recall, .95), recall_cpu))

            # -- HTTP, the whole route ---------------------------------------------------------------------
            token, _ = issue_access_token(user_id=uuid.uuid4(), username="bench", roles=["viewer"])
            app = create_app(system, start=lambda: asyncio.sleep(0))
            http_rows = []
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
                headers = {"Authorization": f"Bearer {token}"}

                async def route(path: str, params: dict | None = None) -> None:
                    response = await client.get(f"/api/traceability{path}", headers=headers, params=params)
                    assert response.status_code == 200, response.text[:300]

                def entity(n: int) -> str:
                    return f"00000000-0000-4000-8000-{n:012x}"

                for name, paths in (
                        ("GET .../genealogy?direction=backward (unit)",
                         [(f"/serials/{entity(n)}/genealogy", {"direction": "backward"}) for n in finished[:30]
                          if n in units] or [(f"/lots/{entity(n)}/genealogy", {"direction": "backward"})
                                             for n in finished[:30]]),
                        ("GET .../recall (hot lot)", [(f"/lots/{entity(n)}/recall", None) for n in hot]),
                        ("GET .../genealogy.svg?direction=forward (hot lot, 500 nodes)",
                         [(f"/lots/{entity(n)}/genealogy.svg", {"direction": "forward"}) for n in hot[:4]])):
                    times = [await atimed(lambda path=path, params=params: route(path, params))
                             for path, params in paths]
                    http_rows.append((name, pct(times, .5), pct(times, .95)))
        # -- report ---------------------------------------------------------------------------------------------
        table = Table(title=f"genealogy, tier {tier.name}: {nodes:,} nodes, {edges:,} edges "
                            f"(in process vs recursive CTE)")
        for column in ("query", "nodes", "p50 ms", "p95 ms", "CPU p95 ms", "CTE p50 ms", "CTE p95 ms", "speedup p95"):
            table.add_column(column, justify="left" if column == "query" else "right")
        for row in rows:
            table.add_row(row.name, f"{row.nodes:,.0f}", f"{row.p50:.3f}", f"{row.p95:.3f}", f"{row.cpu_p95:.3f}",
                          f"{row.cte_p50:.2f}" if row.cte_p50 is not None else "-",
                          f"{row.cte_p95:.2f}" if row.cte_p95 is not None else "-",
                          f"{row.cte_p95 / row.p95:.1f}x" if row.cte_p95 else "-")
        console.print(table)
        http = Table(title="HTTP, the whole route (token check, walk, labels from the database, JSON / SVG)")
        for column in ("route", "p50 ms", "p95 ms"):
            http.add_column(column, justify="left" if column == "route" else "right")
        for name, p50, p95 in http_rows:
            http.add_row(name, f"{p50:.1f}", f"{p95:.1f}")
        console.print(http)
        forward_10k = rows[3].p95
        speedup = hot_row.cte_p95 / hot_row.p95
        load = os.getloadavg()[0]
        console.print(f"load average during the run: {load:.1f} on {os.cpu_count()} CPUs (CPU p95: the time on a core)")
        console.print(f"RESULT genealogy tier={tier.name} backward_p95_ms={back.p95:.3f} "
                      f"forward_hot_p95_ms={hot_row.p95:.3f} forward_10k_ms={forward_10k:.3f} "
                      f"upstream_p95_ms={rows[4].p95:.3f} recall_ms={rows[5].p95:.3f} "
                      f"cte_backward_p95_ms={back.cte_p95:.3f} cte_forward_hot_p95_ms={hot_row.cte_p95:.3f} "
                      f"speedup={speedup:.1f} build_s={build_s:.2f} rss_mb={rss:.0f}", soft_wrap=True)
        await conn.close()
    finally:
        await system.stop()
        if not keep:
            admin = await asyncpg.connect(**PG_ADMIN)
            await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
            await admin.close()
        else:
            console.print(f"kept database {db}")


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tier", choices=sorted(TIERS), default="S")
    parser.add_argument("--quick", action="store_true", help="tier S, fewer samples (under a minute)")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    args = parser.parse_args(list(argv) if argv is not None else None)
    tier = TIERS["S"] if args.quick else TIERS[args.tier]
    asyncio.run(run(tier, args.quick, args.keep))


if __name__ == "__main__":
    main()
