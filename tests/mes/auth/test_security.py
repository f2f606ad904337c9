"""isles.security: the secret, access tokens, principals and the dependencies (on a bare app)."""
from __future__ import annotations

import os
import stat

import httpx
import pytest
from fastapi import Depends, FastAPI

from isles import ConfigurationError, security


def test_dev_secret_is_created_once_with_mode_0600(tmp_path):
    env = {"ISLES_DATA_DIR": str(tmp_path / "d")}
    first = security.auth_secret(env)
    path = tmp_path / "d" / security.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and security.auth_secret(env) == first
    security._file_secrets.clear()  # another process reads the same file
    assert security.auth_secret(env) == first


def test_a_world_readable_secret_file_is_refused_without_showing_it(tmp_path):
    env = {"ISLES_DATA_DIR": str(tmp_path)}
    secret = security.auth_secret(env)
    os.chmod(tmp_path / security.SECRET_FILE, 0o644)
    security._file_secrets.clear()
    with pytest.raises(ConfigurationError, match="chmod 600") as info:
        security.auth_secret(env)
    assert secret.decode() not in str(info.value)


def test_configured_secret_must_be_long_and_is_never_echoed():
    with pytest.raises(ConfigurationError) as info:
        security.auth_secret({"ISLES_AUTH_SECRET": "short-secret"})
    assert "short-secret" not in str(info.value)
    assert security.auth_secret({"ISLES_AUTH_SECRET": "x" * 40}) == b"x" * 40


def test_access_token_round_trip_and_tampering(env):
    token, lifetime = security.issue_access_token(user_id="u1", username="ann", roles=["engineer"], session_id="s1")
    principal = security.decode_access_token(token)
    assert (principal.user_id, principal.username, principal.roles, principal.session_id) == \
        ("u1", "ann", frozenset({"engineer"}), "s1")
    assert principal.has_scope("anything:write") and lifetime == 900
    head, body, sig = token.split(".")
    with pytest.raises(security.InvalidToken):
        security.decode_access_token(f"{head}.{body}.{sig[:-2]}AA")
    with pytest.raises(security.InvalidToken):
        security.decode_access_token("garbage")


def test_scope_matching():
    p = security.Principal(user_id="u", username="u", scopes=frozenset({"resource:read", "quality:*"}),
                           kind="api_token")
    assert p.has_scope("resource:read") and not p.has_scope("resource:write")
    assert p.has_scope("quality:write") and not p.has_scope("auth:admin")


async def test_dependencies_on_a_bare_app(env):
    app = FastAPI()
    authenticated = security.authenticated()

    @app.get("/open")
    async def open_(p: security.Principal = Depends(authenticated)) -> dict:
        return {"user": p.username}

    @app.get("/admin", dependencies=[Depends(security.require_roles("admin"))])
    async def admin() -> dict:
        return {}

    @app.get("/scoped", dependencies=[Depends(security.require_scopes("x:write"))])
    async def scoped() -> dict:
        return {}

    user, _ = security.issue_access_token(user_id="u1", username="ann", roles=["operator"])
    h = {"Authorization": f"Bearer {user}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/open")).status_code == 401
        assert (await http.get("/open", headers=h)).json() == {"user": "ann"}
        assert (await http.get("/admin", headers=h)).status_code == 403
        assert (await http.get("/scoped", headers=h)).status_code == 200  # users hold every scope
        # without a service, API tokens are not accepted (nowhere to verify them)
        api_token = {"Authorization": f"Bearer {security.new_api_token()}"}
        assert (await http.get("/open", headers=api_token)).status_code == 401
