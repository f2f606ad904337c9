"""Envelopes handed over together share one consumer transaction, and nothing of the per-event
promises is lost: a failing event is retried and dead-lettered alone, a parked key still waits,
a copy of an event in the same call is dropped, and each key keeps its order."""
from __future__ import annotations

import uuid

import pytest
import toy_shop
from sqlalchemy import bindparam, select, update

from conftest import TOPOLOGIES
from isles import Envelope
from isles.tables import DEAD, WAITING

pytestmark = pytest.mark.parametrize("shop_env", TOPOLOGIES, indirect=True)


def updated(key: str, version: int) -> Envelope:
    event = toy_shop.ItemUpdated(item_id=key, name=f"{key[:4]} v{version}", price=1)
    return Envelope.wrap(event, source="/shop/catalog", key=key, version=version)


def keys(n: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(n)]


async def applied_versions(key: str) -> list[int]:
    return [a.version for a in await toy_shop.applied(key)]


async def dead_letters(shop) -> list:
    runtime = shop.runtime("orders")
    dl = runtime.tables.dead_letters
    async with runtime.database.engine.connect() as conn:
        return (await conn.execute(select(dl).order_by(dl.c.id))).all()


async def test_envelopes_handed_over_together_commit_in_one_transaction(shop):
    consumer = shop.consumer("orders")
    a, b = keys(2)
    batches, handled = consumer.batches, consumer.handled
    await consumer.deliver([updated(a, 1), updated(b, 1), updated(a, 2), updated(b, 2), updated(a, 3)])
    assert consumer.batches == batches + 1
    assert consumer.handled == handled + 5
    assert await applied_versions(a) == [1, 2, 3]
    assert await applied_versions(b) == [1, 2]


async def test_a_failing_event_is_retried_alone_and_the_others_still_commit_once(shop):
    consumer = shop.consumer("orders")
    a, b, bad = keys(3)
    toy_shop.FAIL_KEYS.add(bad)
    await consumer.deliver([updated(a, 1), updated(bad, 1), updated(b, 1), updated(bad, 2), updated(a, 2)])
    assert await applied_versions(a) == [1, 2]
    assert await applied_versions(b) == [1]
    assert await applied_versions(bad) == []
    letters = await dead_letters(shop)
    assert [(d.partition_key, d.status, d.attempts) for d in letters] == [(bad, DEAD, 3), (bad, WAITING, 0)]
    assert "injected failure" in letters[0].error


async def test_a_parked_key_waits_while_the_rest_of_the_call_commits_together(shop):
    consumer = shop.consumer("orders")
    a, b, parked = keys(3)
    toy_shop.FAIL_KEYS.add(parked)
    await consumer.deliver([updated(parked, 1)])
    toy_shop.FAIL_KEYS.clear()  # the handler would work now, but the key stays parked until a retry
    batches = consumer.batches
    await consumer.deliver([updated(a, 1), updated(parked, 2), updated(b, 1)])
    assert consumer.batches == batches + 1
    assert (await applied_versions(a), await applied_versions(b), await applied_versions(parked)) == ([1], [1], [])
    assert [d.status for d in await dead_letters(shop)] == [DEAD, WAITING]
    report = await consumer.retry()
    assert report.resolved == 2 and await applied_versions(parked) == [1, 2]


async def test_a_copy_of_an_event_in_the_same_call_has_no_second_effect(shop):
    consumer = shop.consumer("orders")
    (a,) = keys(1)
    first = updated(a, 1)
    duplicates = consumer.duplicates
    await consumer.deliver([first, first, updated(a, 2)])
    await consumer.deliver([first])  # and redelivered later
    assert await applied_versions(a) == [1, 2]
    assert consumer.duplicates == duplicates + 2


async def test_a_backlog_is_consumed_in_shared_transactions(shop):
    consumer = shop.consumer("orders")
    relay = shop.relay("catalog")
    await shop.drain()
    batches, handled = consumer.batches, consumer.handled
    for task in shop._tasks:  # hold the relay back so a backlog builds up
        task.cancel()
    items = [await toy_shop.create_item(f"item {n}") for n in range(60)]
    await relay.drain(30)
    assert consumer.handled - handled == len(items)
    assert consumer.batches - batches <= len(items) / 3  # several events per transaction
    for item_id in items[:5]:
        assert await applied_versions(str(item_id)) == [1]


async def test_one_key_several_times_in_a_call_ends_at_its_newest_version(shop):
    consumer = shop.consumer("orders")
    (a,) = keys(1)
    line_id = await toy_shop.add_order_line(uuid.UUID(a))
    batches = consumer.batches
    await consumer.deliver([updated(a, 1), updated(a, 3), updated(a, 2)])  # the replica writes go as one executemany
    assert consumer.batches == batches + 1
    async with toy_shop.orders.unit_of_work() as uow:
        line = await uow.get(toy_shop.OrderLine, line_id)
    assert (line.item_name, line.item_version) == (f"{a[:4]} v3", 3)


async def test_queued_writes_keep_program_order_with_orm_changes_and_reads(shop):
    lines = toy_shop.OrderLine.__table__
    rename = update(lines).where(lines.c.item_id == bindparam("k")).values(item_name=bindparam("n"))
    item = uuid.uuid4()
    async with toy_shop.orders.unit_of_work() as uow:
        uow.add(toy_shop.OrderLine(item_id=item))  # pending in the session: must be written first
        await uow.write_later(rename, {"k": item, "n": "queued"})
        assert await uow.scalar(select(lines.c.item_name).where(lines.c.item_id == item)) == "queued"
        await uow.write_later(rename, {"k": item, "n": "at commit"})
    async with toy_shop.orders.unit_of_work() as uow:
        assert await uow.scalar(select(lines.c.item_name).where(lines.c.item_id == item)) == "at commit"
