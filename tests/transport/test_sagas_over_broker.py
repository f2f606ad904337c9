"""Commands and sagas over Kafka and Redis Streams: every saga ends completed or fully compensated,
each step's effect applied exactly once (the in-process runs and the SIGKILL test are in tests/isles)."""
from __future__ import annotations

import asyncio
import sys
import uuid
from pathlib import Path

import pytest
from shop_over_broker import kafka_transport, redis_transport

sys.path.insert(0, str(Path(__file__).parent.parent / "isles"))  # saga_shop

import saga_shop as shop  # noqa: E402  (a test module found through the path above)

from isles.sagas import COMPENSATED, COMPLETED, FAILED, instances  # noqa: E402
from isles.transport.redis_streams import RedisStreamsTransport  # noqa: E402

BROKERS = [pytest.param("kafka", marks=pytest.mark.kafka), pytest.param("redis", marks=pytest.mark.redis)]
ORDERS = [(1, 10), (1, 9), (5, 10), (2, 20), (3, 3)]  # (quantity, amount): completed, refused, voided, ...


@pytest.mark.parametrize("broker", BROKERS)
async def test_sagas_complete_or_compensate_over_a_broker(request, env, broker):
    transport = (kafka_transport(request.getfixturevalue("tansu")) if broker == "kafka"
                 else redis_transport(request.getfixturevalue("redis_url")))
    name = f"sagas_{uuid.uuid4().hex[:10]}"
    system = shop.build_system(env={**env, "SAGASHOP_NAME": name}, transport=transport,
                               relay_options={"poll_interval": 0.05},
                               consumer_options={"max_attempts": 2, "base_backoff": 0.01},
                               saga_options={"poll_interval": 0.05})
    await system.start()
    try:
        placed = {f"o{n}": (quantity, amount) for n, (quantity, amount) in enumerate(ORDERS)}
        ids = {order: await shop.place(order, quantity=q, amount=a) for order, (q, a) in placed.items()}
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            await system.drain(60)
            found = {st.id: st for st in await instances(system.runtime("orders"))}
            if all(found.get(i) is not None and found[i].status in (COMPLETED, COMPENSATED, FAILED)
                   for i in ids.values()):
                break
            assert asyncio.get_running_loop().time() < deadline, found
            await asyncio.sleep(0.05)
        effects = await shop.effects()
        for order, (quantity, amount) in placed.items():
            status, expected = shop.expected_outcome(quantity, amount)
            assert found[ids[order]].status == status, (order, found[ids[order]])
            got = {kind: count for (o, kind), count in effects.items() if o == order}
            assert got == expected, (order, got)
    finally:
        await system.stop()
        if isinstance(transport, RedisStreamsTransport):
            import redis.asyncio as aioredis
            client = aioredis.from_url(request.getfixturevalue("redis_url"))
            keys = [k async for k in client.scan_iter(match=f"*{name}*")]
            if keys:
                await client.delete(*keys)
            await client.aclose()
