"""The transport contract, run unchanged on the in-process transport, Kafka (tansu) and Redis Streams.

Each test publishes through a small relay stand-in that behaves like isles' relay (an envelope whose
publish failed is sent again, with the later envelopes of its key), so the same assertions hold for a
transport that delivers synchronously (in-process) and for brokers that redeliver by themselves.
"""
from __future__ import annotations

import asyncio

import pytest
from transport_harness import Backend, MiniRelay, Recorder, envelope, memory_backend, wait_for

from isles.transport.base import Transport
from isles.transport.kafka import KafkaSettings, KafkaTransport
from isles.transport.redis_streams import RedisStreamsSettings, RedisStreamsTransport


@pytest.fixture(params=["memory", pytest.param("kafka", marks=pytest.mark.kafka),
                        pytest.param("redis", marks=pytest.mark.redis)])
async def backend(request):
    if request.param == "memory":
        yield memory_backend()
        return
    if request.param == "kafka":
        bootstrap = request.getfixturevalue("tansu")
        settings = KafkaSettings(brokers=bootstrap, client_id="isles-test", partitions=3, linger_ms=2,
                                 session_timeout_ms=4000, retry_base=0.05, retry_cap=0.5)
        yield Backend("kafka", lambda: KafkaTransport(settings))
        return
    url = request.getfixturevalue("redis_url")
    settings = RedisStreamsSettings(url=url, shards=2, lease_ms=1500, block_ms=200, retry_base=0.05, retry_cap=0.5)
    backend = Backend("redis", lambda: RedisStreamsTransport(settings))
    yield backend
    import redis.asyncio as aioredis
    client = aioredis.from_url(url)
    keys = [k async for k in client.scan_iter(match=f"*{backend.uid}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def names(backend: Backend) -> tuple[str, str, str]:
    system = f"c{backend.uid}"
    return system, f"{system}.svc.events", f"{system}_consumer"


async def stop_all(*transports: Transport | None) -> None:
    for t in transports:
        if t is not None:
            await t.stop()


def interleaved(system: str, keys: list[str], versions: int):
    return [envelope(system, k, v) for v in range(1, versions + 1) for k in keys]


async def test_per_key_order(backend: Backend):
    system, topic, group = names(backend)
    rec = Recorder()
    t = backend.make()
    t.subscribe(group, [topic], rec.deliver)
    await t.start()
    try:
        keys = [f"k{i}" for i in range(5)]
        events = interleaved(system, keys, 20)
        relay = MiniRelay(topic)
        for start in range(0, len(events), 23):
            relay.add(events[start:start + 23])
            await relay.flush(lambda: t)
        await wait_for(lambda: len(rec.ids()) == len(events), 30, "all events")
        for k in keys:
            assert rec.versions(k) == list(range(1, 21)), k
    finally:
        await t.stop()


async def test_failed_delivery_is_redelivered_and_not_overtaken(backend: Backend):
    system, topic, group = names(backend)
    rec = Recorder()
    keys = ["a", "b", "c"]
    events = interleaved(system, keys, 8)
    failing = next(e for e in events if e.partitionkey == "a" and e.entityversion == 3)
    rec.fail_once.add(failing.id)
    t = backend.make()
    t.subscribe(group, [topic], rec.deliver)
    await t.start()
    try:
        relay = MiniRelay(topic)
        relay.add(events)
        await relay.flush(lambda: t)
        await wait_for(lambda: len(rec.ids()) == len(events), 30, "all events")
        assert rec.attempts[failing.id] == 2
        for k in keys:  # a's 4..8 came only after 3 succeeded; nothing twice
            assert rec.versions(k) == list(range(1, 9)), k
    finally:
        await t.stop()


async def test_stopped_consumer_leaves_unacked_events_to_the_next(backend: Backend):
    system, topic, group = names(backend)
    first, second = Recorder(), Recorder()
    keys = ["x", "y", "z"]
    events = interleaved(system, keys, 10)
    stuck = next(e for e in events if e.partitionkey == "x" and e.entityversion == 5)
    first.block_id = stuck.id
    t1 = backend.make()
    t1.subscribe(group, [topic], first.deliver)
    await t1.start()
    current: list[Transport] = [t1]
    producer = backend.producer()
    t2 = None
    try:
        if producer is not None:
            await producer.start()
        relay = MiniRelay(topic)
        relay.add(events)
        flushing = asyncio.create_task(relay.flush(lambda: producer or current[0]))
        await asyncio.wait_for(first.blocked.wait(), 30)
        await t1.stop()  # mid-delivery: x@5 is not acknowledged
        t2 = backend.make()
        t2.subscribe(group, [topic], second.deliver)
        await t2.start()
        current[0] = t2
        await asyncio.wait_for(flushing, 60)
        await wait_for(lambda: first.ids() | second.ids() >= {e.id for e in events}, 40, "every event delivered")
        assert stuck.id in second.ids() and stuck.id not in first.ids()
        for k in keys:
            later = second.versions(k)
            assert later == sorted(set(later)), f"{k}: {later}"  # in order, no repeats, on the new member
            assert set(first.versions(k)) | set(later) == set(range(1, 11))
    finally:
        await stop_all(t2, producer)


async def test_no_loss_across_a_restart(backend: Backend):
    system, topic, group = names(backend)
    rec1, rec2 = Recorder(), Recorder()
    keys = ["p", "q"]
    before, after = interleaved(system, keys, 5), interleaved(system, keys, 10)[10:]
    t1 = backend.make()
    t1.subscribe(group, [topic], rec1.deliver)
    await t1.start()
    current: list[Transport] = [t1]
    producer = backend.producer()
    t2 = None
    try:
        relay = MiniRelay(topic)
        relay.add(before)
        await relay.flush(lambda: t1)
        await wait_for(lambda: len(rec1.ids()) == len(before), 30, "the first events")
        await t1.stop()
        if producer is not None:
            await producer.start()
        relay.add(after)  # published while no consumer of the group runs
        flushing = asyncio.create_task(relay.flush(lambda: producer or current[0]))
        await asyncio.sleep(0.3)
        t2 = backend.make()
        t2.subscribe(group, [topic], rec2.deliver)
        await t2.start()
        current[0] = t2
        await asyncio.wait_for(flushing, 60)
        await wait_for(lambda: rec2.ids() >= {e.id for e in after}, 40, "the events published during the restart")
        for k in keys:
            assert rec2.versions(k)[-5:] == list(range(6, 11)), k
    finally:
        await stop_all(t2, producer)
