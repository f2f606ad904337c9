"""Provisioning fixtures: a unique role prefix per test, and everything it created dropped afterwards.

Roles are cluster-global, so each test uses its own prefix and drops its roles (after the
databases they own) whatever the outcome.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Mapping

import asyncpg
import pytest

from isles import System

HOST, PORT = "127.0.0.1", 5432


def mes_system(env: Mapping[str, str]) -> System:
    """The MES system on ``env``. Provisioning leaves the server's real maintenance databases alone
    unless a test names its own (ISLES_MAINTENANCE_DATABASES): other tests share this server and
    connect to ``postgres`` as non-superusers."""
    from mes import material, work_order
    return System("mes", [material.service, work_order.service],
                  env={"ISLES_MAINTENANCE_DATABASES": "", **env})


@dataclass
class Cluster:
    prefix: str
    databases: list[str] = field(default_factory=list)  # dropped at the end
    shared: list[str] = field(default_factory=list)  # not ours: only our roles' objects are dropped

    def role(self, service: str, kind: str) -> str:
        return f"{self.prefix}_{service}_{kind}"

    def url(self, database: str, user: str = "postgres", schema: str | None = None) -> str:
        query = f"?currentSchema={schema}" if schema else ""
        return f"postgresql://{user}@{HOST}:{PORT}/{database}{query}"

    async def connect(self, database: str, user: str = "postgres") -> asyncpg.Connection:
        return await asyncpg.connect(host=HOST, port=PORT, user=user, database=database)


@pytest.fixture
async def cluster(pg_database):
    await pg_database()  # skips (or fails in CI) when PostgreSQL is down
    c = Cluster(prefix=f"t{uuid.uuid4().hex[:8]}")
    yield c
    admin = await c.connect("postgres")
    try:
        roles = [r["rolname"] for r in await admin.fetch("SELECT rolname FROM pg_roles WHERE rolname LIKE $1",
                                                          f"{c.prefix}\\_%")]
        for name in c.databases:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for name in c.shared:
            conn = await c.connect(name)
            try:
                for role in roles:  # one at a time: together they trip over shared default ACLs
                    await conn.execute(f'DROP OWNED BY "{role}" CASCADE')
            finally:
                await conn.close()
        for role in sorted(roles, key=lambda r: not r.endswith("_owner")):  # members before owners is fine either way
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
    finally:
        await admin.close()
