"""auth's own routes check the API token's scopes: a token scoped to another service (even an
admin's) reads and changes nothing in auth, and revoking another user's session or token needs
``auth:admin`` on top of the admin role (hardening defect: an admin's ``material:read`` token
revoked any user's sessions and tokens)."""
from __future__ import annotations

A = "/api/auth"


async def make_token(api, user_token: str, scopes: list[str]) -> str:
    response = await api.http.post(f"{A}/api-tokens", json={"name": "t", "scopes": scopes},
                                   headers=api.bearer(user_token))
    assert response.status_code == 201, response.text
    return response.json()["token"]


async def test_an_admins_material_token_cannot_revoke_other_users_sessions_or_tokens(api):
    admin = await api.token()
    material = await make_token(api, admin, ["material:read"])
    await api.create_user(admin, "victim1", ["operator"])
    login = (await api.login("victim1", api.PASSWORD)).json()
    victim = login["accessToken"]
    sessions = (await api.http.get(f"{A}/sessions", headers=api.bearer(victim))).json()["items"]
    victim_token_id = (await api.http.post(f"{A}/api-tokens", json={"name": "v", "scopes": ["material:read"]},
                                           headers=api.bearer(victim))).json()["id"]

    response = await api.http.delete(f"{A}/sessions/{sessions[0]['id']}", headers=api.bearer(material))
    assert response.status_code == 403, response.text
    response = await api.http.delete(f"{A}/api-tokens/{victim_token_id}", headers=api.bearer(material))
    assert response.status_code == 403, response.text
    # nothing happened: the victim still refreshes, the token is still live
    assert (await api.http.post(f"{A}/refresh", json={"refreshToken": login["refreshToken"]})).status_code == 200
    listed = (await api.http.get(f"{A}/api-tokens", headers=api.bearer(victim))).json()["items"]
    assert listed[0]["revokedAt"] is None


async def test_a_foreign_scope_reads_nothing_of_auth(api):
    admin = await api.token()
    material = await make_token(api, admin, ["material:read"])
    for path in ("/me", "/sessions", "/api-tokens", "/roles", "/signature-meanings", "/users", "/audit-logs"):
        response = await api.http.get(f"{A}{path}", headers=api.bearer(material))
        assert response.status_code == 403, (path, response.text)


async def test_auth_scopes_read_write_admin(api):
    admin = await api.token()
    reader = await make_token(api, admin, ["auth:read"])
    writer = await make_token(api, admin, ["auth:write"])
    admin_scope = await make_token(api, admin, ["auth:admin", "auth:write"])
    assert (await api.http.get(f"{A}/me", headers=api.bearer(reader))).status_code == 200
    assert (await api.http.get(f"{A}/api-tokens", headers=api.bearer(reader))).status_code == 200
    # auth:read changes nothing
    mine = (await api.http.get(f"{A}/api-tokens", headers=api.bearer(admin))).json()["items"]
    assert (await api.http.delete(f"{A}/api-tokens/{mine[0]['id']}", headers=api.bearer(reader))).status_code == 403

    await api.create_user(admin, "victim2", ["operator"])
    victim = await api.token("victim2", api.PASSWORD)
    victim_token = (await api.http.post(f"{A}/api-tokens", json={"name": "v", "scopes": ["material:read"]},
                                        headers=api.bearer(victim))).json()["id"]
    # auth:write revokes the owner's own tokens only; another user's needs auth:admin too
    response = await api.http.delete(f"{A}/api-tokens/{victim_token}", headers=api.bearer(writer))
    assert response.status_code == 403 and "auth:admin" in response.json()["detail"]
    assert (await api.http.delete(f"{A}/api-tokens/{victim_token}",
                                  headers=api.bearer(admin_scope))).status_code == 204
    own = next(t for t in mine if t["scopes"] == ["auth:read"])
    assert (await api.http.delete(f"{A}/api-tokens/{own['id']}", headers=api.bearer(writer))).status_code == 204
    # a non-admin's own access token still manages only their own things (404 for others')
    assert (await api.http.delete(f"{A}/api-tokens/{mine[0]['id']}", headers=api.bearer(victim))).status_code == 404
