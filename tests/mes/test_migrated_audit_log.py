"""The append-only audit log holds on a database built by migrations (what `make run` does), not only create_all."""
from __future__ import annotations

import pytest
from sqlalchemy import text

from isles import System
from isles.migrations import ensure_head
from mes import auth


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_audit_log_refuses_update_and_delete_after_migrations(backend, env, pg_database):
    settings = dict(env)
    if backend == "postgres":
        settings["AUTH_DATABASE_URL"] = await pg_database()
    system = System("mes", [auth.service], env=settings)
    await ensure_head(system)
    await system.start(create_tables=False)
    try:
        await auth.bootstrap(settings | {"MES_ADMIN_PASSWORD": "a-long-enough-password-1"})
        engine = system.runtime("auth").database.engine
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM audit_logs")) > 0
        for statement in ("UPDATE audit_logs SET action = 'forged'", "DELETE FROM audit_logs",
                          "DELETE FROM users"):
            with pytest.raises(Exception, match="append-only|never deleted|cannot be"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await system.stop()
