"""The audit log is append-only at the database: UPDATE and DELETE fail, even for code that
bypasses the API (21 CFR Part 11 11.10(e))."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from mes import auth
from mes.auth.models import AuditLog


async def _tamper_attempts(system) -> int:
    from mes.auth.accounts import audit
    async with auth.service.unit_of_work() as uow:
        audit(uow, "test.entry", "thing", "42", actor=None, field="colour", old="red", new="blue")
    async with auth.service.unit_of_work() as uow:
        count = await uow.scalar(select(func.count()).select_from(AuditLog))
    assert count >= 1
    for statement in (update(AuditLog).values(new_value="green"),
                      update(AuditLog).where(AuditLog.entity_id == "42").values(occurred_at=func.now()),
                      delete(AuditLog).where(AuditLog.entity_id == "42"),
                      delete(AuditLog)):
        with pytest.raises(DBAPIError, match="append-only"):
            async with auth.service.unit_of_work() as uow:
                await uow.execute(statement)
    # raw SQL on the engine itself (no ORM, no unit of work) is refused the same way
    engine = system.runtime("auth").database.engine
    with pytest.raises(DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE audit_logs SET action = 'forged'"))
    async with auth.service.unit_of_work() as uow:
        rows = list(await uow.scalars(select(AuditLog).where(AuditLog.entity_id == "42")))
        assert [(r.old_value, r.new_value) for r in rows] == [("red", "blue")]
        assert await uow.scalar(select(func.count()).select_from(AuditLog)) == count
    return count


async def test_audit_log_rows_cannot_be_updated_or_deleted_on_sqlite(system):
    assert system.runtime("auth").database.dialect == "sqlite"
    await _tamper_attempts(system)


@pytest.mark.postgres
async def test_audit_log_rows_cannot_be_updated_or_deleted_on_postgres(mes_env, make_system, pg_database):
    env = {**mes_env, "AUTH_DATABASE_URL": await pg_database()}
    system = make_system(env)
    await system.start(services=["auth"])
    try:
        assert system.runtime("auth").database.is_postgres
        await auth.bootstrap(env)
        await _tamper_attempts(system)
        engine = system.runtime("auth").database.engine
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text("TRUNCATE audit_logs"))
        with pytest.raises(DBAPIError, match="never deleted"):
            async with engine.begin() as conn:
                await conn.execute(text("DELETE FROM users"))
    finally:
        await system.stop()


@pytest.mark.postgres
async def test_audit_triggers_in_schema_per_service(mes_env, make_system, pg_database):
    env = {**mes_env, "DATABASE_URL": await pg_database()}
    system = make_system(env)
    await system.start(services=["auth"])
    try:
        assert system.runtime("auth").database.config.schema == "auth"
        await _tamper_attempts(system)
    finally:
        await system.stop()


async def test_the_api_offers_no_way_to_change_the_audit_log(client, api):
    admin = await api.token()
    for method in ("PUT", "PATCH", "DELETE"):
        response = await client.request(method, "/api/auth/audit-logs", headers=api.bearer(admin))
        assert response.status_code == 405


async def test_only_admins_and_auditors_read_the_audit_log(api):
    operator = await api.user_token("op7", ["operator"])
    assert (await api.http.get("/api/auth/audit-logs", headers=api.bearer(operator))).status_code == 403
    auditor = await api.user_token("aud7", ["auditor"])
    response = await api.http.get("/api/auth/audit-logs", headers=api.bearer(auditor))
    assert response.status_code == 200 and response.json()["items"]


async def test_audit_log_exports_as_csv(api):
    import csv
    import io
    admin = await api.token()
    user = await api.create_user(admin, "csvuser", ["operator"], lastName="=HYPERLINK(1)")
    response = await api.http.get("/api/auth/audit-logs/export.csv", params={"entityId": user["id"]},
                                  headers=api.bearer(admin))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert {r["field"] for r in rows} >= {"username", "roles", "last_name"}
    assert next(r for r in rows if r["field"] == "last_name")["newValue"] == "'=HYPERLINK(1)"
    operator = await api.user_token("csvop", ["operator"])
    assert (await api.http.get("/api/auth/audit-logs/export.csv", headers=api.bearer(operator))).status_code == 403
