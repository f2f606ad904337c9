"""Users and roles: admins only, deactivation instead of deletion, usernames never reused, events."""
from __future__ import annotations

import orjson
from sqlalchemy import select


async def outbox_types(system, service="auth"):
    runtime = system.runtime(service)
    outbox = runtime.tables.outbox
    async with runtime.database.engine.connect() as conn:
        rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).all()
        return [(r.type, orjson.loads(r.data)) for r in rows]


async def test_only_admins_manage_users(api):
    admin = await api.token()
    engineer = await api.user_token("eng1", ["engineer"])
    body = {"username": "someone", "password": api.PASSWORD, "roles": []}
    assert (await api.http.post("/api/auth/users", json=body)).status_code == 401
    assert (await api.http.post("/api/auth/users", json=body, headers=api.bearer(engineer))).status_code == 403
    assert (await api.http.get("/api/auth/users", headers=api.bearer(engineer))).status_code == 403
    assert (await api.http.post("/api/auth/roles", json={"name": "planner"},
                                headers=api.bearer(engineer))).status_code == 403
    created = await api.http.post("/api/auth/users", json=body, headers=api.bearer(admin))
    assert created.status_code == 201
    user_id = created.json()["id"]
    assert (await api.http.put(f"/api/auth/users/{user_id}/roles", json={"roles": ["admin"]},
                               headers=api.bearer(engineer))).status_code == 403
    assert (await api.http.post(f"/api/auth/users/{user_id}/deactivate",
                                headers=api.bearer(engineer))).status_code == 403


async def test_user_lifecycle_publishes_events_and_audits_each_field(api, system):
    admin = await api.token()
    user = await api.create_user(admin, "mrossi", ["operator"], email="m@example.com")
    assert user["roles"] == ["operator"] and user["displayName"] == "Mrossi Tester"
    patched = await api.http.patch(f"/api/auth/users/{user['id']}", headers=api.bearer(admin),
                                   json={"lastName": "Rossi", "reason": "typo in onboarding form"})
    assert patched.status_code == 200 and patched.json()["lastName"] == "Rossi"
    roles = await api.http.put(f"/api/auth/users/{user['id']}/roles", headers=api.bearer(admin),
                               json={"roles": ["operator", "quality"]})
    assert roles.json()["roles"] == ["operator", "quality"]
    gone = await api.http.delete(f"/api/auth/users/{user['id']}", headers=api.bearer(admin))
    assert gone.status_code == 200 and gone.json()["isActive"] is False
    events = [e for e in await outbox_types(system) if e[1].get("userId") == user["id"]]
    assert [t for t, _ in events] == ["mes.auth.user.created", "mes.auth.user.updated", "mes.auth.user.updated",
                                      "mes.auth.user.deleted"]
    assert events[1][1]["changes"] == {"lastName": "Rossi"} and events[1][1]["previousValues"] == {"lastName": "Tester"}
    assert events[2][1]["roles"] == ["operator", "quality"]
    log = (await api.http.get("/api/auth/audit-logs", params={"entityId": user["id"]},
                              headers=api.bearer(admin))).json()["items"]
    change = next(e for e in log if e["action"] == "user.updated")
    assert (change["field"], change["oldValue"], change["newValue"], change["reason"]) == \
        ("last_name", "Tester", "Rossi", "typo in onboarding form")
    assert change["actorUsername"] == "admin" and change["occurredAt"].endswith(("+00:00", "Z"))
    assert not any(e["field"] == "password" and e["newValue"] not in ("[set]", "[redacted]") for e in log)


async def test_deactivated_user_cannot_log_in_and_the_username_is_never_reused(api):
    admin = await api.token()
    user = await api.create_user(admin, "leaver", ["operator"])
    session = (await api.login("leaver", api.PASSWORD)).json()
    assert (await api.http.post(f"/api/auth/users/{user['id']}/deactivate", headers=api.bearer(admin),
                                json={"reason": "left the company"})).status_code == 200
    assert (await api.login("leaver", api.PASSWORD)).status_code == 401
    assert (await api.http.post("/api/auth/refresh",
                                json={"refreshToken": session["refreshToken"]})).status_code == 401
    again = await api.http.post("/api/auth/users", headers=api.bearer(admin),
                                json={"username": "Leaver", "password": api.PASSWORD})
    assert again.status_code == 409 and "never reused" in again.json()["detail"]
    listed = (await api.http.get("/api/auth/users", params={"includeInactive": "true"},
                                 headers=api.bearer(admin))).json()["items"]
    assert any(u["username"] == "leaver" and not u["isActive"] for u in listed)


async def test_users_cannot_be_deleted_at_the_database(api, system):
    import pytest
    from sqlalchemy import delete
    from sqlalchemy.exc import DBAPIError

    from mes.auth import service
    from mes.auth.models import User
    admin = await api.token()
    user = await api.create_user(admin, "keepme", [])
    with pytest.raises(DBAPIError, match="never deleted"):
        async with service.unit_of_work() as uow:
            import uuid
            await uow.execute(delete(User).where(User.id == uuid.UUID(user["id"])))


async def test_weak_passwords_and_unknown_roles_are_refused(api):
    admin = await api.token()
    short = await api.http.post("/api/auth/users", headers=api.bearer(admin),
                                json={"username": "weak", "password": "short"})
    assert short.status_code == 422 and "at least 12" in short.json()["detail"]
    role = await api.http.post("/api/auth/users", headers=api.bearer(admin),
                               json={"username": "weak", "password": api.PASSWORD, "roles": ["wizard"]})
    assert role.status_code == 422 and "wizard" in role.json()["detail"]


async def test_an_admin_cannot_demote_or_deactivate_themselves(api):
    admin = await api.token()
    me = (await api.http.get("/api/auth/me", headers=api.bearer(admin))).json()
    demote = await api.http.put(f"/api/auth/users/{me['id']}/roles", json={"roles": []}, headers=api.bearer(admin))
    assert demote.status_code == 409
    assert (await api.http.post(f"/api/auth/users/{me['id']}/deactivate",
                                headers=api.bearer(admin))).status_code == 409


async def test_bootstrap_generates_and_prints_a_password_once(mes_env, monkeypatch, make_system):
    import io

    from mes import auth
    monkeypatch.delenv("MES_ADMIN_PASSWORD")
    env = {k: v for k, v in mes_env.items() if k != "MES_ADMIN_PASSWORD"}
    system = make_system(env)
    await system.start()
    try:
        out = io.StringIO()
        assert await auth.bootstrap(env, out=out) == "admin"
        printed = out.getvalue()
        assert "admin" in printed and "shown once" in printed
        password = printed.split("password ", 1)[1].split()[0]
        assert len(password) >= 20
        second = io.StringIO()
        assert await auth.bootstrap(env, out=second) is None and second.getvalue() == ""
        from mes.auth.sessions import login
        async with auth.service.unit_of_work() as uow:
            tokens = await login(uow, username="admin", password=password)
        assert tokens.roles == ["admin"]
    finally:
        await system.stop()


async def test_reason_for_change_can_be_required(api, monkeypatch):
    admin = await api.token()
    user = await api.create_user(admin, "gmpuser", ["operator"])
    monkeypatch.setenv("MES_AUTH_REQUIRE_REASON", "1")
    missing = await api.http.patch(f"/api/auth/users/{user['id']}", json={"lastName": "X"}, headers=api.bearer(admin))
    assert missing.status_code == 422 and "reason" in missing.json()["detail"]
    given = await api.http.patch(f"/api/auth/users/{user['id']}", json={"lastName": "X", "reason": "marriage"},
                                 headers=api.bearer(admin))
    assert given.status_code == 200
    assert (await api.http.put(f"/api/auth/users/{user['id']}/roles", json={"roles": []},
                               headers=api.bearer(admin))).status_code == 422
