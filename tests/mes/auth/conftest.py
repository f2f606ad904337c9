"""Fixtures for the auth and resource tests: a small System (auth + resource) on SQLite (or
PostgreSQL), an HTTP client against the services' routers, and logged-in users. (tests/mes/resource
loads this file too; the lead may hoist it to tests/mes/conftest.py.)"""
from __future__ import annotations

from typing import AsyncIterator

import httpx
import pytest

from isles import System
from isles.api import create_app

ADMIN_PASSWORD = "Boot-strap-secret-for-tests-1"
PASSWORD = "Correct-horse-battery-9"


@pytest.fixture
def mes_env(env, monkeypatch) -> dict[str, str]:
    """Cheap argon2 (production defaults stay in code) and a known admin password."""
    values = dict(env)
    settings = {"MES_AUTH_ARGON2_TIME_COST": "1", "MES_AUTH_ARGON2_MEMORY_KIB": "8",
                "MES_AUTH_ARGON2_PARALLELISM": "1", "MES_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "MES_AUTH_MAX_FAILED_LOGINS": "3"}
    for key in ("ISLES_AUTH_SECRET", "MES_ADMIN_USERNAME", "MES_AUTH_LOCKOUT_MINUTES"):
        monkeypatch.delenv(key, raising=False)
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    values.update(settings)
    return values


def build_system(env: dict[str, str]) -> System:
    from mes import auth, resource
    return System("mes", [auth.service, resource.service], env=env, relay_options={"poll_interval": 0.05},
                  consumer_options={"max_attempts": 3, "base_backoff": 0.001})


@pytest.fixture
def make_system():
    return build_system


@pytest.fixture
async def system(mes_env) -> AsyncIterator[System]:
    from mes import auth
    system = build_system(mes_env)
    await system.start()
    try:
        await auth.bootstrap(mes_env)
        yield system
    finally:
        await system.stop()


@pytest.fixture
async def client(system) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(system, start=lambda: None)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mes.test") as http:
        yield http


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


@pytest.fixture
def api(client, system) -> Api:
    return Api(client, system)
