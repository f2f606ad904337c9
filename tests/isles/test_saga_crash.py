"""SIGKILL the saga's service and the services it commands at random points, many times.

The orders process places orders and runs their sagas (reserve inventory, authorize payment,
create shipment; payment refuses some, shipping others, which compensate in reverse); the targets
process runs inventory, payment and shipping. Both are killed with SIGKILL at random moments -
mid-transition, between a target's commit and the relay marking its reply published, mid-start -
and restarted. At the end every saga is completed or fully compensated, every step's effect was
applied exactly once (counted in the target services' tables), and `isles sagas list` shows them all.

Over the in-process transport the two processes cannot reach each other, so each runs over Redis
Streams when Redis is up (as production would), else the test is skipped.
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import saga_shop as shop
from saga_crash_worker import numbers
from typer.testing import CliRunner

from isles.sagas import COMPENSATED, COMPLETED, instances

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"
SERVICES = ("orders", "inventory", "payment", "shipping")


class Worker:
    def __init__(self, role: str, env: dict[str, str]):
        self.role, self.env, self.proc = role, env, None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "saga_crash_worker.py"), self.role], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture
async def crash_env(request, env, pg_database, redis_url) -> dict[str, str]:
    values = dict(env)
    values["REDIS_URL"] = redis_url
    values["ISLES_TRANSPORT"] = "redis"
    values["SAGASHOP_NAME"] = f"sagacrash{uuid.uuid4().hex[:8]}"
    if getattr(request, "param", "sqlite") == "pg-database":
        for name in SERVICES:
            values[f"{name.upper()}_DATABASE_URL"] = await pg_database()
    return values


async def run_trials(crash_env: dict[str, str], trials: int, orders: int, seed: int, monkeypatch) -> None:
    rng = random.Random(seed)
    env = {**os.environ, **crash_env, "SAGA_ORDERS": str(orders), "PYTHONPATH": f"{HERE}{os.pathsep}{SRC}"}
    workers = [Worker("orders", env), Worker("targets", env)]
    from isles.transport.memory import InMemoryTransport
    system = shop.build_system(env=crash_env, transport=InMemoryTransport())
    await system.start(relays=False, consumers=False)  # creates the tables; the parent only reads
    try:
        kills = 0
        for _ in range(trials):
            for worker in workers:
                if not worker.alive():
                    worker.start()
            await asyncio.sleep(rng.uniform(0.05, 0.5))
            for worker in rng.choice([workers[:1], workers[1:], workers]):
                if worker.alive():
                    worker.kill()
                    kills += 1
        assert kills >= trials // 2, "the workers died on their own: see their stderr"
        for worker in workers:  # one the last trial spared is still running: starting it again orphaned it
            if not worker.alive():
                worker.start()
        deadline = time.monotonic() + 90
        while True:
            found = await instances(system.runtime("orders"))
            if len(found) == orders and all(st.status in (COMPLETED, COMPENSATED) for st in found):
                break
            for worker in workers:
                assert worker.alive(), worker.proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, sorted((st.id, st.status, st.step) for st in found)
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.5)  # anything extra (a double effect) would arrive now
    finally:
        for worker in workers:
            worker.kill()
    try:
        effects = await shop.effects()
        by_id = {st.id: st for st in found}
        for k in range(orders):
            status, expected = shop.expected_outcome(*numbers(k))
            st = by_id[f"saga-o{k}"]
            assert st.status == status, (k, st.history)
            assert {kind: n for (o, kind), n in effects.items() if o == f"o{k}"} == expected, (k, st.history)
        # every saga has a state that `isles sagas list` shows
        monkeypatch.setattr("isles.commands.sagas.load_system",
                            lambda spec=None: shop.build_system(env=crash_env, transport=InMemoryTransport()))
        from isles.cli import app
        await system.stop()
        monkeypatch.setenv("COLUMNS", "250")
        listed = await asyncio.to_thread(CliRunner().invoke, app, ["sagas", "list"])
        assert listed.exit_code == 0, listed.output
        for k in range(orders):
            assert f"saga-o{k}" in listed.output
    finally:
        await system.stop()


async def test_sigkill_saga_and_its_targets_sqlite(crash_env, monkeypatch):
    await run_trials(crash_env, trials=50, orders=24, seed=20261206, monkeypatch=monkeypatch)


@pytest.mark.postgres
@pytest.mark.parametrize("crash_env", ["pg-database"], indirect=True)
async def test_sigkill_saga_and_its_targets_postgres(crash_env, monkeypatch):
    await run_trials(crash_env, trials=25, orders=24, seed=7, monkeypatch=monkeypatch)


@pytest.mark.slow
@pytest.mark.parametrize("crash_env", ["sqlite", "pg-database"], indirect=True)
async def test_sigkill_saga_soak(crash_env, monkeypatch):
    await run_trials(crash_env, trials=300, orders=100, seed=int(time.time()), monkeypatch=monkeypatch)
