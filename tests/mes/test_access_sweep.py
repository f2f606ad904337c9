"""Every route of every service, with every kind of caller: who is let in is exactly what the route
declares (hardening: 14 auth routes checked no scope, and an admin's ``material:read`` token could
revoke anyone's sessions and API tokens).

The requirements are not written here: :func:`isles.security.access_map` reads each route's from
its dependencies (what the route really checks), and a route that declares nothing fails the sweep.
The routes come from the app's OpenAPI, the roles from auth's ``GET /roles``, the scopes from the
declarations, so a new service or route is swept without new test code.

Callers: no token; one user per role (an access token from /login); one admin API token per
declared scope and ``*``. A caller the route's :class:`~isles.security.Access` does not allow must
get 401 or 403 - never a 2xx, a 404 (the route looked something up first) or a 5xx. A caller it
allows must not get 401, 403 or a 5xx (a 404 for the random ids, or a 422 for the empty body, is fine).
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI
from mes_helpers import ADMIN_PASSWORD, PASSWORD, bearer

from isles import ConfigurationError, System
from isles.api import create_app
from isles.security import ACCESS_EXTENSION, PUBLIC, Guard, Principal, access_map, decode_access_token, document_access

A = "/api/auth"


@dataclass
class Caller:
    """One credential and the principal it stands for (None: no credential)."""

    name: str
    principal: Principal | None
    headers: dict[str, str]
    username: str | None = None  # a user's login, to log in again after the sweep ended its session


@pytest.fixture
async def app_and_client(system: System) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(system, start=lambda: None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mes.test") as http:
        yield app, http


async def _login(http: httpx.AsyncClient, username: str, password: str) -> str:
    response = await http.post(f"{A}/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["accessToken"]


def _user(name: str, token: str, username: str) -> Caller:
    return Caller(name, decode_access_token(token), bearer(token), username)


async def _callers(http: httpx.AsyncClient, system: System, scopes: list[str]) -> list[Caller]:
    admin = await _login(http, "admin", ADMIN_PASSWORD)
    callers = [Caller("no token", None, {}), _user("role admin", admin, "admin")]
    roles = [r["name"] for r in (await http.get(f"{A}/roles", headers=bearer(admin))).json()["items"]]
    for role in roles:
        if role == "admin":
            continue
        username = f"sweep-{role}"
        created = await http.post(f"{A}/users", headers=bearer(admin), json={
            "username": username, "password": PASSWORD, "roles": [role], "mustChangePassword": False})
        assert created.status_code == 201, created.text
        callers.append(_user(f"role {role}", await _login(http, username, PASSWORD), username))
    admin_principal = decode_access_token(admin)
    for scope in [*scopes, "*"]:
        made = await http.post(f"{A}/api-tokens", headers=bearer(admin), json={"name": f"sweep {scope}",
                                                                               "scopes": [scope]})
        assert made.status_code == 201, made.text
        body = made.json()
        principal = Principal(user_id=admin_principal.user_id, username="admin", roles=admin_principal.roles,
                              scopes=frozenset(body["scopes"]), kind="api_token", token_id=body["id"])
        callers.append(Caller(f"admin API token {scope}", principal, bearer(body["token"])))
    await system.drain()  # the tokens reach every service's replica
    return callers


def _value(schema: dict[str, Any]) -> Any:
    kind = schema.get("type") or next((s.get("type") for s in schema.get("anyOf", []) if s.get("type") != "null"),
                                      "string")
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return "false"
    return str(uuid.uuid4()) if schema.get("format") == "uuid" or kind == "string" else "x"


def _request(path: str, operation: dict[str, Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The URL (path parameters filled), required query parameters and keyword arguments of a
    minimal request to ``operation``: random UUIDs, 1 for numbers, an empty JSON body."""
    params: dict[str, Any] = {}
    for parameter in operation.get("parameters", []):
        value = _value(parameter.get("schema", {}))
        if parameter["in"] == "path":
            path = path.replace("{" + parameter["name"] + "}", str(value))
        elif parameter["in"] == "query" and parameter.get("required"):
            params[parameter["name"]] = value
    return path, params, ({"json": {}} if "requestBody" in operation else {})


async def test_every_route_admits_exactly_the_callers_it_declares(app_and_client, system):
    app, http = app_and_client
    rows = access_map(app)
    declared = {(r.method, r.path): r for r in rows}
    undeclared = [f"{r.method} {r.path}" for r in rows if r.access is None]
    assert not undeclared, f"routes that declare no access (add a guard parameter or dependencies=[PUBLIC]): " \
                           f"{undeclared}"
    scopeless = [f"{r.method} {r.path}" for r in rows if not r.access.public and not r.access.scopes]
    assert not scopeless, f"routes that let any token in, whatever its scopes: {scopeless}"

    schema = app.openapi()
    operations = [(method.upper(), path, op) for path, item in schema["paths"].items()
                  for method, op in item.items() if method in ("get", "post", "put", "patch", "delete")]
    assert len(operations) > 100 and {p.split("/")[2] for _, p, _ in operations if p.startswith("/api/")} \
        == {"auth", "resource", "material", "work-order", "traceability"}
    for method, path, op in operations:
        assert (method, path) in declared, f"{method} {path} is in the OpenAPI but not in access_map()"
        assert op[ACCESS_EXTENSION] == declared[method, path].access.as_openapi(), (method, path)
        assert "Access: " in op["description"]

    scopes = sorted({s for r in rows for s in r.access.scopes})
    assert {"auth:read", "auth:write", "auth:admin", "material:read"} <= set(scopes)
    callers = await _callers(http, system, scopes)

    wrong: list[str] = []
    sent = 0
    # the session-ending routes (logout) last, so the callers' sessions last the whole sweep
    for method, path, op in sorted(operations, key=lambda o: o[1].endswith("/logout")):
        access = declared[method, path].access
        url, params, body = _request(path, op)
        for caller in callers:
            response = await http.request(method, url, params=params, headers=caller.headers, **body)
            sent += 1
            status = response.status_code
            if access.allows(caller.principal):
                if status in (401, 403) and caller.username is not None and "session has ended" in response.text:
                    wrong.append(f"{method} {path}: the sweep itself ended {caller.name}'s session")
                elif status in (401, 403) or status >= 500:
                    wrong.append(f"{method} {path}: {caller.name} is allowed ({access.describe()}) "
                                 f"but got {status} {response.text[:120]}")
            elif status not in (401, 403):
                wrong.append(f"{method} {path}: {caller.name} is not allowed ({access.describe()}) "
                             f"but got {status} {response.text[:120]}")
    assert not wrong, "\n".join(wrong)
    assert sent >= len(operations) * len(callers)


# -- the declarations themselves, on a small app ----------------------------------------------
def _toy_app(*, undeclared: bool = False, both: bool = False) -> FastAPI:
    guard = Guard()
    reader = Depends(guard.require(scopes=("toy:read",)))
    writer = Depends(guard.require(roles=("engineer",), scopes=("toy:write",)))
    router = APIRouter(dependencies=[reader])

    @router.post("/things")
    async def make(principal: Principal = writer) -> None:
        """Make a thing."""

    app = FastAPI()
    app.include_router(router, prefix="/api/toy")

    @app.get("/ping", dependencies=[PUBLIC])
    async def ping() -> None: ...

    if undeclared:
        @app.get("/forgotten")
        async def forgotten() -> None: ...
    if both:
        @app.get("/confused", dependencies=[PUBLIC, reader])
        async def confused() -> None: ...
    document_access(app)
    return app


def test_access_is_read_from_the_route_and_its_routers_dependencies():
    rows = {(r.method, r.path): r.access for r in access_map(_toy_app())}
    things = rows["POST", "/api/toy/things"]
    assert things.scopes == ("toy:read", "toy:write") and things.role_groups == (("engineer",),)
    assert rows["GET", "/ping"].public
    engineer = Principal(user_id="u", username="u", roles=frozenset({"engineer"}), scopes=frozenset({"toy:*"}))
    assert things.allows(engineer) and rows["GET", "/ping"].allows(None) and not things.allows(None)
    assert not things.allows(Principal(user_id="u", username="u", roles=frozenset({"engineer"}),
                                       scopes=frozenset({"toy:write"})))
    assert not things.allows(Principal(user_id="u", username="u", roles=frozenset({"admin"})))
    operation = _toy_app().openapi()["paths"]["/api/toy/things"]["post"]
    assert operation[ACCESS_EXTENSION] == {"public": False, "roles": [["engineer"]],
                                            "scopes": ["toy:read", "toy:write"], "interactive": False}
    assert operation["description"].startswith("Make a thing.") and "Access: scopes toy:read, toy:write" in \
        operation["description"]


def test_a_route_that_declares_nothing_is_reported():
    app = _toy_app(undeclared=True)
    assert [r.path for r in access_map(app) if r.access is None] == ["/forgotten"]
    assert app.openapi()["paths"]["/forgotten"]["get"][ACCESS_EXTENSION] == {"undeclared": True}


def test_public_and_guarded_at_once_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="declared public and also requires"):
        access_map(_toy_app(both=True))
