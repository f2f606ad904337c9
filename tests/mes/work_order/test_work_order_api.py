"""The work order service through HTTP: planning from the routing, the B2MML states, operations in
enforced order, quantities, schedules, the dispatch list, work instructions, variance - and roles."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import select

M, R, W = "/api/material", "/api/resource", "/api/work-order"


async def published(system, prefix: str = "mes.work_order.") -> list[tuple[str, dict]]:
    runtime = system.runtime("work_order")
    table = runtime.tables.outbox
    async with runtime.database.engine.connect() as conn:
        rows = (await conn.execute(select(table).order_by(table.c.id))).all()
    return [(r.type, orjson.loads(r.data)) for r in rows if r.type.startswith(prefix)]


async def test_an_order_copies_part_site_and_creator_and_plans_from_the_routing(plant):
    order = await plant.order(quantity=4)
    assert (order["partNumber"], order["siteName"], order["status"]) == ("P-100", "Plant 1", "Forecast")
    assert order["createdByName"] == "Supervisor Tester" and order["createdByActive"] is True
    assert order["workOrderNumber"].startswith("WO-")
    released = await plant.ok("POST", f"{W}/work-orders/{order['id']}/release", plant.crew.supervisor, json={})
    steps = [(o["sequence"], o["code"], o["status"], o["plannedSetupMinutes"], o["plannedRunMinutes"])
             for o in released["operations"]]
    assert steps == [(10, "OP10", "Pending", 30, 40), (20, "OP20", "Pending", 0, 8), (30, "OP30", "Pending", 5, 80)]
    assert released["status"] == "Released" and released["routingId"] == plant.routing["id"]
    again = await plant.http.post(f"{W}/work-orders/{order['id']}/release", headers=plant.crew.supervisor, json={})
    assert again.status_code == 409 and "only a Forecast order" in again.json()["detail"]


async def test_release_without_a_routing_names_the_fix(plant):
    other = await plant.ok("POST", f"{M}/parts", plant.crew.engineer, json={"partNumber": "P-200", "name": "Pin"})
    await plant.api.system.drain()
    order = await plant.ok("POST", f"{W}/work-orders", plant.crew.supervisor, json={"partId": other["id"],
                                                                                    "quantity": 1})
    refused = await plant.http.post(f"{W}/work-orders/{order['id']}/release", headers=plant.crew.supervisor, json={})
    assert refused.status_code == 409 and "no released routing for part P-200" in refused.json()["detail"]
    assert "its product must name the part" in refused.json()["detail"]


async def test_roles(plant):
    order = await plant.order()
    http, crew = plant.http, plant.crew
    assert (await http.post(f"{W}/work-orders", headers=crew.operator,
                            json={"partId": plant.part["id"], "quantity": 1})).status_code == 403
    refused = await http.post(f"{W}/work-orders/{order['id']}/release", headers=crew.operator, json={})
    assert refused.status_code == 403 and "supervisor" in refused.json()["detail"]
    assert (await http.get(f"{W}/work-orders/{order['id']}", headers=crew.viewer)).status_code == 200
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/release", crew.supervisor, json={})
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/dispatch", crew.supervisor, json={})
    assert (await plant.step(order, 10, "start", crew.viewer)).status_code == 403
    assert (await http.get(f"{W}/work-orders", headers={})).status_code == 401


async def test_operations_run_in_routing_order(plant):
    order = await plant.released(quantity=4)
    early = await plant.step(order, 20, "start")
    assert early.status_code == 409
    assert "operation 20 (OP20) cannot start before operation 10 (OP10) has completed" in early.json()["detail"]
    assert (await plant.step(order, 10, "start")).status_code == 200
    now = await plant.ok("GET", f"{W}/work-orders/{order['id']}", plant.crew.viewer)
    assert now["status"] == "Running" and now["actualStart"] is not None
    assert (await plant.step(order, 10, "start")).status_code == 409  # already running
    done = await plant.step(order, 10, "complete", quantityGood=4)
    assert done.status_code == 200 and done.json()["status"] == "Completed"
    assert (await plant.step(order, 20, "start")).status_code == 200


async def test_with_overlap_a_later_operation_may_start_but_never_complete_first(plant):
    order = await plant.released(quantity=4, allowOverlap=True)
    assert (await plant.step(order, 20, "start")).status_code == 409  # 10 has not even started
    assert (await plant.step(order, 10, "start")).status_code == 200
    assert (await plant.step(order, 20, "start")).status_code == 200  # overlap: 10 is running
    assert (await plant.step(order, 10, "report", quantityGood=2)).status_code == 200
    early = await plant.step(order, 20, "complete", quantityGood=2)
    assert early.status_code == 409
    assert "cannot complete before operation 10 (OP10) has completed" in early.json()["detail"]
    assert (await plant.step(order, 10, "complete", quantityGood=2)).status_code == 200
    assert (await plant.step(order, 20, "complete", quantityGood=4)).status_code == 200


async def test_quantities_flow_down_the_routing_and_complete_the_order(plant):
    order = await plant.released(quantity=4)
    await plant.step(order, 10, "start")
    too_many = await plant.step(order, 10, "complete", quantityGood=4, quantityScrap=1, scrapReason="porosity")
    assert too_many.status_code == 409 and "was given 4" in too_many.json()["detail"]
    no_reason = await plant.step(order, 10, "complete", quantityGood=3, quantityScrap=1)
    assert no_reason.status_code == 422
    assert (await plant.step(order, 10, "complete", quantityGood=3, quantityScrap=1,
                             scrapReason="porosity")).status_code == 200
    await plant.step(order, 20, "start")
    assert (await plant.step(order, 20, "complete", quantityGood=4)).status_code == 409  # only 3 came in
    await plant.step(order, 20, "complete", quantityGood=3)
    await plant.step(order, 30, "start")
    await plant.step(order, 30, "pause")
    assert (await plant.step(order, 30, "complete", quantityGood=3)).status_code == 409  # paused
    await plant.step(order, 30, "resume")
    await plant.step(order, 30, "complete", quantityGood=2, quantityScrap=1, scrapReason="bore out of tolerance")
    final = await plant.ok("GET", f"{W}/work-orders/{order['id']}", plant.crew.viewer)
    assert (final["status"], final["quantityGood"], final["quantityScrap"], final["quantityProduced"]) == (
        "Completed", 2, 2, 3)
    events = await published(plant.api.system)
    completed = [d for t, d in events if t.endswith(".completed")]
    assert len(completed) == 1 and completed[0]["quantityGood"] == 2 and completed[0]["actualEnd"]
    moves = [(d["previousStatus"], d["newStatus"]) for t, d in events
             if t.endswith("status_changed") and d["workOrderId"] == order["id"]]
    assert moves == [("Forecast", "Released"), ("Released", "Ready"), ("Ready", "Running"), ("Running", "Completed")]
    variance = await plant.ok("GET", f"{W}/work-orders/{order['id']}/variance", plant.crew.viewer)
    assert (variance["plannedQuantity"], variance["quantityGood"], variance["quantityVariance"]) == (4, 2, -2)
    assert variance["yieldPercent"] == 50.0 and variance["plannedMinutes"] == 163
    closed = await plant.ok("POST", f"{W}/work-orders/{order['id']}/close", plant.crew.supervisor)
    assert closed["status"] == "Closed" and closed["closedAt"]
    assert (await plant.step(order, 30, "start")).status_code == 409


async def test_hold_pauses_running_operations_and_unhold_returns(plant):
    order = await plant.released()
    await plant.step(order, 10, "start")
    held = await plant.ok("POST", f"{W}/work-orders/{order['id']}/hold", plant.crew.supervisor,
                          json={"reason": "quality hold: NCR-7"})
    assert (held["status"], held["statusReason"]) == ("Held", "quality hold: NCR-7")
    detail = await plant.ok("GET", f"{W}/work-orders/{order['id']}", plant.crew.viewer)
    assert detail["operations"][0]["status"] == "Paused"
    assert (await plant.step(order, 10, "resume")).status_code == 409  # the order is held
    cancel = await plant.http.post(f"{W}/work-orders/{order['id']}/cancel", headers=plant.crew.supervisor,
                                   json={"reason": "x"})
    assert cancel.status_code == 409 and "it can become: Running" in cancel.json()["detail"]
    back = await plant.ok("POST", f"{W}/work-orders/{order['id']}/unhold", plant.crew.supervisor)
    assert back["status"] == "Running"
    assert (await plant.step(order, 10, "resume")).status_code == 200
    abort = await plant.ok("POST", f"{W}/work-orders/{order['id']}/abort", plant.crew.supervisor,
                           json={"reason": "customer cancelled"})
    assert abort["status"] == "Aborted"


async def test_a_running_order_cannot_be_cancelled_and_a_forecast_one_can(plant):
    order = await plant.order()
    patched = await plant.ok("PATCH", f"{W}/work-orders/{order['id']}", plant.crew.supervisor, json={"quantity": 7})
    assert patched["quantity"] == 7
    cancelled = await plant.ok("POST", f"{W}/work-orders/{order['id']}/cancel", plant.crew.supervisor,
                               json={"reason": "duplicate"})
    assert cancelled["status"] == "Cancelled"
    running = await plant.released()
    await plant.step(running, 10, "start")
    assert (await plant.http.patch(f"{W}/work-orders/{running['id']}", headers=plant.crew.supervisor,
                                   json={"quantity": 9})).status_code == 409
    assert (await plant.http.post(f"{W}/work-orders/{running['id']}/cancel", headers=plant.crew.supervisor,
                                  json={"reason": "x"})).status_code == 409


async def test_a_schedule_releases_all_its_orders_or_none(plant):
    start = datetime.now(timezone.utc).replace(microsecond=0)
    first, second = await plant.order(), await plant.order()
    window = {"startsAt": start.isoformat(), "endsAt": (start + timedelta(days=1)).isoformat()}

    def slot(order, hours):
        return {"workOrderId": order["id"], "scheduledStart": (start + timedelta(hours=hours)).isoformat(),
                "scheduledEnd": (start + timedelta(hours=hours + 2)).isoformat()}

    outside = await plant.http.post(f"{W}/schedules", headers=plant.crew.supervisor, json={
        "scheduleNumber": "S-0", **window, "workOrders": [slot(first, 30)]})
    assert outside.status_code == 422
    schedule = await plant.ok("POST", f"{W}/schedules", plant.crew.supervisor, json={
        "scheduleNumber": "S-1", "siteId": plant.site["id"], **window,
        "workOrders": [slot(second, 4), slot(first, 1)]})
    assert [o["id"] for o in schedule["workOrders"]] == [first["id"], second["id"]]  # by planned start
    pin = await plant.ok("POST", f"{M}/parts", plant.crew.engineer, json={"partNumber": "P-300", "name": "Pin"})
    await plant.api.system.drain()
    orphan = await plant.ok("POST", f"{W}/work-orders", plant.crew.supervisor,
                            json={"partId": pin["id"], "quantity": 1})
    bad = await plant.ok("POST", f"{W}/schedules", plant.crew.supervisor, json={
        "scheduleNumber": "S-2", **window, "workOrders": [slot(await plant.order(), 1), slot(orphan, 2)]})
    failed = await plant.http.post(f"{W}/schedules/{bad['id']}/publish", headers=plant.crew.supervisor)
    assert failed.status_code == 409 and "P-300" in failed.json()["detail"]
    untouched = await plant.ok("GET", f"{W}/schedules/{bad['id']}", plant.crew.viewer)
    assert untouched["state"] == "Forecast" and {o["status"] for o in untouched["workOrders"]} == {"Forecast"}
    published_ = await plant.ok("POST", f"{W}/schedules/{schedule['id']}/publish", plant.crew.supervisor)
    assert published_["state"] == "Released" and {o["status"] for o in published_["workOrders"]} == {"Released"}


async def test_dispatch_list_orders_by_urgency_and_names_work_centers_through_the_cache(plant):
    late = await plant.released(priority=900)
    urgent = await plant.released(priority=10)
    await plant.released(dispatch=False)  # Released, not on the floor yet
    center = plant.centers[0]["id"]
    rows = (await plant.ok("GET", f"{W}/dispatch-list?workCenterId={center}", plant.crew.viewer))["items"]
    assert [(r["workOrderNumber"], r["sequence"]) for r in rows] == [
        (urgent["workOrderNumber"], 10), (late["workOrderNumber"], 10)]
    assert rows[0]["workCenterName"] == "CNC line 1" and rows[0]["plannedMinutes"] == 70
    await plant.step(urgent, 10, "start")
    await plant.step(urgent, 10, "complete", quantityGood=4)
    rows = (await plant.ok("GET", f"{W}/dispatch-list?workCenterId={center}", plant.crew.viewer))["items"]
    assert [(r["workOrderNumber"], r["sequence"]) for r in rows][0] == (urgent["workOrderNumber"], 20)
    renamed = await plant.http.patch(f"{R}/work-centers/{center}", headers=plant.crew.engineer,
                                     json={"name": "5-axis CNC line 1"})
    assert renamed.status_code == 200
    await plant.api.system.drain()  # the event invalidates the cached name
    rows = (await plant.ok("GET", f"{W}/dispatch-list?workCenterId={center}", plant.crew.viewer))["items"]
    assert {r["workCenterName"] for r in rows} == {"5-axis CNC line 1"}


async def test_work_instructions_are_versioned_and_orders_keep_theirs(plant):
    eng, part = plant.crew.engineer, plant.part
    v1 = await plant.ok("POST", f"{W}/work-instructions", eng, json={"partId": part["id"], "operationCode": "OP10",
                                                                     "title": "Machine the strut", "body": "1. ..."})
    assert (v1["revision"], v1["status"]) == (1, "draft")
    assert (await plant.http.post(f"{W}/work-instructions", headers=plant.crew.operator, json={
        "partId": part["id"], "operationCode": "OP10", "title": "x", "body": "y"})).status_code == 403
    unknown = await plant.http.post(f"{W}/work-instructions", headers=eng, json={
        "partId": "00000000-0000-4000-8000-000000000001", "operationCode": "OP10", "title": "x", "body": "y"})
    assert unknown.status_code == 422 and "unknown to work_order" in unknown.json()["detail"]
    await plant.ok("POST", f"{W}/work-instructions/{v1['id']}/release", eng)
    frozen = await plant.http.patch(f"{W}/work-instructions/{v1['id']}", headers=eng, json={"body": "changed"})
    assert frozen.status_code == 409
    first = await plant.released()
    assert (first["operations"][0]["instructionId"], first["operations"][0]["instructionRevision"]) == (v1["id"], 1)
    v2 = await plant.ok("POST", f"{W}/work-instructions", eng, json={"partId": part["id"], "operationCode": "OP10",
                                                                     "title": "Machine the strut", "body": "2. ..."})
    await plant.ok("POST", f"{W}/work-instructions/{v2['id']}/release", eng)
    versions = (await plant.ok("GET", f"{W}/work-instructions?partId={part['id']}&operationCode=OP10",
                              plant.crew.viewer))["items"]
    assert [(v["revision"], v["status"]) for v in versions] == [(1, "superseded"), (2, "released")]
    second = await plant.released()
    assert second["operations"][0]["instructionRevision"] == 2
    kept = await plant.ok("GET", f"{W}/work-orders/{first['id']}", plant.crew.viewer)
    assert kept["operations"][0]["instructionRevision"] == 1
