"""Every service, its database away three ways - CONNECT revoked, the server's port closed, the
database dropped - answers 503 with Retry-After on its routes while the others answer 200, logs one
line when it goes down, and recovers without a restart.

The service under test reaches PostgreSQL through a small TCP proxy of the test's own, so "the
port is closed" is a real refused connection (the proxy stops listening and cuts its
connections), then opened again on the same port. The other services stay on SQLite.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

import asyncpg
import pytest
from mes_helpers import bearer, running_mes

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"}
#: a route of each service that reads its own database, and one of another service to stay up
ROUTES = {"auth": "/api/auth/users", "resource": "/api/resource/sites", "material": "/api/material/parts",
          "work_order": "/api/work-order/work-orders", "traceability": "/api/traceability/nodes"}

pytestmark = pytest.mark.postgres


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(**PG)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


class Proxy:
    """127.0.0.1:<port> -> PostgreSQL, that can stop listening (and cut its connections) and start again."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(PG["host"], PG["port"])
        pipes = [asyncio.create_task(self._pipe(reader, upstream_writer)),
                 asyncio.create_task(self._pipe(upstream_reader, writer))]
        self._pipes.update(pipes)
        try:
            await asyncio.gather(*pipes, return_exceptions=True)
        finally:
            self._pipes.difference_update(pipes)
            for w in (writer, upstream_writer):
                w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()


@pytest.mark.parametrize("service", list(ROUTES))
async def test_each_service_answers_503_while_its_database_is_away_and_recovers(service, mes_env, pg_database,
                                                                               caplog):
    name = f"isles_outage_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE ROLE "{name}" LOGIN', f'CREATE DATABASE "{name}" OWNER "{name}"')
    proxy = Proxy()
    await proxy.open()
    env = {**mes_env, f"{service.upper()}_DATABASE_URL": f"postgresql://{name}@127.0.0.1:{proxy.port}/{name}"}
    own, other = ROUTES[service], ROUTES["resource" if service != "resource" else "material"]
    try:
        async with running_mes(env) as api:
            admin = bearer(await api.token())
            assert (await api.http.get(own, headers=admin)).status_code == 200

            async def down(why: str) -> None:
                for _ in range(2):
                    answer = await api.http.get(own, headers=admin)
                    assert answer.status_code == 503, (why, answer.status_code, answer.text)
                    assert answer.headers["Retry-After"].isdigit() and service in answer.json()["detail"], why
                assert (await api.http.get(other, headers=admin)).status_code == 200, why

            async def back(why: str) -> None:
                for _ in range(50):  # the pool replaces its dead connections on the next checkouts
                    if (await api.http.get(own, headers=admin)).status_code == 200:
                        return
                    await asyncio.sleep(0.1)
                raise AssertionError(f"{service} did not recover after {why}")

            caplog.set_level(logging.INFO, logger="isles.api")
            await _admin(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC, "{name}"',
                         f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
            await down("CONNECT revoked")
            went_down = [r for r in caplog.records if r.name == "isles.api" and "unavailable" in r.getMessage()]
            assert len(went_down) == 1, [r.getMessage() for r in went_down]
            await _admin(f'GRANT CONNECT ON DATABASE "{name}" TO "{name}"')
            await back("CONNECT granted again")

            await proxy.close()
            await down("port closed")
            await proxy.open()
            await back("port open again")

            await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')
            await down("database dropped")
            assert all(r.exc_info is None for r in caplog.records if r.name == "isles.api")
    finally:
        await proxy.close()
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{name}"')
