"""The toy shop (tests/isles/toy_shop.py) over a broker: unique system names, broker settings, checks."""
from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Mapping

import toy_shop
from sqlalchemy import func, select

from isles import System
from isles.transport.base import Transport
from isles.transport.kafka import KafkaSettings, KafkaTransport
from isles.transport.redis_streams import RedisStreamsSettings, RedisStreamsTransport


def unique_system_name() -> str:
    return f"shop_{uuid.uuid4().hex[:10]}"


def kafka_transport(bootstrap: str) -> KafkaTransport:
    return KafkaTransport(KafkaSettings(brokers=bootstrap, client_id="isles-test", partitions=4, linger_ms=2,
                                        session_timeout_ms=4000, retry_base=0.05, retry_cap=0.5))


def redis_transport(url: str) -> RedisStreamsTransport:
    return RedisStreamsTransport(RedisStreamsSettings(url=url, shards=4, lease_ms=1500, block_ms=200,
                                                      retry_base=0.05, retry_cap=0.5))


def build(name: str, env: Mapping[str, str], transport: Transport, **kwargs: Any) -> System:
    return System(name, [toy_shop.catalog, toy_shop.orders], env=env, transport=transport,
                  relay_options={"poll_interval": 0.05}, consumer_options={"max_attempts": 3, "base_backoff": 0.001},
                  **kwargs)


async def committed_versions() -> dict[str, int]:
    async with toy_shop.catalog.unit_of_work() as uow:
        rows = (await uow.execute(select(toy_shop.Item.id, toy_shop.Item.version))).all()
    return {str(i): v for i, v in rows}


async def applied_by_item() -> dict[str, list[int]]:
    by_item: dict[str, list[int]] = {}
    for row in await toy_shop.applied():
        by_item.setdefault(row.item_id, []).append(row.version)
    return by_item


async def wait_applied(expected: dict[str, int], timeout: float, skip: set[str] = frozenset()) -> dict[str, list[int]]:
    """Wait until every committed version of every item (but ``skip``) is applied; return what was applied."""
    deadline = time.monotonic() + timeout
    while True:
        got = await applied_by_item()
        if all(len(got.get(i, [])) >= v for i, v in expected.items() if i not in skip):
            await asyncio.sleep(0.3)  # a double effect would show up now
            return await applied_by_item()
        if time.monotonic() > deadline:
            missing = {i: (v, len(got.get(i, []))) for i, v in expected.items() if len(got.get(i, [])) < v}
            raise AssertionError(f"not all events applied in {timeout}s: (committed, applied) {missing}")
        await asyncio.sleep(0.1)


def assert_exactly_once_in_order(expected: dict[str, int], applied: dict[str, list[int]],
                                 skip: set[str] = frozenset()) -> None:
    for item, version in expected.items():
        if item in skip:
            continue
        assert applied.get(item) == list(range(1, version + 1)), f"item {item}: {applied.get(item)}"


async def outbox_backlog() -> int:
    outbox = toy_shop.catalog._runtime.tables.outbox
    async with toy_shop.catalog.unit_of_work() as uow:
        return int(await uow.scalar(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None))))
