"""Fixtures for the framework tests: the toy shop system on each database topology."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import AsyncIterator

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # toy_shop is also imported by crash-test subprocesses

import toy_shop  # noqa: E402 - importable only after the sys.path line above

TOPOLOGIES = ["sqlite", pytest.param("pg-database", marks=pytest.mark.postgres),
              pytest.param("pg-schema", marks=pytest.mark.postgres)]


@pytest.fixture
async def shop_env(request, env, pg_database) -> dict[str, str]:
    """Settings for the shop system on the requested topology (default sqlite)."""
    topology = getattr(request, "param", "sqlite")
    values = dict(env)
    if topology == "pg-database":
        values["CATALOG_DATABASE_URL"] = await pg_database()
        values["ORDERS_DATABASE_URL"] = await pg_database()
    elif topology == "pg-schema":
        values["DATABASE_URL"] = await pg_database()
    return values


@pytest.fixture(autouse=True)
def _reset_failures():
    toy_shop.FAIL_KEYS.clear()
    yield
    toy_shop.FAIL_KEYS.clear()


@pytest.fixture
async def shop(shop_env) -> AsyncIterator["toy_shop.System"]:
    system = toy_shop.build_system(env=shop_env, relay_options={"poll_interval": 0.05},
                                   consumer_options={"max_attempts": 3, "base_backoff": 0.001})
    await system.start()
    try:
        yield system
    finally:
        await system.stop()
