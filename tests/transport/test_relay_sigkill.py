"""SIGKILL one of two relay instances of a service, many times: nothing lost, no double effect, per-key order.

The relays are subprocesses sharing the catalog's PostgreSQL outbox through bucket claims; the
orders consumer and the writer run in the test process. A killed relay's session ends, its
buckets are freed at once and taken by the survivor (or by its own restart).
"""
from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import toy_shop
from shop_over_broker import (
    assert_exactly_once_in_order,
    build,
    committed_versions,
    redis_transport,
    unique_system_name,
    wait_applied,
)
from test_faults import Writer

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


def spawn_relay(env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(HERE / "relay_worker.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    assert line.strip() == b"ready", proc.stderr.read().decode()[-2000:] if proc.poll() is not None else line
    return proc


async def relay_trials(env, pg_database, redis_url, trials: int) -> None:
    values = {**env, "CATALOG_DATABASE_URL": await pg_database(), "ORDERS_DATABASE_URL": await pg_database()}
    name = unique_system_name()
    system = build(name, values, redis_transport(redis_url))
    await system.start(relays=False, consumers=["orders"])  # creates the tables; the relays are the subprocesses
    child_env = {**os.environ, **values, "SHOP_SYSTEM": name, "ISLES_TRANSPORT": "redis", "REDIS_URL": redis_url,
                 "ISLES_REDIS_SHARDS": "4", "ISLES_REDIS_LEASE_MS": "1500",
                 "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE.parent / "isles")])}
    relays = [spawn_relay(child_env), spawn_relay(child_env)]
    writer = None
    try:
        items = [await toy_shop.create_item(f"item-{i}") for i in range(8)]
        writer = Writer(items)
        writer.start()
        rng = random.Random()
        for _ in range(trials):
            await asyncio.sleep(rng.uniform(0.2, 0.8))
            victim = rng.randrange(2)
            relays[victim].send_signal(signal.SIGKILL)  # mid-batch: published but not yet marked, or anywhere
            relays[victim].wait()
            relays[victim] = spawn_relay(child_env)
        await writer.stop()
        expected = await committed_versions()
        assert sum(expected.values()) > 40
        applied = await wait_applied(expected, 60)
        assert_exactly_once_in_order(expected, applied)
    finally:
        if writer and writer.task and not writer.task.done():
            await writer.stop()
        for proc in relays:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        await system.stop()
        import redis.asyncio as aioredis
        client = aioredis.from_url(redis_url)
        keys = [k async for k in client.scan_iter(match=f"*{name}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.postgres
@pytest.mark.redis
async def test_sigkill_one_of_two_relays(env, pg_database, redis_url):
    await relay_trials(env, pg_database, redis_url, trials=8)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
async def test_sigkill_relays_many_trials(env, pg_database, redis_url):
    await relay_trials(env, pg_database, redis_url, trials=60)
