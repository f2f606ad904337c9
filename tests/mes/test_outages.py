"""A service whose database goes away answers 503 with Retry-After - not 500 - and recovers on its own.

Material runs on its own PostgreSQL database and role; the other services stay on SQLite. Its
CONNECT privilege is revoked (and its sessions ended), then restored; then its database is dropped.
Meanwhile resource keeps answering 200, and the outage is logged once, not once per request.
"""
from __future__ import annotations

import logging
import uuid

import asyncpg
import pytest
from mes_helpers import M, R, bearer, running_mes

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "database": "postgres"}


async def _admin(*statements: str) -> None:
    conn = await asyncpg.connect(**PG)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


def _end_sessions(database: str) -> str:
    return (f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{database}' AND pid <> pg_backend_pid()")


@pytest.fixture
async def material_role_and_database(mes_env, pg_database):
    """A role and a database it owns for material (``pg_database``: skips when PostgreSQL is away)."""
    name = f"isles_outage_{uuid.uuid4().hex[:10]}"
    await _admin(f'CREATE ROLE "{name}" LOGIN', f'CREATE DATABASE "{name}" OWNER "{name}"')
    try:
        yield name, {**mes_env, "MATERIAL_DATABASE_URL": f"postgresql://{name}@127.0.0.1:5432/{name}"}
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'DROP ROLE IF EXISTS "{name}"')


async def test_an_unreachable_database_is_a_503_and_the_service_recovers(material_role_and_database, caplog):
    name, env = material_role_and_database
    async with running_mes(env) as api:
        admin = bearer(await api.token())
        assert (await api.http.get(f"{M}/parts", headers=admin)).status_code == 200
        caplog.set_level(logging.INFO, logger="isles.api")

        await _admin(f'REVOKE CONNECT ON DATABASE "{name}" FROM PUBLIC, "{name}"', _end_sessions(name))
        for _ in range(3):
            down = await api.http.get(f"{M}/parts", headers=admin)
            assert down.status_code == 503, down.text
            assert down.headers["Retry-After"].isdigit()
            assert "material" in down.json()["detail"]
        assert (await api.http.get(f"{R}/routings", headers=admin)).status_code == 200
        outage_lines = [r for r in caplog.records if r.name == "isles.api" and "unavailable" in r.getMessage()]
        assert len(outage_lines) == 1, [r.getMessage() for r in outage_lines]
        assert all(r.exc_info is None for r in caplog.records if r.name == "isles.api")

        await _admin(f'GRANT CONNECT ON DATABASE "{name}" TO "{name}"')
        assert (await api.http.get(f"{M}/parts", headers=admin)).status_code == 200
        assert any("back" in r.getMessage() for r in caplog.records if r.name == "isles.api")

        await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')
        gone = await api.http.get(f"{M}/parts", headers=admin)
        assert gone.status_code == 503, gone.text
        assert "Retry-After" in gone.headers
        assert (await api.http.get(f"{R}/routings", headers=admin)).status_code == 200


def test_a_permission_error_on_a_table_is_not_an_outage():
    """Denied a TABLE is a bug or a grant to fix (a 500), not a database that is away."""
    from asyncpg.exceptions import InsufficientPrivilegeError

    from isles.database import is_connection_error

    assert not is_connection_error(InsufficientPrivilegeError("permission denied for table parts"))
    assert is_connection_error(InsufficientPrivilegeError('permission denied for database "material"'))
