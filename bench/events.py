"""End-to-end event benchmark: a part renamed in material -> the work order's copy committed.

For each database (SQLite files, PostgreSQL database per service) it measures, in one run:

* latency: renames offered at a steady rate, open loop (each starts at its due time); for each,
  the time from material's commit (state + outbox row) to work_order's commit (inbox row +
  replicated fields) - p50 and p99, at the capped rate and at 100 and 200 events/s below it;
* durable throughput: renames from concurrent writers until every effect is committed;
* the baseline: the same two writes with no outbox, relay, transport or inbox (material's
  update, then work_order's UPDATE), with the same concurrency - what you get with no guarantees.

    python -m bench.events [--quick] [--db sqlite|postgres|all] [--transport memory|kafka|redis]

Ends with one ``RESULT events ...`` line per configuration (see DESIGN.md, "Benchmarks").
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import or_, update

from isles.transport import InMemoryTransport

console = Console()
CURVE_RATES = (100, 200)  # offered events/s measured below the capped rate, for the latency curve
PG_ADMIN = dict(host="127.0.0.1", port=5432, user="postgres", database="postgres")


class TimedTransport(InMemoryTransport):
    """The in-process transport, noting when each envelope's handling committed."""

    def __init__(self) -> None:
        super().__init__()
        self.done: dict[str, float] = {}
        self.arrived = asyncio.Event()
        self.expect = 0

    def subscribe(self, group, topics, deliver):
        super().subscribe(group, topics, timed(self, deliver))


def timed(transport: Any, deliver: Any) -> Any:
    """``deliver``, noting in ``transport.done`` when each envelope's handling committed, and
    setting ``transport.arrived`` once ``transport.expect`` envelopes have."""
    async def timed_deliver(envelopes):
        await deliver(envelopes)
        now = time.perf_counter()
        for envelope in envelopes:
            transport.done[envelope.id] = now
        if len(transport.done) >= transport.expect:
            transport.arrived.set()
    return timed_deliver


def expect(transport: Any, count: int) -> None:
    """Start a measurement: forget what arrived before, wait for ``count`` envelopes."""
    transport.done.clear()
    transport.arrived.clear()
    transport.expect = count


async def _pg_databases(names: list[str]) -> dict[str, str]:
    import asyncpg
    conn = await asyncpg.connect(**PG_ADMIN)
    try:
        urls = {}
        for name in names:
            db = f"isles_bench_{name}_{uuid.uuid4().hex[:8]}"
            await conn.execute(f'CREATE DATABASE "{db}"')
            urls[f"{name.upper()}_DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:5432/{db}"
        return urls
    finally:
        await conn.close()


async def _drop_pg(env: dict[str, str]) -> None:
    import asyncpg
    conn = await asyncpg.connect(**PG_ADMIN)
    try:
        for key, url in env.items():
            if key.endswith("_DATABASE_URL"):
                await conn.execute(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


async def _setup(db: str, parts: int):
    """A fresh MES system with ``parts`` parts and one work order each."""
    from isles import System
    from mes import auth, material, work_order
    from mes.material.api import PartIn, create_part
    from mes.work_order.api import WorkOrderIn, create_work_order

    env = {"ISLES_DATA_DIR": tempfile.mkdtemp(prefix="isles-bench-")}
    if db == "postgres":
        env.update(await _pg_databases(["auth", "material", "work_order"]))
        env["MATERIAL_DB_POOL_SIZE"] = env["WORK_ORDER_DB_POOL_SIZE"] = "10"
    transport = TimedTransport()
    system = System("mes", [auth.service, material.service, work_order.service], env=env, transport=transport,
                    relay_options={"batch_size": 500, "poll_interval": 0.2})
    await system.start()
    ids = []
    for start in range(0, parts, 200):
        async with material.service.unit_of_work() as uow:
            for n in range(start, min(start + 200, parts)):
                part = await create_part(uow, PartIn(part_number=f"B-{n:06d}", name=f"bench part {n}"))
                ids.append(part.id)
    await system.drain(120)
    for start in range(0, parts, 200):
        async with work_order.service.unit_of_work() as uow:
            for n, part_id in enumerate(ids[start:start + 200], start):
                await create_work_order(uow, WorkOrderIn(part_id=part_id, quantity=1, work_order_number=f"BW-{n:06d}"))
    await system.drain(120)
    return system, transport, ids, env


async def _rename(service, part_id, name: str):
    from mes.material.api import PartPatch, update_part
    async with service.unit_of_work() as uow:
        await update_part(uow, part_id, PartPatch(name=name))
        envelopes = await uow.commit()
    return envelopes[0].id, time.perf_counter()


async def measure_latency(system, transport, ids, rate: int, count: int) -> tuple[float, float, float]:
    material = system.service("material")
    expect(transport, count)
    committed: dict[str, float] = {}

    async def rename(n: int) -> None:
        event_id, at = await _rename(material, ids[n % len(ids)], f"latency {started} {n}")
        committed[event_id] = at

    # Open loop: each rename starts at its due time, whether or not the ones before it finished
    # (a single writer awaiting each commit could not offer more than one commit's worth a time).
    started = time.perf_counter()
    renames = []
    for n in range(count):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        renames.append(asyncio.create_task(rename(n)))
    offered_for = time.perf_counter() - started
    await asyncio.gather(*renames)
    await asyncio.wait_for(transport.arrived.wait(), 120)
    latencies = sorted((transport.done[e] - t) * 1000 for e, t in committed.items())
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return statistics.median(latencies), p99, count / offered_for


async def measure_curve(system, transport, ids, offered: int, quick: bool) -> list[tuple[int, float, float]]:
    """(rate, p50, p99) at each of CURVE_RATES below ``offered``: the latency curve."""
    curve = []
    for step in sorted(r for r in CURVE_RATES if r < offered):
        p50, p99, _ = await measure_latency(system, transport, ids, step, step * (3 if quick else 10))
        curve.append((step, round(p50, 3), round(p99, 3)))
    return curve


async def measure_throughput(system, transport, ids, count: int, writers: int) -> float:
    material = system.service("material")
    per_writer = count // writers

    async def writer(w: int) -> None:
        for n in range(per_writer):
            await _rename(material, ids[(w + n * writers) % len(ids)], f"throughput {w}-{n}")

    expect(transport, per_writer * writers)
    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    await asyncio.wait_for(transport.arrived.wait(), 300)
    return per_writer * writers / (time.perf_counter() - started)


async def measure_baseline(system, ids, count: int, writers: int) -> float:
    """The same writes with no guarantees: update the part, then the work orders, directly."""
    from mes.material.models import Part
    from mes.work_order.models import WorkOrder

    material, work_order = system.service("material"), system.service("work_order")
    per_writer = count // writers

    async def writer(w: int) -> None:
        for n in range(per_writer):
            part_id = ids[(w + n * writers) % len(ids)]
            async with material.unit_of_work() as uow:
                part = await uow.get(Part, part_id)
                part.name = f"baseline {w}-{n}"
            version = part.version
            async with work_order.unit_of_work() as uow:
                await uow.execute(update(WorkOrder)
                                  .where(WorkOrder.part_id == part_id,
                                         or_(WorkOrder.part_version.is_(None), WorkOrder.part_version < version))
                                  .values(part_name=part.name, part_version=version))

    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return per_writer * writers / (time.perf_counter() - started)


async def run_db(db: str, quick: bool, rate: int) -> dict[str, Any]:
    parts = 200 if quick else 1000
    latency_events = 1000 if quick else 5000
    throughput_events = 2000 if quick else 10000
    writers = 8
    system, transport, ids, env = await _setup(db, parts)
    try:
        baseline = await measure_baseline(system, ids, throughput_events, writers)
        throughput = await measure_throughput(system, transport, ids, throughput_events, writers)
        # Offering close to capacity measures queueing, not latency: cap the offered rate at half
        # of the durable throughput just measured on this machine. Lower rates show the curve.
        offered = min(rate, max(10, int(throughput / 2)))
        count = min(latency_events, offered * (5 if quick else 20))
        await measure_latency(system, transport, ids, offered, min(100, count))  # warm-up
        curve = await measure_curve(system, transport, ids, offered, quick)
        p50, p99, achieved = await measure_latency(system, transport, ids, offered, count)
    finally:
        await system.stop()
        if db == "postgres":
            await _drop_pg(env)
    rate = offered
    return {"transport": "memory", "db": db, "rate": rate, "achieved_rate": round(achieved),
            "p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "throughput": round(throughput),
            "baseline_throughput": round(baseline), "ratio": round(throughput / baseline, 3), "curve": curve}


def print_results(results: list[dict[str, Any]]) -> None:
    table = Table(title="isles events: commit in material -> committed effect in work_order", header_style="bold")
    for column in ("transport", "db", "offered/s", "p50 ms", "p99 ms", "durable ev/s", "baseline ev/s", "ratio"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r["transport"], r["db"], f"{r['rate']} ({r.get('achieved_rate', r['rate'])})",
                      f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}", str(r["throughput"]),
                      str(r["baseline_throughput"]), f"{r['ratio']:.0%}")
    console.print(table)
    console.print("baseline: the same two writes with no outbox, relay or inbox (no delivery guarantee); "
                  "ratio = durable / baseline.\noffered/s: the latency run's rate (achieved in brackets), capped "
                  "at half the durable throughput measured on this machine.")
    curves = [r for r in results if r.get("curve")]
    if curves:
        table = Table(title="latency by offered rate (open loop)", header_style="bold")
        for column in ("transport", "db", "offered/s", "p50 ms", "p99 ms"):
            table.add_column(column, justify="right")
        for r in curves:
            for step, p50, p99 in r["curve"] + [(r["rate"], r["p50_ms"], r["p99_ms"])]:
                table.add_row(r["transport"], r["db"], str(step), f"{p50:.2f}", f"{p99:.2f}")
        console.print(table)
    for r in results:
        keys = ("transport", "db", "rate", "p50_ms", "p99_ms", "throughput", "baseline_throughput", "ratio",
                "relay_ratio", "pipeline_throughput", "pipeline_ratio")
        print("RESULT events " + " ".join(f"{k}={r[k]}" for k in keys if k in r))


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.events", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller run, under a minute")
    parser.add_argument("--db", choices=["sqlite", "postgres", "all"], default="all")
    parser.add_argument("--transport", choices=["memory", "kafka", "redis"], default="memory")
    parser.add_argument("--rate", type=int, default=1000, help="offered events/s for the latency run")
    args = parser.parse_args(argv)
    if args.transport != "memory":
        try:
            from bench.events_broker import run as run_broker
        except ImportError:
            console.print(f"[red]the {args.transport} benchmark is not available in this version[/]")
            return 2
        results = [await run_broker(args.transport, args.quick)]
    else:
        dbs = ["sqlite", "postgres"] if args.db == "all" else [args.db]
        results = []
        for db in dbs:
            console.print(f"[dim]measuring {db} ...[/]")
            results.append(await run_db(db, args.quick, args.rate))
    print_results(results)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(asyncio.run(main(sys.argv[1:])))
