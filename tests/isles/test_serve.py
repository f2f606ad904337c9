"""One service per process: the MES scenario with material and work_order as separate `isles serve`
processes on PostgreSQL and Redis Streams."""
from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).parent.parent.parent

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_for(predicate, timeout: float = 30.0, what: str = "condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        try:
            result = await predicate()
            if result:
                return result
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def test_material_and_work_order_in_their_own_processes(env, pg_database, redis_url, tmp_path, monkeypatch):
    import secrets

    import redis.asyncio as aioredis

    from isles.security import issue_access_token

    secret = secrets.token_urlsafe(48)  # every process verifies tokens with the same key
    monkeypatch.setenv("ISLES_AUTH_SECRET", secret)
    token, _ = issue_access_token(user_id="00000000-0000-0000-0000-00000000000a", username="planner",
                                  roles=["admin"])
    headers = {"Authorization": f"Bearer {token}"}

    isolated = redis_url.rsplit("/", 1)[0] + "/15"  # streams are named after the system: keep runs apart
    client = aioredis.from_url(isolated)
    stale = [key async for key in client.scan_iter("mes.*")]
    if stale:
        await client.delete(*stale)
    await client.aclose()
    settings = {**os.environ, **env, "MATERIAL_DATABASE_URL": await pg_database(),
                "WORK_ORDER_DATABASE_URL": await pg_database(), "ISLES_TRANSPORT": "redis",
                "REDIS_URL": isolated, "ISLES_SYSTEM": "mes.system:system", "ISLES_AUTH_SECRET": secret}
    ports = {"material": free_port(), "work_order": free_port()}
    procs = {name: subprocess.Popen([sys.executable, "-m", "isles.cli", "serve", "--service", name,
                                     "--port", str(port)], env=settings, cwd=tmp_path,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for name, port in ports.items()}
    material = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['material']}/api/material", headers=headers)
    work_order = httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports['work_order']}/api/work-order",
                                   headers=headers)
    try:
        for client in (material, work_order):
            await wait_for(lambda c=client: _up(c), what="the services to start")
        part = (await material.post("/parts", json={"partNumber": "P-12345", "name": "Landing Gear Strut"})).json()

        async def order_created():
            response = await work_order.post("/work-orders", json={"partId": part["id"], "quantity": 2})
            return response.json() if response.status_code == 201 else None

        order = await wait_for(order_created, what="the part to reach work_order")
        assert order["partNumber"] == "P-12345"
        await material.patch(f"/parts/{part['id']}", json={"partNumber": "P-99999"})

        async def renamed():
            current = (await work_order.get(f"/work-orders/{order['id']}")).json()
            return current["partNumber"] == "P-99999"

        await wait_for(renamed, what="the copy to follow")
        assert (await material.get("/work-orders")).status_code == 404  # each process serves only its service
    finally:
        await material.aclose()
        await work_order.aclose()
        for proc in procs.values():
            proc.terminate()
        for name, proc in procs.items():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"{name} did not stop on SIGTERM (graceful shutdown)") from None


async def _up(client: httpx.AsyncClient) -> bool:
    return (await client.get("/../../health")).status_code == 200
