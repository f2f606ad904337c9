"""SIGKILL a producer and a consumer at random points, many times; nothing is lost or applied twice.

The producer commits renames (state + outbox row); the consumer process runs the relay and the
orders consumer. Both are killed with SIGKILL at random moments - mid-transaction, mid-batch,
between the consumer's commit and the relay marking the row published - and restarted. At the
end every committed version of every item must have been applied exactly once, in order.
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import toy_shop
from sqlalchemy import select

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


class Worker:
    def __init__(self, role: str, env: dict[str, str]):
        self.role, self.env, self.proc = role, env, None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(HERE / "crash_worker.py"), self.role], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def kill(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def finished_ok(self) -> bool:
        return self.proc is not None and self.proc.poll() == 0


async def run_trials(shop_env: dict[str, str], trials: int, seed: int) -> None:
    rng = random.Random(seed)
    env = {**os.environ, **shop_env, "CRASH_ITEMS": "6", "CRASH_TARGET": str(40 * trials),
           "PYTHONPATH": f"{HERE}{os.pathsep}{SRC}"}
    producer, consumer = Worker("producer", env), Worker("consumer", env)
    system = toy_shop.build_system(env=shop_env)
    await system.start(relays=False, consumers=False)  # creates the tables; the parent only reads
    try:
        kills = 0
        for _ in range(trials):
            for worker in (producer, consumer):
                if not worker.alive() and not (worker is producer and producer.finished_ok()):
                    worker.start()
            await asyncio.sleep(rng.uniform(0.05, 0.4))
            victims = rng.choice([[producer], [consumer], [producer, consumer]])
            for worker in victims:
                if worker.alive():
                    worker.kill()
                    kills += 1
        assert kills >= trials // 2, "the workers died on their own: see their stderr"
        if not producer.finished_ok():  # let the producer finish its work undisturbed
            producer.start()
            producer.proc.wait(timeout=120)
            assert producer.proc.returncode == 0, producer.proc.stderr.read().decode()[-2000:]
        consumer.kill()
        consumer.start()
        expected = await committed_versions()
        total = sum(expected.values())
        deadline = time.monotonic() + 120
        while len(await toy_shop.applied()) < total and time.monotonic() < deadline:
            assert consumer.alive(), consumer.proc.stderr.read().decode()[-2000:]
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.3)  # anything extra (a double effect) would arrive now
    finally:
        producer.kill()
        consumer.kill()
    try:
        applied: dict[str, list[int]] = {}
        for row in await toy_shop.applied():
            applied.setdefault(row.item_id, []).append(row.version)
        assert applied == {key: list(range(1, version + 1)) for key, version in expected.items()}
    finally:
        await system.stop(drain_timeout=0.1)


async def committed_versions() -> dict[str, int]:
    async with toy_shop.catalog.unit_of_work() as uow:
        rows = (await uow.execute(select(toy_shop.Item.id, toy_shop.Item.version))).all()
    return {str(item_id): version for item_id, version in rows}


async def test_sigkill_producer_and_consumer_sqlite(shop_env):
    await run_trials(shop_env, trials=50, seed=20261121)


@pytest.mark.postgres
@pytest.mark.parametrize("shop_env", ["pg-database"], indirect=True)
async def test_sigkill_producer_and_consumer_postgres(shop_env):
    await run_trials(shop_env, trials=25, seed=7)


@pytest.mark.slow
@pytest.mark.parametrize("shop_env", ["sqlite", "pg-schema"], indirect=True)
async def test_sigkill_soak(shop_env):
    await run_trials(shop_env, trials=300, seed=int(time.time()))
