"""The holes a manufacturing engineer found on a first day (issue 14, item 3): each test failed
before its fix. They run through HTTP against the four services (tests/mes/mes_helpers.py)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

M, R, W = "/api/material", "/api/resource", "/api/work-order"
ZERO = "00000000-0000-0000-0000-000000000000"


async def _issue(plant, order: dict, lot: dict, quantity: float, **extra):
    return await plant.http.post(f"{M}/consumptions", headers=plant.crew.operator, json={
        "lotId": lot["id"], "workOrderId": order["id"], "quantity": quantity, **extra})


# -- a held order: nothing is reported, issued or started ----------------------------------------------
async def test_a_held_order_takes_no_report_no_issue_and_no_start(plant):
    order = await plant.released(quantity=4)
    lot = await plant.lot(plant.components[0], 10)
    assert (await plant.step(order, 10, "start")).status_code == 200
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/hold", plant.crew.supervisor, json={"reason": "NCR 7"})
    await plant.api.system.drain()
    report = await plant.step(order, 10, "report", quantityGood=1)
    assert report.status_code == 409 and "Held" in report.json()["detail"]
    assert (await plant.step(order, 10, "resume")).status_code == 409
    issue = await _issue(plant, order, lot, 1, operationCode="OP10")
    assert issue.status_code == 409 and "Held" in issue.json()["detail"]
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/unhold", plant.crew.supervisor)
    assert (await plant.step(order, 10, "resume")).status_code == 200
    assert (await plant.step(order, 10, "report", quantityGood=1)).status_code == 200


# -- quantities balance at every operation ----------------------------------------------------------------
async def test_an_operation_cannot_complete_with_units_unaccounted_for(plant):
    order = await plant.released(quantity=8)
    await plant.step(order, 10, "start")
    short = await plant.step(order, 10, "complete", quantityGood=6)
    assert short.status_code == 409
    assert "2 still in process" in short.json()["detail"], short.json()
    done = await plant.step(order, 10, "complete", quantityGood=6, quantityScrap=2, scrapReason="chatter marks")
    assert done.status_code == 200, done.text
    body = done.json()
    assert (body["quantityIn"], body["quantityGood"], body["quantityScrap"], body["quantityInProcess"]) == (8, 6, 2, 0)
    assert body["yieldPercent"] == 75.0
    await plant.step(order, 20, "start")
    twenty = (await plant.step(order, 20, "report", quantityGood=5)).json()
    assert (twenty["quantityIn"], twenty["quantityGood"], twenty["quantityInProcess"]) == (6, 5, 1)
    await plant.step(order, 20, "complete", quantityScrap=1, scrapReason="crack")
    await plant.step(order, 30, "start")
    await plant.step(order, 30, "complete", quantityGood=5)
    final = await plant.ok("GET", f"{W}/work-orders/{order['id']}", plant.crew.viewer)
    assert (final["status"], final["quantityGood"], final["quantityScrap"]) == ("Completed", 5, 3)
    for op in final["operations"]:
        assert op["quantityIn"] == op["quantityGood"] + op["quantityScrap"] + op["quantityInProcess"]
    variance = await plant.ok("GET", f"{W}/work-orders/{order['id']}/variance", plant.crew.viewer)
    assert variance["yieldPercent"] == 62.5  # good / planned: 5 of 8


# -- dispatch: a real work center, and readable ----------------------------------------------------------
async def test_dispatch_checks_the_work_center_and_can_be_read(plant):
    order = await plant.released(quantity=2, dispatch=False)
    bad = await plant.http.post(f"{W}/work-orders/{order['id']}/dispatch", headers=plant.crew.supervisor,
                                json={"workCenterId": ZERO})
    assert bad.status_code == 422 and ZERO in bad.json()["detail"]
    still = await plant.ok("GET", f"{W}/work-orders/{order['id']}", plant.crew.viewer)
    assert still["status"] == "Released"
    center = plant.centers[1]["id"]
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/dispatch", plant.crew.supervisor,
                   json={"workCenterId": center, "note": "line 2"})
    dispatches = await plant.ok("GET", f"{W}/work-orders/{order['id']}/dispatches", plant.crew.viewer)
    assert [(d["workCenterId"], d["note"]) for d in dispatches] == [(center, "line 2")]
    one = await plant.ok("GET", f"{W}/work-orders/{order['id']}/dispatches/{dispatches[0]['id']}", plant.crew.viewer)
    assert one["workCenterCode"] == "ASSY-1"
    missing = await plant.http.get(f"{W}/work-orders/{order['id']}/dispatches/{ZERO}", headers=plant.crew.viewer)
    assert missing.status_code == 404


# -- serial-tracked parts are made in whole units ------------------------------------------------------------
async def test_a_fractional_order_for_a_serial_tracked_part_is_refused(plant):
    part = await plant.ok("POST", f"{M}/parts", plant.crew.engineer,
                          json={"partNumber": "SN-1", "name": "Actuator", "tracking": "serial"})
    await plant.api.system.drain()
    refused = await plant.http.post(f"{W}/work-orders", headers=plant.crew.supervisor,
                                    json={"partId": part["id"], "quantity": 2.5})
    assert refused.status_code == 422 and "serial" in refused.json()["detail"]
    assert (await plant.http.post(f"{W}/work-orders", headers=plant.crew.supervisor,
                                  json={"partId": part["id"], "quantity": 3})).status_code == 201
    order = await plant.order(quantity=1)  # a lot-tracked part: no change for fractions on patch below
    patched = await plant.http.patch(f"{W}/work-orders/{order['id']}", headers=plant.crew.supervisor,
                                     json={"quantity": 1.5})
    assert patched.status_code == 200
