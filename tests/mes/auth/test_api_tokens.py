"""API tokens: shown once, stored hashed, scoped, revocable - and accepted by other services
from their own replica of auth's token events (no read of auth's database)."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from isles.security import hash_token
from mes import auth
from mes.auth.models import ApiToken

R = "/api/resource"


async def make_token(api, user_token, scopes, name="scanner"):
    response = await api.http.post("/api/auth/api-tokens", json={"name": name, "scopes": scopes},
                                   headers=api.bearer(user_token))
    assert response.status_code == 201, response.text
    return response.json()


async def test_token_is_shown_once_and_stored_hashed(api):
    user = await api.user_token("tok1", ["engineer"])
    created = await make_token(api, user, ["resource:read"])
    plain = created["token"]
    assert plain.startswith("isat_") and created["tokenPrefix"] == plain[:12]
    async with auth.service.unit_of_work() as uow:
        stored = await uow.scalar(select(ApiToken).where(ApiToken.id == uuid.UUID(created["id"])))
    assert stored.token_hash == hash_token(plain) and plain not in repr(stored.__dict__)
    listed = (await api.http.get("/api/auth/api-tokens", headers=api.bearer(user))).json()["items"]
    assert [t["id"] for t in listed] == [created["id"]] and "token" not in listed[0]


async def test_an_api_token_works_only_for_its_scope(api, system):
    engineer = await api.user_token("tok2", ["engineer"])
    reader = (await make_token(api, engineer, ["resource:read"]))["token"]
    writer = (await make_token(api, engineer, ["resource:write", "resource:read"]))["token"]
    await system.drain()  # the token events reach resource's own replica
    assert (await api.http.get(f"{R}/enterprises", headers=api.bearer(reader))).status_code == 200
    refused = await api.http.post(f"{R}/enterprises", json={"code": "E1", "name": "E1"}, headers=api.bearer(reader))
    assert refused.status_code == 403 and "resource:write" in refused.json()["detail"]
    assert (await api.http.post(f"{R}/enterprises", json={"code": "E1", "name": "E1"},
                                headers=api.bearer(writer))).status_code == 201
    # a resource token is not an auth admin token, even for an admin's token
    admin = await api.token()
    admin_reader = (await make_token(api, admin, ["resource:read"]))["token"]
    assert (await api.http.get("/api/auth/users", headers=api.bearer(admin_reader))).status_code == 403
    # API tokens cannot mint more API tokens
    assert (await api.http.post("/api/auth/api-tokens", json={"name": "x", "scopes": ["*"]},
                                headers=api.bearer(writer))).status_code == 403


async def test_a_token_acts_with_at_most_its_owners_roles(api, system):
    operator = await api.user_token("tok3", ["operator"])
    token = (await make_token(api, operator, ["resource:write", "resource:read"]))["token"]
    await system.drain()
    assert (await api.http.post(f"{R}/enterprises", json={"code": "E2", "name": "E2"},
                                headers=api.bearer(token))).status_code == 403
    # the owner is promoted: the token follows (api_token.updated replicated to resource)
    admin = await api.token()
    me = (await api.http.get("/api/auth/me", headers=api.bearer(operator))).json()
    await api.http.put(f"/api/auth/users/{me['id']}/roles", json={"roles": ["engineer"]}, headers=api.bearer(admin))
    await system.drain()
    assert (await api.http.post(f"{R}/enterprises", json={"code": "E2", "name": "E2"},
                                headers=api.bearer(token))).status_code == 201


async def test_revoked_tokens_and_deactivated_owners_stop_working_everywhere(api, system):
    admin = await api.token()
    user = await api.create_user(admin, "tok4", ["engineer"])
    session = await api.token("tok4", api.PASSWORD)
    first = await make_token(api, session, ["resource:read"])
    second = await make_token(api, session, ["resource:read"], name="second")
    await system.drain()
    for token in (first, second):
        assert (await api.http.get(f"{R}/sites", headers=api.bearer(token["token"]))).status_code == 200
    revoked = await api.http.delete(f"/api/auth/api-tokens/{first['id']}", headers=api.bearer(session))
    assert revoked.status_code == 204
    # auth, the owner, refuses at once; resource once the revocation event has arrived
    assert (await api.http.get("/api/auth/me", headers=api.bearer(first["token"]))).status_code == 401
    await system.drain()
    refused = await api.http.get(f"{R}/sites", headers=api.bearer(first["token"]))
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    await api.http.post(f"/api/auth/users/{user['id']}/deactivate", headers=api.bearer(admin))
    await system.drain()
    assert (await api.http.get(f"{R}/sites", headers=api.bearer(second["token"]))).status_code == 401
    # and an invented token is simply unknown
    assert (await api.http.get(f"{R}/sites", headers=api.bearer("isat_" + "A" * 43))).status_code == 401


async def test_scopes_are_validated(api):
    user = await api.user_token("tok5", ["engineer"])
    response = await api.http.post("/api/auth/api-tokens", json={"name": "x", "scopes": ["rm -rf"]},
                                   headers=api.bearer(user))
    assert response.status_code == 422


@pytest.mark.postgres
async def test_api_tokens_replicate_on_postgres_schema_per_service(mes_env, make_system, pg_database):
    import httpx

    from isles.api import create_app
    env = {**mes_env, "DATABASE_URL": await pg_database()}
    system = make_system(env)
    await system.start()
    try:
        await auth.bootstrap(env)
        app = create_app(system, start=lambda: None)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            login = await http.post("/api/auth/login",
                                    json={"username": "admin", "password": mes_env["MES_ADMIN_PASSWORD"]})
            admin = {"Authorization": f"Bearer {login.json()['accessToken']}"}
            created = (await http.post("/api/auth/api-tokens", json={"name": "pg", "scopes": ["resource:*"]},
                                       headers=admin)).json()
            await system.drain()
            h = {"Authorization": f"Bearer {created['token']}"}
            enterprise = await http.post(f"{R}/enterprises", json={"code": "PG", "name": "PG"}, headers=h)
            assert enterprise.status_code == 201
            await http.delete(f"/api/auth/api-tokens/{created['id']}", headers=admin)
            await system.drain()
            assert (await http.get(f"{R}/enterprises", headers=h)).status_code == 401
    finally:
        await system.stop()
