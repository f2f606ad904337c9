"""Two relay instances of one service share its outbox on PostgreSQL: nothing lost, no key reordered."""
from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest
import toy_shop
from sqlalchemy import text

from isles.config import resolve_database
from isles.database import Database
from isles.dialects import dialect_for
from isles.errors import ConfigurationError
from isles.outbox import backlog
from isles.relay import Relay

pytestmark = [pytest.mark.postgres,
              pytest.mark.parametrize("shop_env", ["pg-database", "pg-schema"], indirect=True)]


async def wait_applied(total: int, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if len(await toy_shop.applied()) >= total:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"only {len(await toy_shop.applied())} of {total} events applied")


async def test_two_relays_share_the_outbox_and_one_takes_over_when_the_other_dies(shop_env):
    system = toy_shop.build_system(env=shop_env)
    await system.start(relays=False)  # the two relays below are the only ones
    first = system.runtime("catalog")
    database = Database(resolve_database("catalog", shop_env))
    twin = dataclasses.replace(first, database=database, dialect=dialect_for(database))
    options = {"poll_interval": 0.02, "rebalance_interval": 0.05, "batch_size": 20}
    relay_a, relay_b = Relay(first, system.transport, **options), Relay(twin, system.transport, **options)
    tasks = [asyncio.create_task(relay_a.run()), asyncio.create_task(relay_b.run())]
    try:
        items = [await toy_shop.create_item(f"item-{n}") for n in range(16)]
        rng = random.Random(5)

        async def writer() -> None:
            for _ in range(15):
                await toy_shop.rename(rng.choice(items), f"name-{rng.random():.5f}")

        await asyncio.gather(*(writer() for _ in range(4)))
        await wait_applied(16 + 60)
        assert relay_a.claims.held and relay_b.claims.held, "both instances should hold buckets"
        assert not relay_a.claims.held & relay_b.claims.held
        assert relay_a.published_total > 0 and relay_b.published_total > 0

        # relay A dies: its session ends, PostgreSQL frees its buckets, B takes them all
        tasks[0].cancel()
        await asyncio.gather(tasks[0], return_exceptions=True)
        await relay_a.close()
        await asyncio.gather(*(writer() for _ in range(2)))
        await wait_applied(16 + 90)
        from isles.relay_claims import BUCKETS
        assert len(relay_b.claims.held) == BUCKETS

        async with toy_shop.catalog.unit_of_work() as uow:
            from sqlalchemy import select
            final = dict((await uow.execute(select(toy_shop.Item.id, toy_shop.Item.version))).all())
        per_key: dict[str, list[int]] = {}
        for row in await toy_shop.applied():
            per_key.setdefault(row.item_id, []).append(row.version)
        assert per_key == {str(k): list(range(1, v + 1)) for k, v in final.items()}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await relay_a.close()
        await relay_b.close()
        await twin.database.dispose()
        await system.stop()


async def test_a_lost_mark_sends_the_rows_again_and_the_inbox_absorbs_them(shop_env):
    system = toy_shop.build_system(env=shop_env, relay_options={"poll_interval": 0.02})
    async with system:
        item = await toy_shop.create_item("v1")
        await system.drain()
        catalog = system.runtime("catalog")
        async with catalog.database.engine.begin() as conn:  # every mark fails until the trigger goes
            await conn.execute(text(
                "CREATE FUNCTION refuse_mark() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'mark refused by the test'; END $$"))
            await conn.execute(text("CREATE TRIGGER refuse_mark BEFORE UPDATE ON isles_outbox "
                                    "FOR EACH ROW EXECUTE FUNCTION refuse_mark()"))
        await toy_shop.rename(item, "v2")
        for _ in range(200):  # sent, mark lost, sent again: the second copy is a duplicate
            if system.consumer("orders").duplicates >= 1:
                break
            await asyncio.sleep(0.02)
        assert system.consumer("orders").duplicates >= 1
        async with catalog.database.engine.begin() as conn:
            await conn.execute(text("DROP TRIGGER refuse_mark ON isles_outbox"))
        await system.drain()
        assert [a.name for a in await toy_shop.applied(item)] == ["v1", "v2"]  # applied once each
        count, _ = await backlog(catalog)
        assert count == 0


async def test_a_mark_rides_on_the_next_read_or_goes_alone_when_the_relay_is_idle(shop_env):
    """One round trip a pass: the acknowledged batch's mark is a CTE of the next read; with no next
    read, it is written alone after ``mark_linger``."""
    from sqlalchemy import event, select

    system = toy_shop.build_system(env=shop_env)
    await system.start(relays=False)
    catalog = system.runtime("catalog")
    relay = Relay(catalog, system.transport, rebalance_interval=60, mark_linger=60)  # no mark alone yet
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        statements.append(statement.lstrip().split(None, 1)[0].upper())

    async def published() -> dict[int, bool]:
        outbox = catalog.tables.outbox
        async with catalog.database.engine.connect() as conn:
            rows = (await conn.execute(select(outbox.c.entity_version, outbox.c.published_at)
                                       .where(outbox.c.partition_key == str(item)))).all()
        return {version: at is not None for version, at in rows}

    event.listen(catalog.database.engine.sync_engine, "before_cursor_execute", seen)
    try:
        item = await toy_shop.create_item("v1")
        assert await relay.publish_pending() == 1
        while relay._marking:  # the acknowledgement; the mark now waits for the next read
            await relay._marking.pop(0)
        assert await published() == {1: False}
        await toy_shop.rename(item, "v2")
        relay.mark_linger = 0.05
        statements.clear()
        assert await relay.publish_pending() == 1
        assert "UPDATE" not in statements and statements.count("WITH") == 1, statements  # mark and read together
        assert await published() == {1: True, 2: False}
        await asyncio.sleep(0.3)  # idle: v2 is marked alone
        assert await published() == {1: True, 2: True}
        assert [a.name for a in await toy_shop.applied(item)] == ["v1", "v2"]
    finally:
        event.remove(catalog.database.engine.sync_engine, "before_cursor_execute", seen)
        await relay.close()
        await system.stop()


def small_pools(shop_env: dict[str, str], most: int) -> dict[str, str]:
    pools = {f"{name}_DB_POOL_{end}": value for name in ("CATALOG", "ORDERS")
             for end, value in (("MIN", "1"), ("MAX", str(most)), ("TIMEOUT", "3"))}
    return {**shop_env, **pools}


async def test_a_pool_of_two_serves_requests_and_delivers_events(shop_env):
    """The claim connection takes one; the relay's reads and marks, the consumer and the requests
    share the other (the relay holds a second only from three up). Two held used to starve all."""
    system = toy_shop.build_system(env=small_pools(shop_env, 2), relay_options={"poll_interval": 0.05})
    async with system.running():
        assert system.relay("catalog")._conn is None
        items = [await toy_shop.create_item(f"small-{n}") for n in range(5)]
        for item in items:
            await toy_shop.rename(item, "renamed")
        await asyncio.wait_for(system.drain(), 20)
        assert len(await toy_shop.applied()) == 10
        await toy_shop.add_order_line(items[0])  # a request still gets a connection


async def test_a_pool_of_one_is_refused_at_start_with_the_setting_to_change(shop_env):
    system = toy_shop.build_system(env=small_pools(shop_env, 1))
    with pytest.raises(ConfigurationError) as refused:
        await system.start()
    message = str(refused.value)
    assert "catalog" in message and "at most 1" in message and "CATALOG_DB_POOL_MAX" in message
