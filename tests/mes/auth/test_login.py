"""Login, refresh rotation and reuse detection, logout, lockout - through HTTP."""
from __future__ import annotations


async def test_login_returns_access_and_refresh_tokens(api):
    response = await api.login("admin", api.ADMIN_PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tokenType"] == "bearer" and body["expiresIn"] == 15 * 60
    assert body["user"]["username"] == "admin" and body["user"]["roles"] == ["admin"]
    assert response.headers["cache-control"] == "no-store"
    me = await api.http.get("/api/auth/me", headers=api.bearer(body["accessToken"]))
    assert me.status_code == 200 and me.json()["username"] == "admin"


async def test_wrong_password_is_401_without_saying_why(api):
    response = await api.login("admin", "not-the-password")
    assert response.status_code == 401
    assert "password" not in response.text.lower().replace("username or password", "")
    unknown = await api.login("nobody", "whatever")
    assert unknown.status_code == 401 and unknown.json() == response.json()


async def test_refresh_rotates_the_token(api):
    first = (await api.login("admin", api.ADMIN_PASSWORD)).json()
    second = await api.http.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refreshToken"] != first["refreshToken"]
    assert body["sessionId"] == first["sessionId"]
    third = await api.http.post("/api/auth/refresh", json={"refreshToken": body["refreshToken"]})
    assert third.status_code == 200


async def test_refresh_token_reuse_revokes_the_whole_family(api):
    first = (await api.login("admin", api.ADMIN_PASSWORD)).json()
    second = (await api.http.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})).json()
    # an attacker replays the spent first token: refused, and the family (session) is revoked ...
    replay = await api.http.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    assert replay.status_code == 401
    assert "already used" in replay.json()["detail"]
    # ... so the legitimate holder's newer token no longer works either
    newest = await api.http.post("/api/auth/refresh", json={"refreshToken": second["refreshToken"]})
    assert newest.status_code == 401
    # other sessions of the same user are unaffected
    other = (await api.login("admin", api.ADMIN_PASSWORD)).json()
    assert (await api.http.post("/api/auth/refresh", json={"refreshToken": other["refreshToken"]})).status_code == 200
    audit = await api.http.get("/api/auth/audit-logs", params={"entityId": first["sessionId"]},
                               headers=api.bearer(other["accessToken"]))
    assert any(e["action"] == "session.revoked" and e["reason"] == "refresh_token_reuse" for e in audit.json()["items"])


async def test_garbage_refresh_token_is_401(api):
    response = await api.http.post("/api/auth/refresh", json={"refreshToken": "not-a-token"})
    assert response.status_code == 401


async def test_logout_revokes_the_session(api):
    body = (await api.login("admin", api.ADMIN_PASSWORD)).json()
    response = await api.http.post("/api/auth/logout", headers=api.bearer(body["accessToken"]))
    assert response.status_code == 204
    again = await api.http.post("/api/auth/refresh", json={"refreshToken": body["refreshToken"]})
    assert again.status_code == 401
    sessions = await api.http.get("/api/auth/sessions", params={"active": "false"},
                                  headers=api.bearer(await api.token()))
    revoked = [s for s in sessions.json()["items"] if s["id"] == body["sessionId"]]
    assert revoked and revoked[0]["revokedReason"] == "logout"


async def test_locked_out_user_cannot_log_in_even_with_the_right_password(api):
    admin = await api.token()
    user = await api.create_user(admin, "lockme", ["operator"])
    for _ in range(3):  # MES_AUTH_MAX_FAILED_LOGINS=3 in the tests
        assert (await api.login("lockme", "wrong-password-guess")).status_code == 401
    refused = await api.login("lockme", api.PASSWORD)
    assert refused.status_code == 401
    state = (await api.http.get(f"/api/auth/users/{user['id']}", headers=api.bearer(admin))).json()
    assert state["lockedUntil"] is not None and state["failedLoginCount"] == 3
    # an admin unlocks; the right password works again
    assert (await api.http.post(f"/api/auth/users/{user['id']}/unlock", headers=api.bearer(admin))).status_code == 200
    assert (await api.login("lockme", api.PASSWORD)).status_code == 200
    log = (await api.http.get("/api/auth/audit-logs", params={"entityId": user["id"]},
                              headers=api.bearer(admin))).json()["items"]
    actions = [e["action"] for e in log]
    assert "user.locked" in actions and "login.refused" in actions and "user.unlocked" in actions


async def test_a_successful_login_resets_the_failure_count(api):
    admin = await api.token()
    await api.create_user(admin, "forgetful", ["operator"])
    for _ in range(2):
        await api.login("forgetful", "wrong-password-guess")
    assert (await api.login("forgetful", api.PASSWORD)).status_code == 200
    for _ in range(2):
        await api.login("forgetful", "wrong-password-guess")
    assert (await api.login("forgetful", api.PASSWORD)).status_code == 200


async def test_expired_or_forged_access_tokens_are_401(api, monkeypatch):
    import jwt

    from isles import security
    token = await api.token()
    forged = jwt.encode({**jwt.decode(token, options={"verify_signature": False}), "roles": ["admin"]},
                        "another-secret-that-is-long-enough-000", algorithm="HS256")
    assert (await api.http.get("/api/auth/me", headers=api.bearer(forged))).status_code == 401
    expired, _ = security.issue_access_token(user_id="00000000-0000-0000-0000-000000000001", username="x",
                                             roles=["admin"], minutes=1)
    claims = jwt.decode(expired, options={"verify_signature": False})
    claims.update(exp=claims["iat"] - 60)
    expired = jwt.encode(claims, security.auth_secret(), algorithm="HS256")
    response = await api.http.get("/api/auth/me", headers=api.bearer(expired))
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    none_alg = jwt.encode({**claims, "exp": claims["iat"] + 600}, None, algorithm="none")
    assert (await api.http.get("/api/auth/me", headers=api.bearer(none_alg))).status_code == 401
    assert (await api.http.get("/api/auth/me")).status_code == 401


async def test_password_reset_forces_a_change_at_next_login(api):
    admin = await api.token()
    user = await api.create_user(admin, "resetme", ["operator"])
    response = await api.http.post(f"/api/auth/users/{user['id']}/password-reset", headers=api.bearer(admin),
                                   json={"temporaryPassword": "Temporary-pass-123", "reason": "forgotten"})
    assert response.status_code == 204
    assert (await api.login("resetme", api.PASSWORD)).status_code == 401
    must = await api.login("resetme", "Temporary-pass-123")
    assert must.status_code == 403 and "newPassword" in must.json()["detail"]
    ok = await api.login("resetme", "Temporary-pass-123", newPassword="Brand-new-secret-42")
    assert ok.status_code == 200
    assert (await api.login("resetme", "Brand-new-secret-42")).status_code == 200


async def alerts(system):
    import orjson
    from sqlalchemy import select
    runtime = system.runtime("auth")
    outbox = runtime.tables.outbox
    async with runtime.database.engine.connect() as conn:
        rows = (await conn.execute(select(outbox).where(outbox.c.type == "mes.auth.security_alert.raised"))).all()
    return [orjson.loads(r.data) for r in rows]


async def test_lockout_and_token_reuse_raise_immediate_security_alerts(api, system):
    admin = await api.token()
    await api.create_user(admin, "alerted", ["operator"])
    for _ in range(3):
        await api.login("alerted", "wrong-password-guess")
    first = (await api.login("admin", api.ADMIN_PASSWORD)).json()
    await api.http.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    await api.http.post("/api/auth/refresh", json={"refreshToken": first["refreshToken"]})
    raised = await alerts(system)
    assert [(a["kind"], a["username"]) for a in raised] == [("account_locked", "alerted"),
                                                            ("refresh_token_reuse", "admin")]
    assert all(a["occurredAt"].endswith("+00:00") for a in raised)


async def test_after_logout_auth_refuses_the_unexpired_access_token(api):
    token = await api.token()
    assert (await api.http.get("/api/auth/me", headers=api.bearer(token))).status_code == 200
    assert (await api.http.post("/api/auth/logout", headers=api.bearer(token))).status_code == 204
    after = await api.http.get("/api/auth/me", headers=api.bearer(token))
    assert after.status_code == 401 and "session has ended" in after.json()["detail"]


async def test_nul_characters_are_a_clear_422(api):
    response = await api.login("ad\x00min", "x")
    assert response.status_code == 422


async def test_an_aged_password_must_be_changed_at_login(api):
    import uuid
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from mes import auth
    from mes.auth.models import Credential
    admin = await api.token()
    user = await api.create_user(admin, "aging", ["operator"])
    async with auth.service.unit_of_work() as uow:
        await uow.execute(update(Credential).where(Credential.user_id == uuid.UUID(user["id"]))
                          .values(expires_at=datetime.now(timezone.utc) - timedelta(days=1)))
    expired = await api.login("aging", api.PASSWORD)
    assert expired.status_code == 403
    same = await api.login("aging", api.PASSWORD, newPassword=api.PASSWORD)
    assert same.status_code == 422 and "differ" in same.json()["detail"]
    changed = await api.login("aging", api.PASSWORD, newPassword="A-fresh-password-2027")
    assert changed.status_code == 200
    assert datetime.fromisoformat(changed.json()["passwordExpiresAt"]) > datetime.now(timezone.utc)


async def test_an_idle_session_cannot_be_refreshed(api):
    import uuid
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    from mes import auth
    from mes.auth.models import Session
    body = (await api.login("admin", api.ADMIN_PASSWORD)).json()
    async with auth.service.unit_of_work() as uow:
        await uow.execute(update(Session).where(Session.id == uuid.UUID(body["sessionId"]))
                          .values(last_seen_at=datetime.now(timezone.utc) - timedelta(minutes=61)))
    response = await api.http.post("/api/auth/refresh", json={"refreshToken": body["refreshToken"]})
    assert response.status_code == 401 and "inactivity" in response.json()["detail"]
