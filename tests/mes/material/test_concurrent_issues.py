"""Two operators issue from one lot at the same moment, on PostgreSQL (real concurrency).

The lot's version column makes the second write fail its optimistic check instead of both
subtracting from the same starting quantity: one issue succeeds, the other gets a 409 it can
retry - never a 500, never a lot that went below zero or lost an issue.
"""
from __future__ import annotations

import asyncio

import pytest
from mes_helpers import M, Plant, make_crew, postgres_env, running_mes

pytestmark = pytest.mark.postgres


async def test_racing_issues_from_one_lot(mes_env, pg_database):
    async with running_mes(await postgres_env(mes_env, pg_database)) as api:
        plant = await Plant(api, await make_crew(api)).build()
        order = await plant.released(quantity=20)
        for _ in range(5):
            lot = await plant.lot(plant.components[0], 10)
            body = {"lotId": lot["id"], "workOrderId": order["id"], "quantity": 6, "reason": "racing on purpose"}
            answers = await asyncio.gather(*(api.http.post(f"{M}/consumptions", headers=plant.crew.operator,
                                                           json=body) for _ in range(2)))
            assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
            after = await plant.ok("GET", f"{M}/lots/{lot['id']}", plant.crew.viewer)
            assert after["quantity"] == 4
            issued = (await plant.ok("GET", f"{M}/consumptions?lotId={lot['id']}", plant.crew.viewer))["items"]
            assert [c["quantity"] for c in issued] == [6]
