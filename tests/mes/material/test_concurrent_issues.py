"""Two operators issue from one lot at the same moment, on PostgreSQL (real concurrency).

The lot's version column makes the second write fail its optimistic check instead of both
subtracting from the same starting quantity: one issue succeeds, the other gets a 409 it can
retry - never a 500, never a lot that went below zero or lost an issue.
"""
from __future__ import annotations

import asyncio

import httpx
import pytest

from isles.api import create_app
from mes_helpers import M, Api, Plant, build_system, make_crew

pytestmark = pytest.mark.postgres


async def test_racing_issues_from_one_lot(mes_env, pg_database):
    from mes import auth
    env = dict(mes_env)
    for service in ("auth", "resource", "material", "work_order"):
        env[f"{service.upper()}_DATABASE_URL"] = await pg_database()
    system = build_system(env)
    await system.start()
    try:
        await auth.bootstrap(env)
        app = create_app(system, start=lambda: None)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://mes.test") as http:
            api = Api(http, system)
            plant = await Plant(api, await make_crew(api)).build()
            order = await plant.released(quantity=20)
            for attempt in range(5):
                lot = await plant.lot(plant.components[0], 10)
                body = {"lotId": lot["id"], "workOrderId": order["id"], "quantity": 6}
                answers = await asyncio.gather(*(http.post(f"{M}/consumptions", headers=plant.crew.operator,
                                                           json=body) for _ in range(2)))
                codes = sorted(a.status_code for a in answers)
                assert codes == [201, 409], [a.text for a in answers]
                after = await plant.ok("GET", f"{M}/lots/{lot['id']}", plant.crew.viewer)
                assert after["quantity"] == 4
                issued = await plant.ok("GET", f"{M}/consumptions?lotId={lot['id']}", plant.crew.viewer)
                assert [c["quantity"] for c in issued] == [6]
    finally:
        await system.stop()
