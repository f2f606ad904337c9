"""Helpers for the MES tests (importable: tests/mes/conftest.py puts this folder on sys.path).

``Api`` wraps the HTTP client; ``make_crew`` logs in one user per role through auth; ``Plant``
builds a small plant through the services' APIs (a site, work centers, parts with a released BOM,
a product and a released routing).
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator, Awaitable, Callable

import httpx

from isles import System
from isles.api import create_app

ADMIN_PASSWORD = "Boot-strap-secret-for-tests-1"
PASSWORD = "Correct-horse-battery-9"
ROLES = ("engineer", "supervisor", "operator", "quality", "viewer")
M, R, W = "/api/material", "/api/resource", "/api/work-order"


def build_system(env: dict[str, str]) -> System:
    from mes import auth, material, resource, traceability, work_order
    return System("mes", [auth.service, resource.service, material.service, work_order.service, traceability.service],
                  env=env,
                  relay_options={"poll_interval": 0.05}, consumer_options={"max_attempts": 3, "base_backoff": 0.001})


SERVICES = ("auth", "resource", "material", "work_order", "traceability")


async def postgres_env(env: dict[str, str], new_database: Callable[[], Awaitable[str]]) -> dict[str, str]:
    """``env`` with a fresh PostgreSQL database for each service (``new_database``: the pg_database fixture)."""
    return {**env, **{f"{s.upper()}_DATABASE_URL": await new_database() for s in SERVICES}}


@asynccontextmanager
async def running_mes(env: dict[str, str]) -> AsyncIterator["Api"]:
    """The four services started on ``env``, the first admin created, an HTTP client on their API."""
    from mes import auth
    system = build_system(env)
    await system.start()
    try:
        await auth.bootstrap(env)
        app = create_app(system, start=lambda: None)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mes.test") as http:
            yield Api(http, system)
    finally:
        await system.stop()


class Api:
    """Small helpers over the HTTP client (every call goes through HTTP)."""

    ADMIN_PASSWORD = ADMIN_PASSWORD
    PASSWORD = PASSWORD

    def __init__(self, http: httpx.AsyncClient, system: System):
        self.http = http
        self.system = system

    async def login(self, username: str, password: str, **extra) -> httpx.Response:
        return await self.http.post("/api/auth/login", json={"username": username, "password": password, **extra})

    async def token(self, username: str = "admin", password: str = ADMIN_PASSWORD) -> str:
        response = await self.login(username, password)
        assert response.status_code == 200, response.text
        return response.json()["accessToken"]

    async def create_user(self, admin_token: str, username: str, roles: list[str], password: str = PASSWORD,
                          **extra) -> dict:
        response = await self.http.post("/api/auth/users", headers=bearer(admin_token), json={
            "username": username, "password": password, "roles": roles, "firstName": username.title(),
            "lastName": "Tester", "mustChangePassword": False, **extra})
        assert response.status_code == 201, response.text
        return response.json()

    async def user_token(self, username: str, roles: list[str]) -> str:
        await self.create_user(await self.token(), username, roles)
        return await self.token(username, PASSWORD)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


Api.bearer = staticmethod(bearer)


class Crew:
    """One logged-in user per role (``crew.engineer`` is a headers dict), created through auth's API."""

    def __init__(self, headers: dict[str, dict[str, str]], ids: dict[str, str]):
        self.headers, self.ids = headers, ids

    def __getattr__(self, role: str) -> dict[str, str]:
        try:
            return self.headers[role]
        except KeyError:
            raise AttributeError(role) from None


async def make_crew(api: Api) -> Crew:
    admin = await api.token()
    headers, ids = {"admin": bearer(admin)}, {}
    for role in ROLES:
        user = await api.create_user(admin, f"{role}1", [role], firstName=role.title(), lastName="Tester")
        ids[role] = user["id"]
        headers[role] = bearer(await api.token(f"{role}1", PASSWORD))
    return Crew(headers, ids)


class Plant:
    """A small plant built through HTTP: a site with two work centers, part P-100 (made of C-1 and
    C-2) with a released BOM, a product naming the part and a released three-step routing."""

    def __init__(self, api: Api, crew: Crew):
        self.api, self.crew, self.http = api, crew, api.http

    async def ok(self, method: str, url: str, headers: dict, **kwargs) -> dict:
        response = await self.http.request(method, url, headers=headers, **kwargs)
        assert response.status_code < 300, f"{method} {url}: {response.status_code} {response.text}"
        return response.json() if response.content else {}

    async def build(self) -> "Plant":
        eng = self.crew.engineer
        self.enterprise = await self.ok("POST", f"{R}/enterprises", eng, json={"code": "ACME", "name": "Acme"})
        self.site = await self.ok("POST", f"{R}/sites", eng, json={"code": "PLT1", "name": "Plant 1",
                                                                  "enterpriseId": self.enterprise["id"]})
        area = await self.ok("POST", f"{R}/areas", eng, json={"code": "MACH", "name": "Machining",
                                                             "siteId": self.site["id"]})
        self.centers = [await self.ok("POST", f"{R}/work-centers", eng, json={
            "code": code, "name": name, "areaId": area["id"], "kind": "ProductionLine"})
            for code, name in (("CNC-1", "CNC line 1"), ("ASSY-1", "Assembly line 1"))]
        self.part = await self.ok("POST", f"{M}/parts", eng, json={"partNumber": "P-100", "name": "Strut"})
        self.components = [await self.ok("POST", f"{M}/parts", eng, json={"partNumber": n, "name": name})
                           for n, name in (("C-1", "Forging"), ("C-2", "Bushing"))]
        self.bom = await self.ok("POST", f"{M}/parts/{self.part['id']}/boms", eng, json={"items": [
            {"lineNumber": 10, "componentPartId": self.components[0]["id"], "quantityPer": 1, "operationCode": "OP10"},
            {"lineNumber": 20, "componentPartId": self.components[1]["id"], "quantityPer": 2}]})
        await self.ok("POST", f"{M}/parts/{self.part['id']}/boms/{self.bom['bomVersion']}/release", eng)
        self.product = await self.ok("POST", f"{R}/products", eng, json={
            "productNumber": "P-100", "name": "Strut", "partId": self.part["id"]})
        self.routing = await self.ok("POST", f"{R}/routings", eng, json={
            "productId": self.product["id"], "siteId": self.site["id"], "code": "RT-100", "name": "Strut",
            "operations": [
                {"sequence": 10, "code": "OP10", "name": "Machine", "workCenterId": self.centers[0]["id"],
                 "setupMinutes": 30, "runMinutesPerUnit": 10},
                {"sequence": 20, "code": "OP20", "name": "Inspect", "workCenterId": self.centers[0]["id"],
                 "runMinutesPerUnit": 2},
                {"sequence": 30, "code": "OP30", "name": "Assemble", "workCenterId": self.centers[1]["id"],
                 "setupMinutes": 5, "runMinutesPerUnit": 20}]})
        await self.ok("POST", f"{R}/routings/{self.routing['id']}/status", eng, json={"status": "released"})
        await self.api.system.drain()
        return self

    async def order(self, quantity: float = 4, **extra) -> dict:
        order = await self.ok("POST", f"{W}/work-orders", self.crew.supervisor, json={
            "partId": self.part["id"], "quantity": quantity, "siteId": self.site["id"], **extra})
        await self.api.system.drain()
        return order

    async def released(self, quantity: float = 4, dispatch: bool = True, **extra) -> dict:
        order = await self.order(quantity, **extra)
        await self.ok("POST", f"{W}/work-orders/{order['id']}/release", self.crew.supervisor, json={})
        if dispatch:
            await self.ok("POST", f"{W}/work-orders/{order['id']}/dispatch", self.crew.supervisor, json={})
        await self.api.system.drain()
        return await self.ok("GET", f"{W}/work-orders/{order['id']}", self.crew.viewer)

    async def lot(self, part: dict, quantity: float, release: bool = True, **extra) -> dict:
        lot = await self.ok("POST", f"{M}/lots", self.crew.operator, json={"partId": part["id"], "quantity": quantity,
                                                                           **extra})
        if release:
            lot = await self.ok("POST", f"{M}/lots/{lot['id']}/status", self.crew.quality,
                                json={"status": "released"})
        return lot

    async def step(self, order: dict, sequence: int, action: str, headers: dict | None = None, **body):
        return await self.http.post(f"{W}/work-orders/{order['id']}/operations/{sequence}/{action}",
                                    headers=headers or self.crew.operator, json=body)
