"""The MES end to end, through HTTP only, on SQLite files and on a PostgreSQL database per service.

A planner creates a work order; then the part is renamed, the site renamed and the planner's account
deactivated - and every copy in work_order follows. Lots are received, released by quality and issued
into the order; the operations run in routing order (an out-of-order completion is refused); the last
one completes the order, after which material refuses to issue more to it.
"""
from __future__ import annotations

import pytest
from mes_helpers import Plant, make_crew, postgres_env, running_mes

M, R, W, A = "/api/material", "/api/resource", "/api/work-order", "/api/auth"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def scenario_api(request, mes_env, pg_database):
    env = await postgres_env(mes_env, pg_database) if request.param == "postgres" else mes_env
    async with running_mes(env) as api:
        yield api


async def test_copies_follow_their_owners_and_work_runs_in_order(scenario_api):
    api = scenario_api
    crew = await make_crew(api)
    plant = await Plant(api, crew).build()
    order = await plant.order(quantity=2)
    assert (order["partNumber"], order["siteName"], order["createdByName"]) == ("P-100", "Plant 1",
                                                                                 "Supervisor Tester")
    # -- the owners change; the copies follow -------------------------------------------------------------
    await plant.ok("PATCH", f"{M}/parts/{plant.part['id']}", crew.engineer, json={"partNumber": "P-100-B",
                                                                                   "name": "Strut assy"})
    await plant.ok("PATCH", f"{R}/sites/{plant.site['id']}", crew.engineer, json={"name": "Wichita Plant 1"})
    deactivated = await api.http.post(f"{A}/users/{crew.ids['supervisor']}/deactivate", headers=crew.admin,
                                      json={"reason": "left the company"})
    assert deactivated.status_code == 200, deactivated.text
    await api.system.drain()
    copy = await plant.ok("GET", f"{W}/work-orders/{order['id']}", crew.viewer)
    assert (copy["partNumber"], copy["partName"], copy["siteName"]) == ("P-100-B", "Strut assy", "Wichita Plant 1")
    assert (copy["createdByName"], copy["createdByActive"]) == ("Supervisor Tester", False)
    # -- the order is released and material issued into it ------------------------------------------------
    supervisor = crew.headers["admin"]  # the supervisor is gone; an admin takes over
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/release", supervisor, json={})
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/dispatch", supervisor, json={})
    await api.system.drain()
    forging = await plant.lot(plant.components[0], 5, supplier="Ladish")
    bushings = await plant.lot(plant.components[1], 10)
    for lot, quantity, op in ((forging, 2, "OP10"), (bushings, 4, "OP30")):
        await plant.ok("POST", f"{M}/consumptions", crew.operator, json={
            "lotId": lot["id"], "workOrderId": order["id"], "quantity": quantity, "operationCode": op})
    # -- operations in routing order ------------------------------------------------------------------------
    assert (await plant.step(order, 10, "start")).status_code == 200
    assert (await plant.step(order, 10, "complete", quantityGood=2)).status_code == 200
    assert (await plant.step(order, 20, "start")).status_code == 200
    out_of_order = await plant.step(order, 30, "complete", quantityGood=2)
    assert out_of_order.status_code == 409
    assert (await plant.step(order, 30, "start")).status_code == 409
    assert (await plant.step(order, 20, "complete", quantityGood=2)).status_code == 200
    assert (await plant.step(order, 30, "start")).status_code == 200
    assert (await plant.step(order, 30, "complete", quantityGood=2)).status_code == 200
    await api.system.drain()
    done = await plant.ok("GET", f"{W}/work-orders/{order['id']}", crew.viewer)
    assert (done["status"], done["quantityGood"]) == ("Completed", 2)
    variance = await plant.ok("GET", f"{W}/work-orders/{order['id']}/variance", crew.viewer)
    assert {(m["partNumber"], m["quantity"]) for m in variance["material"]} == {("C-1", 2), ("C-2", 4)}
    late = await api.http.post(f"{M}/consumptions", headers=crew.operator, json={
        "lotId": forging["id"], "workOrderId": order["id"], "quantity": 1})
    assert late.status_code == 409 and "is Completed" in late.json()["detail"]
    for runtime in api.system.runtimes.values():
        assert (await api.system._status(runtime)).dead_letters == 0, runtime.name
