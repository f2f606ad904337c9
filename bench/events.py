"""End-to-end event benchmark: a part renamed in material -> the work order's copy committed.

For each database (SQLite files, PostgreSQL database per service) it measures, in one run:

* latency: renames offered at a steady rate, open loop (each starts at its due time); for each,
  the time from material's commit (state + outbox row) to work_order's commit (inbox row +
  replicated fields) - p50 and p99 at 100 and 200 events/s on the fresh system (three 10-second
  windows at each rate, alternated; the median p99 is ``p99_200_ms``, each window's is
  ``p99_200_windows``, and ``busy_200`` is the share of a core this process used meanwhile), and at
  the capped rate (half the durable throughput) after the windows below;
* durable throughput: renames from concurrent writers until every effect is committed;
* the baseline: the same two writes with no outbox, relay, transport or inbox (material's
  update, then work_order's UPDATE), with the same concurrency - what you get with no guarantees;
* CPU per event, with 1 and with 8 writers: user + system time of this process (which runs every
  service, relay and consumer) over a window after a warm-up, divided by the effects committed,
  durable and baseline (median of 5 windows, alternated; 1 with ``--quick``). ``overhead`` = durable -
  baseline is what isles adds. Unlike rates, CPU time per event hardly moves when the shared
  machine is busy;
* database round trips per event by stage (producer, relay, consumer), counted with SQLAlchemy
  engine events: statements, plus the BEGIN that asyncpg sends before a transaction's first
  statement and the COMMIT/ROLLBACK that ends it.

    python -m bench.events [--quick] [--db sqlite|postgres|all] [--transport memory|kafka|redis]

Ends with one ``RESULT events ...`` line per configuration (see DESIGN.md, "Benchmarks").
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import tempfile
import time
import uuid
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from sqlalchemy import event, or_, update

from bench import make_console
from isles.transport import InMemoryTransport

console = make_console()
CURVE_RATES = (100, 200)  # offered events/s of the latency curve (on the fresh system)
CURVE_WINDOWS = 3  # windows at each rate (the median is kept)
WRITER_COUNTS = (1, 8)  # concurrent writers of the CPU and throughput windows
STAGES = ("producer", "relay", "consumer")
#: set by the benchmark's writer tasks: material's statements in them are the producer's, the rest the relay's
_stage: ContextVar[str | None] = ContextVar("bench_stage", default=None)
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
    """The baseline's write (the part's new name) and its event: what differs is what isles adds.

    Not material's ``update_part``: it also writes an audit trail row, application work the
    baseline does not do, which would be counted as isles' overhead.
    """
    from mes.material.models import Part
    from mes.material.parts import part_updated
    async with service.unit_of_work() as uow:
        part = await uow.get(Part, part_id)
        previous, part.name = part.name, name
        uow.publish(part_updated(part, {"name": name}, {"name": previous}), entity=part)
        envelopes = await uow.commit()
    return envelopes[0].id, time.perf_counter()


async def measure_latency(system, transport, ids, rate: int, count: int) -> tuple[float, float, float]:
    material = system.service("material")
    expect(transport, count)
    committed: dict[str, float] = {}

    async def rename(n: int) -> None:
        _stage.set("producer")
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


@dataclass
class CurvePoint:
    """The latency at one offered rate: medians over ``windows`` (each ``rate`` x 10 s, open loop)."""

    rate: int
    p50: float
    p99: float
    p99_windows: list[float]  # each window's p99: one stall of the shared machine moves only its own
    busy: float  # CPU seconds of this process per second while the rate was offered (1.0 = one core)

    def windows(self, between: str = "/") -> str:
        return between.join(f"{p:g}" for p in self.p99_windows)


async def measure_curve(system, transport, ids, quick: bool) -> list[CurvePoint]:
    """The latency curve: each of CURVE_RATES in turn, CURVE_WINDOWS times (1 with ``--quick``).

    The rates alternate (100, 200, 100, 200, ...) so that a slow minute of the shared machine
    falls on both. Each rate reports the median of its windows' p50 and p99, and how busy this
    process (every service, relay and consumer) kept a core: near 1.0 the events queue for the
    CPU, and p99 measures the queue, not isles.
    """
    seen: dict[int, list[tuple[float, float, float]]] = {step: [] for step in CURVE_RATES}
    for _ in range(1 if quick else CURVE_WINDOWS):
        for step in sorted(CURVE_RATES):
            cpu, started = _cpu_seconds(), time.perf_counter()
            p50, p99, _ = await measure_latency(system, transport, ids, step, step * (3 if quick else 10))
            seen[step].append((p50, p99, (_cpu_seconds() - cpu) / (time.perf_counter() - started)))
    return [CurvePoint(step, round(statistics.median(w[0] for w in windows), 3),
                       round(statistics.median(w[1] for w in windows), 3), [round(w[1], 1) for w in windows],
                       round(statistics.median(w[2] for w in windows), 2))
            for step, windows in seen.items()]


async def measure_throughput(system, transport, ids, count: int, writers: int) -> float:
    material = system.service("material")
    per_writer = count // writers
    run = uuid.uuid4().hex[:8]  # every rename changes the name (an unchanged name publishes nothing)

    async def writer(w: int) -> None:
        _stage.set("producer")
        for n in range(per_writer):
            await _rename(material, ids[(w + n * writers) % len(ids)], f"throughput {run} {w}-{n}")

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
        _stage.set("producer")
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


class RoundTrips:
    """Database round trips by stage, counted with SQLAlchemy engine events.

    material's engine carries the producer (statements run by the benchmark's writer tasks, which
    set ``_stage``) and the relay (everything else on it); work_order's carries the consumer, and
    its own relay's polls (statements on its outbox or bucket claims, counted as relay).
    On PostgreSQL asyncpg sends BEGIN before a transaction's first statement (one round trip) and
    COMMIT/ROLLBACK only for a transaction that began; connections in autocommit send neither.
    """

    def __init__(self, system: Any) -> None:
        self.counts = dict.fromkeys(STAGES, 0)
        for service, default in (("material", "relay"), ("work_order", "consumer")):
            self._listen(system.service(service).runtime.database.engine.sync_engine, default)

    def reset(self) -> None:
        self.counts = dict.fromkeys(STAGES, 0)

    def total(self) -> int:
        return sum(self.counts.values())

    def _listen(self, engine: Any, default: str) -> None:
        pg = engine.dialect.name == "postgresql"

        def stage(statement: str = "") -> str:
            if default == "relay":
                return "producer" if _stage.get() == "producer" else "relay"
            # work_order's own relay (its outbox, its bucket claims) is relay work, not the consumer's
            return "relay" if "isles_outbox" in statement or "pg_locks" in statement else default

        def in_transaction(dbapi_connection: Any) -> bool:
            return getattr(dbapi_connection, "_transaction", None) is not None

        def starts_transaction(dbapi_connection: Any) -> bool:
            return (not in_transaction(dbapi_connection)
                    and getattr(dbapi_connection, "isolation_level", None) != "autocommit")

        def on_execute(conn, _cursor, statement, _parameters, _context, _executemany) -> None:
            dbapi_connection = conn.connection.dbapi_connection
            self.counts[stage(statement)] += 2 if pg and starts_transaction(dbapi_connection) else 1

        def on_end(conn) -> None:
            if conn.invalidated:
                return
            if not pg or in_transaction(conn.connection.dbapi_connection):
                self.counts[stage()] += 1

        def on_reset(dbapi_connection, _record, _state) -> None:
            if pg and in_transaction(dbapi_connection):
                self.counts[stage()] += 1

        event.listen(engine, "before_cursor_execute", on_execute)
        event.listen(engine, "commit", on_end)
        event.listen(engine, "rollback", on_end)
        event.listen(engine.pool, "reset", on_reset)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def warm_up(system, transport, ids) -> None:
    """Before the curve: every statement compiled and every pool filled, then a quiet second for
    the set-up's own aftermath (its checkpoint, autovacuum's look at the new tables)."""
    await measure_throughput(system, transport, ids, 800, 8)
    await measure_latency(system, transport, ids, 100, 100)
    await _settle(system)
    await asyncio.sleep(1.0)


async def _settle(system: Any) -> None:
    """Let the relay's marks and the last commits finish outside the measured window."""
    await system.drain(60)
    await asyncio.sleep(0.2)


async def cpu_window(system, transport, ids, trips: RoundTrips, writers: int, count: int,
                     durable: bool) -> dict[str, Any]:
    """One measured window of ``count`` renames by ``writers`` writers, after a warm-up.

    Returns events/s, CPU ms per event and round trips per event (by stage for the durable path).
    """
    async def run(n: int) -> float:
        if durable:
            return await measure_throughput(system, transport, ids, n, writers)
        return await measure_baseline(system, ids, n, writers)

    await run(max(writers * 10, count // 10))  # warm-up: pools, statement caches, JIT-less Python caches
    await _settle(system)
    trips.reset()
    cpu = _cpu_seconds()
    rate = await run(count)
    cpu = _cpu_seconds() - cpu
    events = count // writers * writers
    counts = dict(trips.counts)
    await _settle(system)
    return {"rate": rate, "cpu_ms": cpu * 1000 / events, "round_trips": sum(counts.values()) / events,
            "by_stage": {k: v / events for k, v in counts.items()}}


async def measure_cpu(system, transport, ids, trips: RoundTrips, writers: int, count: int,
                      repeats: int) -> dict[str, Any]:
    """Durable and baseline windows, alternated ``repeats`` times; the median of each figure."""
    durable, baseline = [], []
    for _ in range(repeats):
        baseline.append(await cpu_window(system, transport, ids, trips, writers, count, durable=False))
        durable.append(await cpu_window(system, transport, ids, trips, writers, count, durable=True))

    def median(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    cpu, base_cpu = median(durable, "cpu_ms"), median(baseline, "cpu_ms")
    return {"writers": writers, "throughput": round(median(durable, "rate")),
            "baseline_throughput": round(median(baseline, "rate")),
            "ratio": round(median(durable, "rate") / median(baseline, "rate"), 3),
            "cpu_ms_per_event": round(cpu, 3), "baseline_cpu_ms_per_event": round(base_cpu, 3),
            "overhead_cpu_ms_per_event": round(cpu - base_cpu, 3),
            "round_trips_per_event": round(median(durable, "round_trips"), 2),
            "baseline_round_trips_per_event": round(median(baseline, "round_trips"), 2),
            **{f"{stage}_round_trips": round(statistics.median(r["by_stage"][stage] for r in durable), 2)
               for stage in STAGES}}


def at_200(curve: list[CurvePoint]) -> dict[str, Any]:
    """The RESULT keys of 200 events/s offered, from the curve (measured on a fresh system, before
    the windows): ``p99_200_ms`` (median of the windows), each window's p99, and how busy the
    process was."""
    point = next(point for point in curve if point.rate == 200)
    return {"p99_200_ms": point.p99, "p99_200_windows": point.windows(),
            "busy_200": point.busy}


def cpu_plan(quick: bool) -> tuple[dict[int, int], int]:
    """Renames per CPU window by writer count, and how many windows of each (the median is kept)."""
    return ({1: 300, 8: 800}, 1) if quick else ({1: 1500, 8: 4000}, 5)


async def run_db(db: str, quick: bool, rate: int) -> list[dict[str, Any]]:
    """One result per writer count: CPU, round trips and throughput; latency is the database's."""
    parts = 200 if quick else 1000
    latency_events = 1000 if quick else 5000
    cpu_events, repeats = cpu_plan(quick)
    system, transport, ids, env = await _setup(db, parts)
    trips = RoundTrips(system)
    try:
        # The curve first, on a fresh system: after the windows below (some 100,000 renames) the
        # database is busy for a while with their aftermath (autovacuum, checkpoints, a long WAL),
        # which is not what a steady 100 or 200 events/s meets.
        await warm_up(system, transport, ids)
        curve = curve_all = await measure_curve(system, transport, ids, quick)
        by_writers = [await measure_cpu(system, transport, ids, trips, writers, cpu_events[writers], repeats)
                      for writers in WRITER_COUNTS]
        throughput = by_writers[-1]["throughput"]
        # Offering close to capacity measures queueing, not latency: cap the offered rate at half
        # of the durable throughput just measured on this machine.
        offered = min(rate, max(10, int(throughput / 2)))
        curve = [point for point in curve if point.rate < offered]  # the table shows the capped rate below
        count = min(latency_events, offered * (5 if quick else 20))
        p50, p99, achieved = await measure_latency(system, transport, ids, offered, count)
        latency = {"rate": offered, "achieved_rate": round(achieved), "p50_ms": round(p50, 3),
                   "p99_ms": round(p99, 3), **at_200(curve_all)}
    finally:
        await system.stop()
        if db == "postgres":
            await _drop_pg(env)
    return [{"transport": "memory", "db": db, **latency, **figures, "curve": curve if figures is by_writers[-1] else []}
            for figures in by_writers]


def print_results(results: list[dict[str, Any]]) -> None:
    table = Table(title="isles events: commit in material -> committed effect in work_order", header_style="bold")
    for column in ("transport", "db", "writers", "offered/s", "p50 ms", "p99 ms", "durable ev/s", "baseline ev/s",
                   "ratio"):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(r["transport"], r["db"], str(r.get("writers", 8)),
                      f"{r['rate']} ({r.get('achieved_rate', r['rate'])})", f"{r['p50_ms']:.2f}",
                      f"{r['p99_ms']:.2f}", str(r["throughput"]),
                      str(r["baseline_throughput"]), f"{r['ratio']:.0%}")
    console.print(table)
    console.print("baseline: the same two writes with no outbox, relay or inbox (no delivery guarantee); "
                  "ratio = durable / baseline.\noffered/s: the latency run's rate (achieved in brackets), capped "
                  "at half the durable throughput measured on this machine.")
    curves = [r for r in results if r.get("curve")]
    if curves:
        table = Table(title="latency by offered rate (open loop; medians of the windows)", header_style="bold")
        for column in ("transport", "db", "offered/s", "p50 ms", "p99 ms", "p99 of each window", "CPU busy"):
            table.add_column(column, justify="right")
        for r in curves:
            for point in r["curve"]:
                table.add_row(r["transport"], r["db"], str(point.rate), f"{point.p50:.2f}", f"{point.p99:.2f}",
                              point.windows(" / "), f"{point.busy:.0%}")
            table.add_row(r["transport"], r["db"], f"{r['rate']} (capped)", f"{r['p50_ms']:.2f}",
                          f"{r['p99_ms']:.2f}", "", "")
        console.print(table)
        console.print("CPU busy: this process's CPU time per second of the window (100% = one core): every "
                      "service, relay and consumer runs in it, so near 100% an event waits for the CPU.")
    cpu = [r for r in results if "cpu_ms_per_event" in r]
    if cpu:
        table = Table(title="CPU of this process per event (ms) and database round trips per event",
                      header_style="bold")
        for column in ("db", "writers", "durable", "baseline", "overhead", "round trips", "producer", "relay",
                       "consumer", "baseline trips"):
            table.add_column(column, justify="right")
        for r in cpu:
            table.add_row(r["db"], str(r["writers"]), f"{r['cpu_ms_per_event']:.3f}",
                          f"{r['baseline_cpu_ms_per_event']:.3f}",
                          f"{r['overhead_cpu_ms_per_event']:.3f}", f"{r['round_trips_per_event']:.2f}",
                          f"{r['producer_round_trips']:.2f}", f"{r['relay_round_trips']:.2f}",
                          f"{r['consumer_round_trips']:.2f}", f"{r['baseline_round_trips_per_event']:.2f}")
        console.print(table)
    for r in results:
        keys = ("transport", "db", "writers", "rate", "p50_ms", "p99_ms", "p99_200_ms", "p99_200_windows",
                "busy_200", "throughput",
                "baseline_throughput", "ratio", "cpu_ms_per_event", "baseline_cpu_ms_per_event",
                "overhead_cpu_ms_per_event", "round_trips_per_event", "producer_round_trips", "relay_round_trips",
                "consumer_round_trips", "relay_ratio", "pipeline_throughput", "pipeline_ratio",
                "pipeline_cpu_us_per_event", "raw_cpu_us_per_event")
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
        results = await run_broker(args.transport, args.quick)
    else:
        dbs = ["sqlite", "postgres"] if args.db == "all" else [args.db]
        results = []
        for db in dbs:
            console.print(f"[dim]measuring {db} ...[/]")
            results.extend(await run_db(db, args.quick, args.rate))
    print_results(results)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(asyncio.run(main(sys.argv[1:])))
