"""Soak: `isles run` (the whole MES) under steady mixed HTTP traffic, watched from outside.

It starts ``isles run`` (``ISLES_SYSTEM=mes.system:system``) as a subprocess on a free port of
127.0.0.1 - on SQLite files in a temporary folder, or on PostgreSQL with a database per service
that the bench creates and drops - logs in as ``admin`` and offers **open-loop** mixed traffic:
about 40 reads/s (list and get parts, lots, work orders; the dispatch list; inventory) and 10
event-causing writes/s (rename a part, receive and release a lot, create and release a work
order, issue material with an ``Idempotency-Key``, now and then retried). Each request starts at
its due time whether or not the earlier ones finished, so a slowing server shows as latency, not
as a lower offered rate; at most ``MAX_IN_FLIGHT`` requests are outstanding (more are counted as
skipped) and each has a timeout.

Every ``--interval`` seconds (10) it records, from outside the server: its RSS and open files
(``/proc/<pid>``), connections per database (``pg_stat_activity``; on SQLite the descriptors open
on each service's file), p50/p99 of the interval, 4xx/5xx, and per service the outbox backlog and
the outbox, inbox and dead-letter row counts, read from the service databases directly.

At the end, once the outboxes are drained, every replicated field is compared with its owner:
work_order's copies of part number and name (on its orders and its part read model) against
material's parts; material's copies of work order number, part and status against work_order's
orders; resource's product and part read-model part numbers against material's parts.

    python -m bench.soak [--quick] [--minutes N] [--db sqlite|postgres] [--rate R] [--short-windows]
                         [--trace-memory DIR]

``--short-windows`` runs the server with ``ISLES_OUTBOX_RETENTION=60s``, ``ISLES_INBOX_RETENTION=90s``
and ``ISLES_INBOX_PURGE_INTERVAL=5s``, so the outbox and the inbox fill their windows within
minutes and their sizes can be seen holding steady (an inbox row is kept for its window plus the
clock allowance: 180 s here). ``--trace-memory DIR`` has the server write memory samples to DIR (see
bench/memtrace/sitecustomize.py): what it holds in Python objects, in malloc and in its heap.
Ends with one ``RESULT soak ...`` line (see DESIGN.md, "Benchmarks").
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx
from rich.table import Table

from bench import make_console

console = make_console()
PG_ADMIN = dict(host="127.0.0.1", port=5432, user="postgres", database="postgres")
BENCH_APP = "isles-bench-soak"  # application_name of the bench's own PostgreSQL connections
MAX_IN_FLIGHT = 256
REQUEST_TIMEOUT = 15.0
POOL_PARTS = 20  # parts renamed by the traffic, each with a work order and a resource product
READ_SHARE = 0.8  # 40 of 50 requests/s
SHORT_WINDOWS = {"ISLES_OUTBOX_RETENTION": "60s", "ISLES_INBOX_RETENTION": "90s", "ISLES_INBOX_PURGE_INTERVAL": "5s"}
READS = {"list_parts": 5, "get_part": 5, "list_lots": 5, "get_lot": 5, "list_work_orders": 6,
         "get_work_order": 6, "dispatch_list": 4, "inventory": 4}
WRITES = {"rename_part": 3, "receive_lot": 2, "release_lot": 1, "create_work_order": 2, "release_work_order": 1,
          "issue_material": 1}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (0 with fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


# -- the server -------------------------------------------------------------------------------------
class Databases:
    """The service databases, read directly (never through the server): SQLite files or PostgreSQL."""

    def __init__(self, db: str, services: list[str], data_dir: Path) -> None:
        self.db, self.services, self.data_dir = db, services, data_dir
        self.names: dict[str, str] = {}  # service -> PostgreSQL database
        self._conns: dict[str, Any] = {}

    def env(self) -> dict[str, str]:
        return {f"{s.upper()}_DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{n}" for s, n in self.names.items()}

    async def create(self) -> None:
        if self.db != "postgres":
            return
        import asyncpg
        conn = await asyncpg.connect(**PG_ADMIN)
        try:
            run = uuid.uuid4().hex[:8]
            for service in self.services:
                self.names[service] = f"isles_soak_{service}_{run}"
                await conn.execute(f'CREATE DATABASE "{self.names[service]}"')
        finally:
            await conn.close()

    async def drop(self) -> None:
        for conn in self._conns.values():
            await conn.close()
        self._conns.clear()
        if not self.names:
            return
        import asyncpg
        conn = await asyncpg.connect(**PG_ADMIN)
        try:
            for name in self.names.values():
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    async def query(self, service: str, sql: str) -> list[tuple]:
        if self.db == "postgres":
            conn = self._conns.get(service)
            if conn is None:
                import asyncpg
                conn = self._conns[service] = await asyncpg.connect(
                    **{**PG_ADMIN, "database": self.names[service]}, server_settings={"application_name": BENCH_APP})
            return [tuple(r) for r in await conn.fetch(sql)]

        def read() -> list[tuple]:
            conn = sqlite3.connect(f"file:{self.data_dir / (service + '.db')}?mode=ro", uri=True, timeout=10)
            try:
                return conn.execute(sql).fetchall()
            finally:
                conn.close()
        return await asyncio.to_thread(read)

    async def connections(self, pid: int) -> dict[str, int]:
        """Connections the server holds per service database."""
        if self.db == "postgres":
            rows = await self.query(self.services[0], "SELECT datname, count(*) FROM pg_stat_activity "
                                    f"WHERE application_name <> '{BENCH_APP}' AND datname LIKE 'isles_soak_%' "
                                    "GROUP BY datname")
            by_name = dict(rows)
            return {s: int(by_name.get(n, 0)) for s, n in self.names.items()}
        counts = dict.fromkeys(self.services, 0)
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            name = os.path.basename(target)
            if name.endswith(".db") and name[:-3] in counts and Path(target).parent == self.data_dir:
                counts[name[:-3]] += 1
        return counts

    async def tables(self, service: str) -> dict[str, int]:
        (backlog, outbox), = await self.query(
            service, "SELECT count(*) FILTER (WHERE published_at IS NULL), count(*) FROM isles_outbox")
        (inbox,), = await self.query(service, "SELECT count(*) FROM isles_inbox")
        (dead,), = await self.query(service, "SELECT count(*) FROM isles_dead_letters")
        return {"backlog": backlog, "outbox": outbox, "inbox": inbox, "dead": dead}


class Server:
    """``isles run`` in a subprocess; its output goes to a log file (it prints generated passwords)."""

    def __init__(self, dbs: Databases, port: int, password: str, extra_env: dict[str, str]) -> None:
        self.dbs, self.port, self.password = dbs, port, password
        self.log_path = dbs.data_dir / "server.log"
        self.env = {**os.environ, "ISLES_SYSTEM": "mes.system:system", "ISLES_DATA_DIR": str(dbs.data_dir),
                    "MES_ADMIN_PASSWORD": password, "MES_DEMO_PASSWORD": secrets.token_urlsafe(16),
                    "PYTHONUNBUFFERED": "1", **dbs.env(), **extra_env}
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, timeout: float = 180.0) -> None:
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "isles.cli", "run", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"isles run exited with status {self.process.returncode}: {self.tail()}")
                try:
                    if (await client.get("/health")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
        raise RuntimeError(f"isles run did not answer /health within {timeout:.0f}s: {self.tail()}")

    async def stop(self) -> int | None:
        """Ctrl+C, as a person would; killed if it has not exited after 30 s."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        self.process.send_signal(signal.SIGINT)
        for _ in range(300):
            if self.process.poll() is not None:
                return self.process.returncode
            await asyncio.sleep(0.1)
        self.process.kill()
        return self.process.wait()

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory(self) -> tuple[float, int]:
        """(RSS in MiB, open file descriptors) of the server process."""
        rss = 0.0
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
        return rss, len(os.listdir(f"/proc/{self.pid}/fd"))

    def tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").strip().splitlines()[-lines:])
        except OSError:
            return ""

    def tracebacks(self) -> int:
        try:
            return self.log_path.read_text(errors="replace").count("Traceback (most recent call last)")
        except OSError:
            return 0


# -- the traffic ------------------------------------------------------------------------------------
@dataclass
class Stats:
    """Every request's outcome: (completed at, op, ms, status or 0 for a failure)."""

    records: list[tuple[float, str, float, int]] = field(default_factory=list)
    skipped: int = 0
    bad_replays: int = 0
    unexpected: list[str] = field(default_factory=list)

    def add(self, op: str, ms: float, status: int, detail: str = "") -> None:
        self.records.append((time.monotonic(), op, ms, status))
        if (status == 0 or status >= 400) and len(self.unexpected) < 10:
            self.unexpected.append(f"{op}: {status or 'no response'} {detail[:200]}")


class Shop:
    """The client: login, the ids the traffic works on, and one coroutine per operation."""

    def __init__(self, base_url: str, password: str, stats: Stats, rng: random.Random) -> None:
        self.client = httpx.AsyncClient(base_url=base_url, timeout=REQUEST_TIMEOUT,
                                        # idle connections closed before uvicorn's 5 s keep-alive ends them:
                                        # reusing one the server is closing is a client race, not an error
                                        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64,
                                                            keepalive_expiry=2.0))
        self.password, self.stats, self.rng = password, stats, rng
        self.refresh_token = ""
        self.expires_in = 900
        self.strut = self.component = ""
        self.parts: list[dict[str, Any]] = []  # the rename pool: id, n (renames so far)
        self.busy_parts: set[str] = set()
        self.part_ids: list[str] = []
        self.lots: list[str] = []  # every lot seen or received
        self.received: list[str] = []  # received, not yet released
        self.released_lots: list[str] = []
        self.orders: list[str] = []
        self.forecast: list[str] = []  # created, not yet released
        self.released_orders: list[tuple[float, str]] = []  # (released at, id)
        self.last_issue: tuple[str, dict, dict] | None = None  # key, body, first response

    async def login(self) -> None:
        r = await self.client.post("/api/auth/login", json={"username": "admin", "password": self.password})
        r.raise_for_status()
        self._tokens(r.json())

    def _tokens(self, body: dict[str, Any]) -> None:
        self.client.headers["Authorization"] = f"Bearer {body['accessToken']}"
        self.refresh_token, self.expires_in = body["refreshToken"], int(body["expiresIn"])

    async def keep_token(self) -> None:
        """Rotate the access token at half its life (a 60-minute run outlives a 15-minute token)."""
        while True:
            await asyncio.sleep(max(30, self.expires_in / 2))
            try:
                r = await self.client.post("/api/auth/refresh", json={"refreshToken": self.refresh_token})
                r.raise_for_status()
                self._tokens(r.json())
            except httpx.HTTPError:
                await self.login()

    async def call(self, op: str, method: str, url: str, expect: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        started = time.perf_counter()
        try:
            r = await self.client.request(method, url, **kw)
        except httpx.HTTPError as exc:
            self.stats.add(op, (time.perf_counter() - started) * 1000, 0, type(exc).__name__)
            return None
        self.stats.add(op, (time.perf_counter() - started) * 1000, r.status_code,
                       "" if r.status_code in expect else r.text)
        return r if r.status_code in expect else None

    async def setup(self) -> None:
        """The rename pool (parts with a work order and a product each) and the seed's ids."""
        await self.login()
        parts = (await self.client.get("/api/material/parts", params={"limit": 100})).json()["items"]
        by_number = {p["partNumber"]: p["id"] for p in parts}
        self.strut, self.component = by_number["P-12345"], by_number["P-20002"]  # on P-12345's released BOM
        run = uuid.uuid4().hex[:6].upper()
        for n in range(POOL_PARTS):
            r = await self.client.post("/api/material/parts", json={"partNumber": f"SOAK-{run}-{n:02d}",
                                                                   "name": f"soak part {n}"})
            r.raise_for_status()
            self.parts.append({"id": r.json()["id"], "n": 0, "number": f"SOAK-{run}-{n:02d}"})
        await asyncio.sleep(2)  # let work_order and resource learn the parts from their events
        for n, part in enumerate(self.parts):
            for url, body in (("/api/work-order/work-orders", {"partId": part["id"], "quantity": 5}),
                              ("/api/resource/products", {"productNumber": f"SOAK-PRD-{run}-{n:02d}",
                                                          "name": f"soak product {n}", "partId": part["id"]})):
                r = await self.client.post(url, json=body)
                if r.status_code != 201:
                    raise RuntimeError(f"setup: POST {url} answered {r.status_code}: {r.text[:300]}")
        self.part_ids = [p["id"] for p in parts] + [p["id"] for p in self.parts]
        lots = (await self.client.get("/api/material/lots", params={"limit": 100})).json()["items"]
        self.lots = [lot["id"] for lot in lots]
        self.orders = [o["id"] for o in
                       (await self.client.get("/api/work-order/work-orders", params={"limit": 100})).json()["items"]]
        for _ in range(3):  # a few released lots and orders to issue from, before the traffic starts
            await self.receive_lot()
            await self.create_work_order()
        for _ in range(3):
            await self.release_lot()
            await self.release_work_order()
        self.stats.records.clear()
        self.stats.unexpected.clear()

    # reads
    async def list_parts(self) -> None:
        await self.call("list_parts", "GET", "/api/material/parts", params={"limit": 50})

    async def get_part(self) -> None:
        await self.call("get_part", "GET", f"/api/material/parts/{self.rng.choice(self.part_ids)}")

    async def list_lots(self) -> None:
        await self.call("list_lots", "GET", "/api/material/lots", params={"limit": 50})

    async def get_lot(self) -> None:
        await self.call("get_lot", "GET", f"/api/material/lots/{self.rng.choice(self.lots)}")

    async def list_work_orders(self) -> None:
        await self.call("list_work_orders", "GET", "/api/work-order/work-orders", params={"limit": 50})

    async def get_work_order(self) -> None:
        await self.call("get_work_order", "GET", f"/api/work-order/work-orders/{self.rng.choice(self.orders)}")

    async def dispatch_list(self) -> None:
        await self.call("dispatch_list", "GET", "/api/work-order/dispatch-list", params={"limit": 50})

    async def inventory(self) -> None:
        await self.call("inventory", "GET", "/api/material/inventory", params={"limit": 50})

    # writes: each causes at least one event
    async def rename_part(self) -> None:
        free = [p for p in self.parts if p["id"] not in self.busy_parts]
        if not free:
            return await self.receive_lot()
        part = self.rng.choice(free)
        self.busy_parts.add(part["id"])
        try:
            part["n"] += 1
            # alternately the name (work_order's copies) and the number (work_order's and resource's)
            body = ({"name": f"soak part renamed {part['n']}"} if part["n"] % 2
                    else {"partNumber": f"{part['number']}-{part['n']}"})
            await self.call("rename_part", "PATCH", f"/api/material/parts/{part['id']}", json=body)
        finally:
            self.busy_parts.discard(part["id"])

    async def receive_lot(self) -> None:
        r = await self.call("receive_lot", "POST", "/api/material/lots",
                            json={"partId": self.component, "quantity": 1000, "supplier": "Soak Supply"})
        if r is not None:
            self.lots.append(r.json()["id"])
            self.received.append(r.json()["id"])

    async def release_lot(self) -> None:
        if not self.received:
            return await self.receive_lot()
        lot = self.received.pop(0)
        if await self.call("release_lot", "POST", f"/api/material/lots/{lot}/status", json={"status": "released"}):
            self.released_lots.append(lot)

    async def create_work_order(self) -> None:
        r = await self.call("create_work_order", "POST", "/api/work-order/work-orders",
                            json={"partId": self.strut, "quantity": 1000, "priority": self.rng.randint(1, 1000)})
        if r is not None:
            self.orders.append(r.json()["id"])
            self.forecast.append(r.json()["id"])

    async def release_work_order(self) -> None:
        if not self.forecast:
            return await self.create_work_order()
        order = self.forecast.pop(0)
        if await self.call("release_work_order", "POST", f"/api/work-order/work-orders/{order}/release", json={}):
            self.released_orders.append((time.monotonic(), order))

    async def issue_material(self) -> None:
        """One unit of a released lot into a released order; one in ten retries the last issue's key,
        which must answer the first response again and issue nothing."""
        if self.last_issue is not None and self.rng.random() < 0.1:
            key, body, first = self.last_issue
            self.last_issue = None
            r = await self.call("issue_material_retry", "POST", "/api/material/consumptions", json=body,
                                headers={"Idempotency-Key": key})
            if r is not None and (r.headers.get("idempotent-replayed") != "true" or r.json() != first):
                self.stats.bad_replays += 1
            return
        # material learns of a release from work_order's event: give it a moment (2 s)
        ready = [o for at, o in self.released_orders[-50:] if time.monotonic() - at > 2]
        if not ready or not self.released_lots:
            return await self.release_work_order()
        body = {"lotId": self.rng.choice(self.released_lots[-20:]), "workOrderId": self.rng.choice(ready),
                "quantity": 1}
        key = str(uuid.uuid4())
        r = await self.call("issue_material", "POST", "/api/material/consumptions", json=body,
                            headers={"Idempotency-Key": key})
        if r is not None:
            self.last_issue = (key, body, r.json())

    async def close(self) -> None:
        await self.client.aclose()


async def offer(shop: Shop, rate: float, seconds: float, rng: random.Random) -> None:
    """Open loop: request n starts at ``n / rate`` s, whatever happened to the ones before."""
    reads, writes = list(READS), list(WRITES)
    read_w, write_w = list(READS.values()), list(WRITES.values())
    in_flight: set[asyncio.Task] = set()
    started = time.monotonic()
    n = 0
    while True:
        due = started + n / rate
        if due - started >= seconds:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= MAX_IN_FLIGHT:
            shop.stats.skipped += 1
        else:
            op = (rng.choices(reads, read_w)[0] if rng.random() < READ_SHARE else rng.choices(writes, write_w)[0])
            task = asyncio.create_task(getattr(shop, op)())
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        n += 1
    if in_flight:
        await asyncio.wait(in_flight, timeout=REQUEST_TIMEOUT + 5)


# -- samples and checks -----------------------------------------------------------------------------
@dataclass
class Sample:
    t: float
    requests: int
    rps: float
    c4xx: int
    c5xx: int
    failed: int
    p50: float
    p99: float
    rss: float
    fds: int
    cpu: float  # the server's CPU seconds so far
    pressure: float  # the machine's CPU pressure (PSI "some", avg10, %): time runnable tasks waited for a core
    conns: dict[str, int]
    tables: dict[str, dict[str, int]]

    def total(self, key: str) -> int:
        return sum(t[key] for t in self.tables.values())


async def sample(server: Server, dbs: Databases, stats: Stats, since: float, start: float, seen: int) -> Sample:
    window = stats.records[seen:]
    ms = [r[2] for r in window]
    rss, fds = server.memory()
    tables = {s: await dbs.tables(s) for s in dbs.services}
    now = time.monotonic()
    return Sample(t=now - start, requests=len(window), rps=len(window) / max(now - since, 1e-9),
                  c4xx=sum(400 <= r[3] < 500 for r in window), c5xx=sum(r[3] >= 500 for r in window),
                  failed=sum(r[3] == 0 for r in window), p50=percentile(ms, 0.5), p99=percentile(ms, 0.99),
                  rss=rss, fds=fds, cpu=server.cpu_seconds(), pressure=cpu_pressure(),
                  conns=await dbs.connections(server.pid), tables=tables)


async def watch(server: Server, dbs: Databases, stats: Stats, start: float, interval: float,
                samples: list[Sample], stop: asyncio.Event) -> None:
    seen, since = len(stats.records), time.monotonic()
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except asyncio.TimeoutError:
            pass
        end = len(stats.records)
        samples.append(await sample(server, dbs, stats, since, start, seen))
        seen, since = end, time.monotonic()
        s = samples[-1]
        console.print(f"[dim]{s.t:6.0f}s  {s.rps:5.1f} req/s  p99 {s.p99:6.1f} ms  4xx {s.c4xx}  5xx {s.c5xx}  "
                      f"rss {s.rss:6.1f} MiB  backlog {s.total('backlog')}  inbox {s.total('inbox')}[/]",
                      soft_wrap=True)


def cpu_pressure() -> float:
    """The share of the last 10 s in which some runnable task waited for a CPU (the machine is shared)."""
    try:
        return float(Path("/proc/pressure/cpu").read_text().split()[1].split("=")[1])
    except (OSError, IndexError, ValueError):
        return float("nan")


def _id(value: Any) -> str | None:
    return None if value is None else str(uuid.UUID(str(value)))


async def replica_mismatches(dbs: Databases) -> list[str]:
    """Every replicated field that differs from its owner's value (one line each)."""
    parts = {_id(i): (number, name) for i, number, name in
             await dbs.query("material", "SELECT id, part_number, name FROM parts")}
    orders = {_id(i): (number, _id(part), status) for i, number, part, status in
              await dbs.query("work_order", "SELECT id, work_order_number, part_id, status FROM work_orders")}
    found: list[str] = []

    def compare(where: str, key: str | None, owner: dict, fields: dict[str, tuple[Any, int]]) -> None:
        if key not in owner:
            found.append(f"{where} {key}: unknown to its owner")
            return
        for name, (copy, index) in fields.items():
            if copy != owner[key][index]:
                found.append(f"{where} {key} {name}: copy {copy!r}, owner {owner[key][index]!r}")

    for i, part, number, name in await dbs.query("work_order",
                                                 "SELECT id, part_id, part_number, part_name FROM work_orders"):
        compare(f"work_order.work_orders[{_id(i)}] part", _id(part), parts,
                {"part_number": (number, 0), "part_name": (name, 1)})
    for i, number, name in await dbs.query("work_order", "SELECT id, part_number, part_name FROM replicated_parts"):
        compare("work_order.replicated_parts", _id(i), parts, {"part_number": (number, 0), "part_name": (name, 1)})
    copies = {_id(i): (number, _id(part), status) for i, number, part, status in await dbs.query(
        "material", "SELECT id, work_order_number, part_id, status FROM replicated_work_orders")}
    for key in orders:
        if key not in copies:
            found.append(f"material.replicated_work_orders {key}: missing")
    for key, (number, part, status) in copies.items():
        compare("material.replicated_work_orders", key, orders,
                {"work_order_number": (number, 0), "part_id": (part, 1), "status": (status, 2)})
    for i, part, number in await dbs.query("resource", "SELECT id, part_id, part_number FROM products "
                                                        "WHERE part_id IS NOT NULL"):
        compare(f"resource.products[{_id(i)}] part", _id(part), parts, {"part_number": (number, 0)})
    for i, number in await dbs.query("resource", "SELECT id, part_number FROM replicated_parts"):
        compare("resource.replicated_parts", _id(i), parts, {"part_number": (number, 0)})
    return found


async def settle(dbs: Databases, check: Callable[[], Awaitable[list[str]]], timeout: float = 60) -> list[str]:
    """Wait for the outboxes to drain, then for the copies to match (consumers may still be applying)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backlogs = [(await dbs.tables(s))["backlog"] for s in dbs.services]
        if not any(backlogs):
            break
        await asyncio.sleep(0.5)
    found = await check()
    while found and time.monotonic() < deadline:
        await asyncio.sleep(1)
        found = await check()
    return found


# -- the run ----------------------------------------------------------------------------------------
def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _services() -> list[str]:
    from mes.system import system
    return list(system.services)


def trace_env(folder: str | None) -> dict[str, str]:
    """The server's environment for ``--trace-memory``: bench/memtrace's sitecustomize on its path (see there;
    ``SOAK_TRACE_FRAMES``, ``SOAK_TRACE_START`` and ``SOAK_TRACE_EVERY`` set in the bench's environment pass on)."""
    if not folder:
        return {}
    here = str(Path(__file__).resolve().parent / "memtrace")
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "SOAK_TRACEMALLOC": "1", "SOAK_TRACE_DIR": str(Path(folder).resolve())}


async def run(db: str, minutes: float, rate: float, interval: float, short_windows: bool, seed: int,
              trace_memory: str | None = None) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix="isles-soak-"))
    dbs = Databases(db, _services(), data_dir)
    password = "Soak-" + secrets.token_urlsafe(18)
    rng = random.Random(seed)
    stats = Stats()
    samples: list[Sample] = []
    server: Server | None = None
    shop: Shop | None = None
    finished = False
    try:
        await dbs.create()
        extra_env = {**(SHORT_WINDOWS if short_windows else {}), **trace_env(trace_memory)}
        server = Server(dbs, free_port(), password, extra_env)
        shop = Shop(f"http://127.0.0.1:{server.port}", password, stats, rng)
        console.print(f"[dim]starting isles run on {db} (port {server.port}, data {data_dir}) ...[/]")
        await server.start()
        await shop.setup()
        stop = asyncio.Event()
        start = time.monotonic()
        samples.append(await sample(server, dbs, stats, start, start, 0))  # t=0: before the traffic
        watcher = asyncio.create_task(watch(server, dbs, stats, start, interval, samples, stop))
        refresher = asyncio.create_task(shop.keep_token())
        client_cpu = _own_cpu()
        try:
            await offer(shop, rate, minutes * 60, rng)
        finally:
            client_cpu = (_own_cpu() - client_cpu) / (time.monotonic() - start)
            stop.set()
            refresher.cancel()
            await watcher
        mismatches = await settle(dbs, lambda: replica_mismatches(dbs))
        final = await sample(server, dbs, stats, time.monotonic(), start, len(stats.records))
        tracebacks = server.tracebacks()
        finished = True
    finally:
        if shop is not None:
            await shop.close()
        status = await server.stop() if server is not None else None
        await dbs.drop()
        if finished:
            shutil.rmtree(data_dir, ignore_errors=True)
        else:
            console.print(f"[red]the soak stopped early[/]; the server's log and data stay in {data_dir}")
    result = summarise(db, minutes, rate, short_windows, stats, samples, final, mismatches, tracebacks, status, start)
    result["client_cpu"] = client_cpu
    return result


def summarise(db: str, minutes: float, rate: float, short_windows: bool, stats: Stats, samples: list[Sample],
              final: Sample, mismatches: list[str], tracebacks: int, status: int | None,
              t0: float) -> dict[str, Any]:
    """The figures of the RESULT line and the tables; ``t0`` is when the traffic started."""
    records = stats.records
    seconds = minutes * 60
    # "first"/"last" windows and the warm-up: 10 minutes on a run of 30 or more, else a third of it
    window = 600.0 if seconds >= 1800 else seconds / 3
    first = [r[2] for r in records if r[0] - t0 < window]
    last = [r[2] for r in records if r[0] - t0 >= seconds - window]
    steady = [s for s in samples if s.t >= window]
    by_op: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for at, op, ms, code in records:
        by_op[op].append((at - t0, ms, code))
    errors = sum(1 for r in records if r[3] == 0 or r[3] >= 400) + stats.bad_replays
    return {
        "db": db, "minutes": minutes, "rate": rate, "short_windows": short_windows, "window_s": window,
        "requests": len(records), "errors": errors, "skipped": stats.skipped, "bad_replays": stats.bad_replays,
        "c4xx": sum(1 for r in records if 400 <= r[3] < 500), "c5xx": sum(1 for r in records if r[3] >= 500),
        "failed": sum(1 for r in records if r[3] == 0),
        "rss_slope": slope([(s.t / 60, s.rss) for s in steady]),
        "inbox_growth": slope([(s.t / 60, s.total("inbox")) for s in steady]),
        "outbox_growth": slope([(s.t / 60, s.total("outbox")) for s in steady]),
        "p99_first": percentile(first, 0.99), "p99_last": percentile(last, 0.99),
        "by_op": by_op, "samples": samples, "final": final, "mismatches": mismatches,
        "unexpected": stats.unexpected, "tracebacks": tracebacks, "exit_status": status,
    }


def print_result(r: dict[str, Any]) -> None:
    windows = " (short windows: outbox 60 s, inbox 90 s, purge every 5 s)" if r["short_windows"] else ""
    table = Table(title=f"isles soak: isles run on {r['db']}, {r['rate']:g} req/s offered{windows}",
                  header_style="bold")
    for column in ("t s", "req/s", "4xx", "5xx", "p50 ms", "p99 ms", "server CPU", "CPU wait", "RSS MiB", "fds",
                   "connections", "backlog", "outbox", "inbox", "dead"):
        table.add_column(column, justify="right")
    before = None
    for s in r["samples"]:
        conns = "/".join(str(v) for v in s.conns.values())
        cpu = f"{(s.cpu - before.cpu) / max(s.t - before.t, 1e-9):.0%}" if before else "-"
        before = s
        table.add_row(f"{s.t:.0f}", f"{s.rps:.1f}", str(s.c4xx), str(s.c5xx), f"{s.p50:.1f}", f"{s.p99:.1f}", cpu,
                      f"{s.pressure:.0f}%",
                      f"{s.rss:.1f}", str(s.fds), conns, str(s.total("backlog")), str(s.total("outbox")),
                      str(s.total("inbox")), str(s.total("dead")))
    console.print(table)
    console.print(f"connections: per service database ({'/'.join(r['final'].conns)}); on SQLite the descriptors "
                  "open on its file. server CPU: of one core, over the interval. CPU wait: the machine's CPU pressure "
                  "(PSI some avg10: share of time a runnable task waited for a core). backlog/outbox/inbox/dead: "
                  "rows summed over the services, read from their databases.")

    table = Table(title="per operation (first and last window)", header_style="bold")
    for column in ("operation", "requests", "p50 ms", "p99 ms", "p99 first", "p99 last", "4xx", "5xx", "failed"):
        table.add_column(column, justify="right")
    seconds, window = r["minutes"] * 60, r["window_s"]
    for op, rows in sorted(r["by_op"].items()):
        ms = [m for _, m, _ in rows]
        table.add_row(op, str(len(rows)), f"{percentile(ms, 0.5):.1f}", f"{percentile(ms, 0.99):.1f}",
                      f"{percentile([m for t, m, _ in rows if t < window], 0.99):.1f}",
                      f"{percentile([m for t, m, _ in rows if t >= seconds - window], 0.99):.1f}",
                      str(sum(400 <= c < 500 for *_, c in rows)), str(sum(c >= 500 for *_, c in rows)),
                      str(sum(c == 0 for *_, c in rows)))
    console.print(table)

    first, final = r["samples"][0], r["final"]
    table = Table(title="outbox and inbox rows per service (start of traffic -> after it)", header_style="bold")
    for column in ("service", "outbox", "inbox", "dead letters"):
        table.add_column(column, justify="right")
    for service, rows in final.tables.items():
        before = first.tables[service]
        table.add_row(service, f"{before['outbox']} -> {rows['outbox']}", f"{before['inbox']} -> {rows['inbox']}",
                      f"{before['dead']} -> {rows['dead']}")
    console.print(table)

    basis = ("after the first 10 minutes" if window == 600
             else f"after the first third ({window:.0f} s) of this short run")
    console.print(f"RSS slope and inbox growth: least squares over the samples {basis}; p99 first/last: all "
                  f"requests of the first and the last {window:.0f} s.")
    console.print(f"requests {r['requests']}, errors {r['errors']} (4xx {r['c4xx']}, 5xx {r['c5xx']}, no response "
                  f"{r['failed']}, idempotent retries that did not replay {r['bad_replays']}), skipped (over "
                  f"{MAX_IN_FLIGHT} in flight) {r['skipped']}; server log tracebacks {r['tracebacks']}; "
                  f"server exit status {r['exit_status']} (130: Ctrl+C); "
                  f"outbox growth {r['outbox_growth']:.1f} rows/min; "
                  f"this bench's own CPU {r['client_cpu']:.0%} of one core")
    for line in r["unexpected"]:
        console.print(f"  [yellow]{line}[/]")
    if r["mismatches"]:
        console.print(f"[red]{len(r['mismatches'])} replicated fields differ from their owner[/], e.g.:")
        for line in r["mismatches"][:10]:
            console.print(f"  {line}")
    else:
        console.print("[green]every replicated field equals its owner's value[/]")
    print(f"RESULT soak db={r['db']} minutes={r['minutes']:g} requests={r['requests']} errors={r['errors']} "
          f"rss_slope_mib_per_min={r['rss_slope']:.3f} p99_first_ms={r['p99_first']:.1f} "
          f"p99_last_ms={r['p99_last']:.1f} inbox_growth_rows_per_min={r['inbox_growth']:.1f} "
          f"mismatches={len(r['mismatches'])}")


async def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a 1-minute run")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of traffic (the goal run is 60)")
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rate", type=float, default=50.0, help="requests/s offered, 80%% reads and 20%% writes")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--short-windows", action="store_true",
                        help="outbox retention 60 s, inbox retention 90 s, inbox purge every 5 s")
    parser.add_argument("--seed", type=int, default=1, help="seed of the traffic's random choices")
    parser.add_argument("--trace-memory", metavar="DIR",
                        help="the server writes tracemalloc snapshots, gc type counts and malloc statistics to DIR "
                             "(bench/memtrace; slows the server down)")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes = 1.0
    if args.minutes <= 0 or args.rate <= 0 or args.interval <= 0:
        parser.error("--minutes, --rate and --interval must be above zero")
    result = await run(args.db, args.minutes, args.rate, args.interval, args.short_windows, args.seed,
                       args.trace_memory)
    print_result(result)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1:])))
