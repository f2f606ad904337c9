"""Faults: a broker that stops under load, a consumer replica killed with SIGKILL, and bad input.

* Outage: the broker is frozen (SIGSTOP; tansu keeps its data in memory only, so a real restart
  would lose what it holds) while a writer keeps committing. Writes go on, the outbox backlog grows,
  and when the broker returns everything drains: exactly once, in per-key order.
* SIGKILL: two replicas of the consuming service run as subprocesses sharing the consumer group;
  one is killed mid-stream. The survivor takes over its partitions/shards, redelivered events are
  no-ops thanks to the inbox: every version applied exactly once, in order.
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
from aiokafka import AIOKafkaProducer
from conftest_helpers import free_port
from shop_over_broker import (
    assert_exactly_once_in_order,
    build,
    committed_versions,
    kafka_transport,
    outbox_backlog,
    redis_transport,
    unique_system_name,
    wait_applied,
)
from transport_harness import Recorder, wait_for

from isles.transport.kafka import BrokerUnavailable, KafkaSettings, KafkaTransport, PoisonMessage, TopicMismatch
from isles.transport.redis_streams import RedisStreamsSettings, RedisStreamsTransport, RedisUnavailable

HERE = Path(__file__).parent
SRC = HERE.parent.parent / "src"


class Writer:
    """Renames random items as fast as commits allow, counting commits."""

    def __init__(self, items):
        self.items, self.commits, self.task = items, 0, None

    async def run(self) -> None:
        i = 0
        while True:
            await toy_shop.rename(self.items[i % len(self.items)], f"n{i}")
            self.commits += 1
            i += 1
            await asyncio.sleep(0.005)

    def start(self) -> None:
        self.task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


@pytest.mark.parametrize("kind", [pytest.param("kafka", marks=pytest.mark.kafka),
                                  pytest.param("redis", marks=pytest.mark.redis)])
async def test_broker_outage_under_load(request, env, kind):
    server = request.getfixturevalue("own_tansu" if kind == "kafka" else "own_redis")
    transport = kafka_transport(server.bootstrap) if kind == "kafka" else redis_transport(server.url)
    system = build(unique_system_name(), env, transport)
    await system.start()
    writer = None
    try:
        items = [await toy_shop.create_item(f"item-{i}") for i in range(5)]
        writer = Writer(items)
        writer.start()
        await asyncio.sleep(1.0)
        server.pause()
        paused_at = writer.commits
        await asyncio.sleep(4.0)
        during = writer.commits - paused_at
        backlog = await outbox_backlog()
        server.resume()
        await asyncio.sleep(1.0)
        await writer.stop()
        assert during > 20, "writes must keep committing while the broker is down"
        assert backlog > 0, "the outbox holds what could not be published"
        expected = await committed_versions()
        applied = await wait_applied(expected, 60)
        assert_exactly_once_in_order(expected, applied)
    finally:
        if writer and writer.task and not writer.task.done():
            await writer.stop()
        await system.stop()


def _spawn_replica(env: dict[str, str]) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, str(HERE / "replica_worker.py")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline()
    assert line.strip() == b"ready", proc.stderr.read().decode()[-2000:] if proc.poll() is not None else line
    return proc


KINDS = [pytest.param("kafka", marks=pytest.mark.kafka), pytest.param("redis", marks=pytest.mark.redis)]


@pytest.mark.postgres
@pytest.mark.parametrize("kind", KINDS)
async def test_sigkill_one_of_two_consumer_replicas(request, env, pg_database, kind):
    await _sigkill_trials(request, env, pg_database, kind, trials=1)


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.parametrize("kind", KINDS)
async def test_sigkill_consumer_replicas_many_trials(request, env, pg_database, kind):
    await _sigkill_trials(request, env, pg_database, kind, trials=6)


async def _sigkill_trials(request, env, pg_database, kind: str, trials: int) -> None:
    values = {**env, "CATALOG_DATABASE_URL": await pg_database(), "ORDERS_DATABASE_URL": await pg_database()}
    name = unique_system_name()
    if kind == "kafka":
        bootstrap = request.getfixturevalue("tansu")
        transport = kafka_transport(bootstrap)
        broker_env = {"KAFKA_BROKERS": bootstrap, "ISLES_KAFKA_PARTITIONS": "4",
                      "ISLES_KAFKA_SESSION_TIMEOUT_MS": "4000"}
    else:
        url = request.getfixturevalue("redis_url")
        transport = redis_transport(url)
        broker_env = {"ISLES_TRANSPORT": "redis", "REDIS_URL": url, "ISLES_REDIS_SHARDS": "4",
                      "ISLES_REDIS_LEASE_MS": "1500"}
    system = build(name, values, transport)
    await system.start(relays=["catalog"], consumers=False)  # creates the tables; relays the catalog
    child_env = {**os.environ, **values, **broker_env, "SHOP_SYSTEM": name,
                 "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE.parent / "isles")])}
    replicas = [_spawn_replica(child_env), _spawn_replica(child_env)]
    try:
        items = [await toy_shop.create_item(f"item-{i}") for i in range(6)]
        writer = Writer(items)
        writer.start()
        rng = random.Random()
        for trial in range(trials):
            await asyncio.sleep(rng.uniform(1.0, 2.5))
            victim = rng.randrange(2) if trials > 1 else 0
            replicas[victim].send_signal(signal.SIGKILL)   # mid-batch, mid-transaction, wherever it is
            replicas[victim].wait()
            if trial < trials - 1:
                replicas[victim] = _spawn_replica(child_env)
        await asyncio.sleep(1.5)
        await writer.stop()
        expected = await committed_versions()
        assert sum(expected.values()) > 60
        applied = await wait_applied(expected, 60)
        assert_exactly_once_in_order(expected, applied)
        survivors = [p for p in replicas if p.poll() is None]
        assert survivors, "no replica survived: see their stderr"
    finally:
        for proc in replicas:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        await system.stop()
        if kind == "redis":
            import redis.asyncio as aioredis
            client = aioredis.from_url(request.getfixturevalue("redis_url"))
            keys = [k async for k in client.scan_iter(match=f"*{name}*")]
            keys += [k async for k in client.scan_iter(match="isles:*:orders*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()


# -- bad input --------------------------------------------------------------------------------------------
@pytest.mark.kafka
async def test_unreachable_kafka_at_startup_is_a_clear_error():
    transport = KafkaTransport(KafkaSettings(brokers=f"127.0.0.1:{free_port()}", request_timeout_ms=3000))
    transport.subscribe("orders", ["shop.catalog.events"], Recorder().deliver)
    with pytest.raises(BrokerUnavailable) as info:
        await transport.start()
    assert "cannot be reached" in str(info.value) and info.value.fix and info.value.service == "orders"


@pytest.mark.redis
async def test_unreachable_redis_at_startup_is_a_clear_error():
    transport = RedisStreamsTransport(RedisStreamsSettings(url=f"redis://:pw@127.0.0.1:{free_port()}/0"))
    with pytest.raises(RedisUnavailable) as info:
        await transport.start()
    assert "pw" not in str(info.value) and info.value.fix


@pytest.mark.kafka
async def test_wrong_partition_count_is_a_clear_error(tansu):
    topic = f"{unique_system_name()}.catalog.events"
    first = KafkaTransport(KafkaSettings(brokers=tansu, partitions=2))
    first.subscribe("a", [topic], Recorder().deliver)
    await first.start()
    await first.stop()
    second = KafkaTransport(KafkaSettings(brokers=tansu, partitions=3))
    second.subscribe("b", [topic], Recorder().deliver)
    with pytest.raises(TopicMismatch) as info:
        await second.start()
    assert "has 2 partitions" in str(info.value) and "ISLES_KAFKA_PARTITIONS=2" in info.value.fix


@pytest.mark.kafka
async def test_record_without_cloudevents_headers_is_not_dropped(tansu):
    topic, group = f"{unique_system_name()}.raw.events", unique_system_name()
    seen: list = []

    async def on_poison(group_name, record, error: PoisonMessage) -> None:
        assert group_name == group
        seen.append((record.value, str(error)))

    rec = Recorder()
    blocked = KafkaTransport(KafkaSettings(brokers=tansu, partitions=1, session_timeout_ms=4000,
                                           retry_base=0.05, retry_cap=0.2))
    blocked.subscribe(group, [topic], rec.deliver)
    await blocked.start()
    producer = AIOKafkaProducer(bootstrap_servers=tansu)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"not a cloudevent", key=b"k")
        await blocked.publish(topic, [_envelope(topic, "k")])
        await asyncio.sleep(3.0)   # group join + retries: the partition stays at the bad record
        assert rec.seen == []
        await blocked.stop()
        handled = KafkaTransport(KafkaSettings(brokers=tansu, partitions=1, session_timeout_ms=4000),
                                 on_poison=on_poison)
        handled.subscribe(group, [topic], rec.deliver)
        await handled.start()
        try:
            await wait_for(lambda: len(rec.seen) == 1, 20, "the good event after the bad record")
            assert seen and seen[0][0] == b"not a cloudevent" and "no CloudEvents" in seen[0][1]
        finally:
            await handled.stop()
    finally:
        await producer.stop()
        await blocked.stop()


def _envelope(topic: str, key: str):
    from transport_harness import envelope
    return envelope(topic.split(".")[0], key, 1)


@pytest.mark.redis
async def test_redis_entry_without_event_is_not_dropped(redis_url):
    import redis.asyncio as aioredis
    name = unique_system_name()
    topic, group = f"{name}.raw.events", f"{name}_consumer"
    settings = RedisStreamsSettings(url=redis_url, shards=1, lease_ms=1500, block_ms=100,
                                    retry_base=0.05, retry_cap=0.2)
    seen: list = []

    async def on_poison(group_name, stream, entry_id, fields, error) -> None:
        assert group_name == group
        seen.append((fields, str(error)))

    client = aioredis.from_url(redis_url)
    rec = Recorder()
    try:
        blocked = RedisStreamsTransport(settings)
        blocked.subscribe(group, [topic], rec.deliver)
        await blocked.start()
        await client.xadd(topic, {"junk": "not an event"})
        await blocked.publish(topic, [_envelope(topic, "k")])
        await asyncio.sleep(1.0)
        assert rec.seen == []  # the shard stops at the bad entry
        await blocked.stop()
        handled = RedisStreamsTransport(settings, on_poison=on_poison)
        handled.subscribe(group, [topic], rec.deliver)
        await handled.start()
        try:
            await wait_for(lambda: len(rec.seen) == 1, 10, "the good event after the bad entry")
            assert seen and seen[0][0] == {b"junk": b"not an event"} and "no 'event' field" in seen[0][1]
        finally:
            await handled.stop()
    finally:
        keys = [k async for k in client.scan_iter(match=f"*{name}*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


@pytest.mark.redis
async def test_redis_publish_fails_only_what_redis_refused(redis_url):
    """One reply that is an error fails its entry and holds back the later ones of its key only."""
    import redis.asyncio as aioredis
    name = unique_system_name()
    topic = f"{name}.raw.events"
    transport = RedisStreamsTransport(RedisStreamsSettings(url=redis_url, shards=2))
    client = aioredis.from_url(redis_url)
    try:
        await transport.start()
        keys = [f"k{n}" for n in range(20)]
        refused = [k for k in keys if transport.stream_for(topic, k) == f"{topic}:0"]
        assert refused and len(refused) < len(keys)
        await client.set(f"{topic}:0", "not a stream")  # XADD to it: WRONGTYPE
        sent = [_envelope(topic, k) for k in keys] + [_envelope(topic, refused[0])]
        results = await transport.publish(topic, sent)
        for envelope, result in zip(sent, results, strict=True):
            if envelope.partitionkey in refused:
                assert result is not None
            else:
                assert result is None
        assert "WRONGTYPE" in str(results[keys.index(refused[0])]) and "held back" in str(results[-1])
        assert await client.xlen(f"{topic}:1") == len(keys) - len(refused)
        assert await transport.publish(topic, [_envelope(topic, keys[0])]) is not None  # the connection still works
    finally:
        await transport.stop()
        await client.delete(f"{topic}:0", f"{topic}:1")
        await client.aclose()

