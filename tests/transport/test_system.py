"""A real isles System (the toy shop) over Kafka and Redis Streams, on SQLite and PostgreSQL.

Relay, broker, consumer and inbox together: every committed version applied exactly once in order,
and an event whose handler keeps failing is dead-lettered while the other keys keep flowing.
"""
from __future__ import annotations

import pytest
import toy_shop
from shop_over_broker import (
    assert_exactly_once_in_order,
    build,
    committed_versions,
    kafka_transport,
    redis_transport,
    unique_system_name,
    wait_applied,
)

from isles.errors import ConfigurationError
from isles.transport.factory import transport_from_env
from isles.transport.kafka import KafkaTransport
from isles.transport.memory import InMemoryTransport
from isles.transport.redis_streams import RedisStreamsTransport

CASES = [pytest.param("kafka", "sqlite", marks=pytest.mark.kafka),
         pytest.param("kafka", "postgres", marks=[pytest.mark.kafka, pytest.mark.postgres]),
         pytest.param("redis", "sqlite", marks=pytest.mark.redis),
         pytest.param("redis", "postgres", marks=[pytest.mark.redis, pytest.mark.postgres])]


@pytest.fixture(autouse=True)
def _reset_failures():
    toy_shop.FAIL_KEYS.clear()
    yield
    toy_shop.FAIL_KEYS.clear()


@pytest.mark.parametrize("transport,db", CASES)
async def test_shop_over_broker(request, env, pg_database, transport, db):
    values = dict(env)
    if db == "postgres":
        values["CATALOG_DATABASE_URL"] = await pg_database()
        values["ORDERS_DATABASE_URL"] = await pg_database()
    broker = kafka_transport(request.getfixturevalue("tansu")) if transport == "kafka" \
        else redis_transport(request.getfixturevalue("redis_url"))
    system = build(unique_system_name(), values, broker)
    await system.start()
    try:
        items = [await toy_shop.create_item(f"item-{i}") for i in range(4)]
        toy_shop.FAIL_KEYS.add(str(items[0]))
        for round_ in range(5):
            for item in items:
                await toy_shop.rename(item, f"name-{round_}")
        expected = await committed_versions()
        poisoned = {str(items[0])}
        applied = await wait_applied(expected, 40, skip=poisoned)
        assert_exactly_once_in_order(expected, applied, skip=poisoned)
        # its first event after the failure started is dead, the later ones wait behind it
        assert applied.get(str(items[0]), []) in ([], [1])
        status = {s.service: s for s in await system.status()}
        assert status["orders"].dead_letters == 1
    finally:
        await system.stop()
        if isinstance(broker, RedisStreamsTransport):
            await _drop_redis_keys(request.getfixturevalue("redis_url"), system.name)


async def _drop_redis_keys(url: str, fragment: str) -> None:
    import redis.asyncio as aioredis
    client = aioredis.from_url(url)
    keys = [k async for k in client.scan_iter(match=f"*{fragment}*")]
    keys += [k async for k in client.scan_iter(match="isles:*:orders*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def test_factory_chooses_by_settings():
    assert isinstance(transport_from_env({}), InMemoryTransport)
    assert isinstance(transport_from_env({"ISLES_TRANSPORT": "memory"}), InMemoryTransport)
    kafka = transport_from_env({"KAFKA_BROKERS": "127.0.0.1:9092", "KAFKA_CLIENT_ID": "mes",
                                "ISLES_KAFKA_PARTITIONS": "3"})
    assert isinstance(kafka, KafkaTransport) and kafka.settings.partitions == 3 and kafka.settings.client_id == "mes"
    assert kafka.settings.max_batch_bytes == 256 * 1024
    tuned = transport_from_env({"KAFKA_BROKERS": "h:1", "ISLES_KAFKA_MAX_BATCH_BYTES": "65536"})
    assert tuned.settings.max_batch_bytes == 65536
    assert kafka.settings.fetch_max_wait_ms == 10
    patient = transport_from_env({"KAFKA_BROKERS": "h:1", "ISLES_KAFKA_FETCH_MAX_WAIT_MS": "50"})
    assert patient.settings.fetch_max_wait_ms == 50
    redis = transport_from_env({"ISLES_TRANSPORT": "redis", "REDIS_URL": "redis://:secret@127.0.0.1:6379/0"})
    assert isinstance(redis, RedisStreamsTransport) and "secret" not in redis.describe()
    assert isinstance(transport_from_env({"ISLES_TRANSPORT": "redis://127.0.0.1:6379/1",
                                          "KAFKA_BROKERS": "x:1"}), RedisStreamsTransport)
    for bad in ({"ISLES_TRANSPORT": "rabbit"}, {"ISLES_TRANSPORT": "redis"}, {"ISLES_TRANSPORT": "kafka"},
                {"KAFKA_BROKERS": "h:1", "ISLES_KAFKA_PARTITIONS": "zero"},
                {"KAFKA_BROKERS": "h:1", "ISLES_KAFKA_MAX_BATCH_BYTES": "100"},
                {"KAFKA_BROKERS": "h:1", "ISLES_KAFKA_FETCH_MAX_WAIT_MS": "0"}):
        with pytest.raises(ConfigurationError) as info:
            transport_from_env(bad)
        assert info.value.fix
