"""PostgreSQL pools ping a connection before reuse only when it sat idle (ISLES_DB_PING_AFTER),
and a service whose connections were all cut keeps working and loses nothing."""
from __future__ import annotations

import asyncio

import asyncpg
import pytest
import toy_shop
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_connection

PG_HOST, PG_PORT = "127.0.0.1", 5432

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_shop_env(env, pg_database) -> dict[str, str]:
    return {**env, "CATALOG_DATABASE_URL": await pg_database(), "ORDERS_DATABASE_URL": await pg_database(),
            "ISLES_DB_PING_AFTER": "0.2"}


@pytest.fixture
def pings(monkeypatch) -> list[int]:
    seen: list[int] = []
    ping = AsyncAdapt_asyncpg_connection.ping

    def counted(self):
        seen.append(1)
        return ping(self)
    monkeypatch.setattr(AsyncAdapt_asyncpg_connection, "ping", counted)
    return seen


async def cut_connections(*urls: str) -> int:
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        names = [url.rsplit("/", 1)[1] for url in urls]
        return len(await conn.fetch("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE datname = ANY($1) AND pid <> pg_backend_pid()", names))
    finally:
        await conn.close()


async def test_a_connection_used_a_moment_ago_is_not_pinged_an_idle_one_is(pg_shop_env, pings):
    # The relay polls rarely here (commits still wake it at once), so a pause leaves the pool idle.
    system = toy_shop.build_system(env=pg_shop_env, relay_options={"poll_interval": 30})
    async with system:
        item_id = await toy_shop.create_item("warm")
        for n in range(10):  # every pooled connection has been used just now
            await toy_shop.rename(item_id, f"warm {n}")
        pings.clear()
        for n in range(20):  # back to back: the pool hands out connections checked in just now
            await toy_shop.rename(item_id, f"busy {n}")
        busy = len(pings)
        await asyncio.sleep(0.5)
        pings.clear()
        await toy_shop.rename(item_id, "after a pause")
        assert len(pings) >= 1  # idle for longer than ISLES_DB_PING_AFTER: checked before use
    assert busy == 0


async def test_connections_cut_by_the_server_are_replaced_and_nothing_is_lost(pg_shop_env):
    system = toy_shop.build_system(env=pg_shop_env, relay_options={"poll_interval": 0.05, "max_backoff": 0.2},
                                   consumer_options={"base_backoff": 0.01, "max_backoff": 0.2})
    async with system:
        first = await toy_shop.create_item("before the cut")
        await system.drain()
        assert await cut_connections(pg_shop_env["CATALOG_DATABASE_URL"], pg_shop_env["ORDERS_DATABASE_URL"]) >= 2
        await asyncio.sleep(0.4)  # longer than ISLES_DB_PING_AFTER: the dead connections are found at checkout
        second = await toy_shop.create_item("after the cut")  # must not fail
        for _ in range(200):
            if len(await toy_shop.applied(second)) == 1:
                break
            await asyncio.sleep(0.05)
        assert [a.name for a in await toy_shop.applied(first)] == ["before the cut"]
        assert [a.name for a in await toy_shop.applied(second)] == ["after the cut"]
