"""A unit of work opened inside another of the same service: a clear error on SQLite, allowed on PostgreSQL.

SQLite gets one pooled connection per database; before this check the inner unit of work simply
waited for it until the pool timed out (60 s) and then failed with a pool error that did not say why.
"""
from __future__ import annotations

import asyncio

import pytest
import toy_shop
from sqlalchemy import text

from isles.errors import ConfigurationError


async def test_nesting_on_sqlite_is_refused_at_once_and_names_the_fix(env):
    system = toy_shop.build_system(env=env)
    async with system.running(relays=False, consumers=False):
        catalog = system.service("catalog")
        async with catalog.unit_of_work() as outer:
            await outer.execute(text("SELECT 1"))
            with pytest.raises(ConfigurationError) as info:
                async with asyncio.timeout(5):
                    async with catalog.unit_of_work():
                        pass
            assert info.value.service == "catalog" and "pass the outer unit of work down" in info.value.fix
        async with catalog.unit_of_work() as again:  # the outer one closed: no false alarm after it
            await again.execute(text("SELECT 1"))
        async with catalog.unit_of_work() as idle:  # an outer one that holds no connection yet: fine
            async with catalog.unit_of_work() as inner:
                await inner.execute(text("SELECT 1"))
            await idle.execute(text("SELECT 1"))
        orders = system.service("orders")
        async with catalog.unit_of_work(), orders.unit_of_work():  # other services' databases: fine
            pass


@pytest.mark.postgres
async def test_nesting_on_postgres_takes_a_second_connection(env, pg_database):
    system = toy_shop.build_system(env={**env, "CATALOG_DATABASE_URL": await pg_database(),
                                        "ORDERS_DATABASE_URL": await pg_database()})
    async with system.running(relays=False, consumers=False):
        catalog = system.service("catalog")
        async with catalog.unit_of_work() as outer, catalog.unit_of_work() as inner:
            assert await outer.scalar(text("SELECT 1")) == await inner.scalar(text("SELECT 1")) == 1
