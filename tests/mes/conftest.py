"""Fixtures for the MES tests: the four services as one System on SQLite files, an HTTP client
against their routers, users per role logged in through auth, and a small plant (see mes_helpers)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import AsyncIterator

import httpx
import pytest

sys.path.append(str(Path(__file__).parent))  # mes_helpers (appended: other folders import their own "conftest")

from mes_helpers import ADMIN_PASSWORD, Api, Crew, Plant, build_system, make_crew  # noqa: E402 - after sys.path

from isles import System  # noqa: E402 - after sys.path, as the import above
from isles.api import create_app  # noqa: E402 - after sys.path, as the import above


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


@pytest.fixture
def api(client, system) -> Api:
    return Api(client, system)


@pytest.fixture
async def crew(api) -> Crew:
    return await make_crew(api)


@pytest.fixture
async def plant(api, crew) -> Plant:
    return await Plant(api, crew).build()
