"""The MES's example data and `isles demo` over Kafka and Redis Streams.

Over a broker an event can sit in a partition or a stream after it left the outbox, so the seed
(which creates a work order right after the part it needs) only works if `System.drain()` waits
until every consumer has applied what committed - not merely until the relays sent it. These runs
failed with "part ... is unknown to work_order" while drain waited for the relays alone.
"""
from __future__ import annotations

import io

import pytest
from rich.console import Console
from shop_over_broker import kafka_transport, redis_transport, unique_system_name
from sqlalchemy import select

from isles import System
from isles.transport.redis_streams import RedisStreamsTransport

BROKERS = [pytest.param("kafka", marks=pytest.mark.kafka), pytest.param("redis", marks=pytest.mark.redis)]


def _mes(name: str, env: dict[str, str], transport) -> System:
    from mes import auth, material, resource, traceability, work_order
    return System(name, [auth.service, resource.service, material.service, work_order.service,
                         traceability.service], env=env, transport=transport,
                  relay_options={"poll_interval": 0.05}, consumer_options={"max_attempts": 3, "base_backoff": 0.01})


async def _drop_redis_keys(url: str, fragment: str) -> None:
    import redis.asyncio as aioredis
    client = aioredis.from_url(url)
    keys = [k async for k in client.scan_iter(match=f"*{fragment}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def broker(request):
    """A factory of transports to one broker (a stopped transport is not started again)."""
    if request.param == "kafka":
        return lambda: kafka_transport(request.getfixturevalue("tansu"))
    return lambda: redis_transport(request.getfixturevalue("redis_url"))


@pytest.mark.parametrize("broker", BROKERS, indirect=True)
async def test_the_example_data_and_the_demo_over_a_broker(request, env, monkeypatch, broker):
    from mes import example_data, material, work_order
    from mes.system import demo
    monkeypatch.setenv("MES_ADMIN_PASSWORD", "Broker-run-secret-pass-1")
    name = unique_system_name()
    out = io.StringIO()
    # demo() starts the system, seeds the example data (drain after each owner), renames P-12345, stops
    assert await demo(_mes(name, env, broker()), Console(file=out, width=120), timeout=30.0), out.getvalue()
    system = _mes(name, env, broker())
    try:
        await system.start()
        await example_data.seed(system)  # a second seed finds the data and changes nothing
        await system.drain(60)
        async with work_order.service.unit_of_work() as uow:
            owned = {(str(o.id), o.status) for o in await uow.scalars(select(work_order.models.WorkOrder))}
        async with material.service.unit_of_work() as uow:
            copied = {(str(c.id), c.status) for c in await uow.scalars(select(material.models.ReplicatedWorkOrder))}
        assert len(owned) >= 4 and copied == owned
        assert all(s.dead_letters == 0 for s in await system.status()), await system.status()
    finally:
        if system.runtimes:
            await system.stop()
        if isinstance(system.transport, RedisStreamsTransport):
            await _drop_redis_keys(request.getfixturevalue("redis_url"), name)
