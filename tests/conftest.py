"""Shared fixtures: real PostgreSQL databases and Redis, created per test with unique names.

Locally a missing server skips the tests that need it; in CI (CI=true or ISLES_REQUIRE_SERVERS=1)
it fails them, so a green CI run always means the integration tests ran.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import tempfile
import uuid
from typing import AsyncIterator, Callable

import pytest

PG_HOST, PG_PORT = "127.0.0.1", 5432
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
REQUIRE_SERVERS = os.environ.get("CI") == "true" or os.environ.get("ISLES_REQUIRE_SERVERS") == "1"


def _dump_tasks(*_: object) -> None:
    """``kill -USR1 <pytest pid>``: write every asyncio task's stack (what a hung test waits on)
    to ``$TMPDIR/isles-tasks-<pid>.txt`` (pytest captures stderr)."""
    loop = asyncio._get_running_loop()
    with open(os.path.join(tempfile.gettempdir(), f"isles-tasks-{os.getpid()}.txt"), "w") as out:
        for task in asyncio.all_tasks(loop) if loop else ():
            task.print_stack(file=out)


signal.signal(signal.SIGUSR1, _dump_tasks)


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def need_server(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable on {host}:{port}"
    if REQUIRE_SERVERS:
        pytest.fail(f"{message} (required in CI)")
    pytest.skip(message)


def pg_admin_url(database: str = "postgres") -> str:
    return f"postgresql://postgres@{PG_HOST}:{PG_PORT}/{database}"


async def _admin(sql: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(host=PG_HOST, port=PG_PORT, user="postgres", database="postgres")
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def env(tmp_path, monkeypatch) -> dict[str, str]:
    """A clean settings environment for a System (SQLite files under tmp_path by default)."""
    for key in list(os.environ):
        if key.endswith("_DATABASE_URL") or key in ("DATABASE_URL", "KAFKA_BROKERS", "ISLES_TRANSPORT", "REDIS_URL"):
            monkeypatch.delenv(key, raising=False)
    values = {"ISLES_DATA_DIR": str(tmp_path / "data")}
    monkeypatch.setenv("ISLES_DATA_DIR", values["ISLES_DATA_DIR"])
    return values


@pytest.fixture
async def pg_database() -> AsyncIterator[Callable[[], "asyncio.Future[str]"]]:
    """Factory: ``url = await pg_database()`` creates a fresh database and returns its plain URL."""
    need_server("PostgreSQL", PG_HOST, PG_PORT)
    created: list[str] = []

    async def make() -> str:
        name = f"isles_test_{uuid.uuid4().hex[:12]}"
        await _admin(f'CREATE DATABASE "{name}"')
        created.append(name)
        return pg_admin_url(name)

    yield make
    for name in created:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    need_server("Redis", REDIS_HOST, REDIS_PORT)
    return f"redis://{REDIS_HOST}:{REDIS_PORT}/0"
