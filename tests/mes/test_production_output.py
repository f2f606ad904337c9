"""Production output and corrections, through HTTP only, on SQLite files and on PostgreSQL.

Completing an order with good quantity puts a finished lot into material's inventory, linked to
every lot issued into the order; a serial-tracked order mints exactly its quantity of serials and
completes them with it; finished material ships to a customer and comes back as a quarantined
return; a consumption is reversed into its lot (and off work_order's actuals); a production report
is corrected by a counter-entry, and the order's totals and the finished lot follow.
"""
from __future__ import annotations

import pytest
from mes_helpers import Plant, make_crew, postgres_env, running_mes

M, W = "/api/material", "/api/work-order"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def plant(request, mes_env, pg_database):
    env = await postgres_env(mes_env, pg_database) if request.param == "postgres" else mes_env
    async with running_mes(env) as api:
        crew = await make_crew(api)
        plant = await Plant(api, crew).build()
        plant.fg = await plant.ok("POST", f"{M}/locations", crew.engineer,
                                  json={"code": "FG-1", "name": "Finished goods", "kind": "finished_goods"})
        yield plant


async def _issue(plant: Plant, order: dict, lot: dict, quantity: float, op: str) -> dict:
    return await plant.ok("POST", f"{M}/consumptions", plant.crew.operator, json={
        "lotId": lot["id"], "workOrderId": order["id"], "quantity": quantity, "operationCode": op})


async def _run(plant: Plant, order: dict, good: float, *, last_report: float = 0, scrap_first: float = 0) -> None:
    """Every operation in order; the first scraps ``scrap_first``; the last reports ``last_report``
    before it completes with the rest."""
    assert (await plant.step(order, 10, "start")).status_code == 200
    body = {"quantityGood": good} | ({"quantityScrap": scrap_first, "scrapReason": "porosity"}
                                          if scrap_first else {})
    assert (response := await plant.step(order, 10, "complete", **body)).status_code == 200, response.text
    assert (await plant.step(order, 20, "start")).status_code == 200
    assert (await plant.step(order, 20, "complete", quantityGood=good)).status_code == 200
    assert (await plant.step(order, 30, "start")).status_code == 200
    if last_report:
        assert (await plant.step(order, 30, "report", quantityGood=last_report)).status_code == 200
    assert (response := await plant.step(order, 30, "complete", quantityGood=good - last_report)).status_code == 200, \
        response.text
    await plant.api.system.drain()


async def _finished_lots(plant: Plant, order: dict) -> list[dict]:
    receipts = (await plant.ok("GET", f"{M}/production-receipts?workOrderId={order['id']}", plant.crew.viewer))["items"]
    ids = list(dict.fromkeys(r["lotId"] for r in receipts))
    return [await plant.ok("GET", f"{M}/lots/{lot_id}", plant.crew.viewer) for lot_id in ids]


async def test_a_completed_order_puts_a_finished_lot_into_inventory_linked_to_every_consumed_lot(plant):
    crew = plant.crew
    order = await plant.released(quantity=4)
    forging = await plant.lot(plant.components[0], 5, supplier="Ladish")
    bushings = [await plant.lot(plant.components[1], 5), await plant.lot(plant.components[1], 5)]
    await _issue(plant, order, forging, 4, "OP10")
    await _issue(plant, order, bushings[0], 5, "OP30")
    await _issue(plant, order, bushings[1], 3, "OP30")
    await plant.api.system.drain()
    await _run(plant, order, 4, last_report=1)

    [lot] = await _finished_lots(plant, order)
    assert (lot["partId"], lot["quantity"], lot["origin"], lot["status"]) == (
        plant.part["id"], 4, "produced", "released")
    assert lot["locationId"] == plant.fg["id"] and lot["lotNumber"] == f"FG-{order['workOrderNumber']}"
    receipts = (await plant.ok("GET", f"{M}/production-receipts?workOrderId={order['id']}", crew.viewer))["items"]
    assert sorted(r["quantity"] for r in receipts) == [1, 3]  # the report, then the completion
    on_hand = (await plant.ok("GET", f"{M}/lots?partId={plant.part['id']}&status=released", crew.viewer))["items"]
    assert [x["id"] for x in on_hand] == [lot["id"]]

    genealogy = await plant.ok("GET", f"{M}/lots/{lot['id']}/genealogy", crew.viewer)
    edges = {(e["parentLotId"], e["quantity"], e["operationCode"], e["workOrderId"]) for e in genealogy["parents"]}
    assert edges == {(forging["id"], 4, "OP10", order["id"]), (bushings[0]["id"], 5, "OP30", order["id"]),
                     (bushings[1]["id"], 3, "OP30", order["id"])}
    down = await plant.ok("GET", f"{M}/lots/{forging['id']}/genealogy", crew.viewer)
    assert [e["childLotId"] for e in down["children"]] == [lot["id"]]

    # -- ship to a customer, and take part of it back ----------------------------------------------------------
    shipment = await plant.ok("POST", f"{M}/shipments", crew.operator, json={
        "customer": "Boeing Wichita", "customerOrder": "PO-7781", "lines": [{"lotId": lot["id"], "quantity": 3}]})
    assert shipment["shipmentNumber"].startswith("SH-") and shipment["lines"][0]["quantity"] == 3
    assert (await plant.ok("GET", f"{M}/lots/{lot['id']}", crew.viewer))["quantity"] == 1
    too_much = await plant.http.post(f"{M}/shipments", headers=crew.operator, json={
        "customer": "Boeing Wichita", "lines": [{"lotId": lot["id"], "quantity": 2}]})
    assert too_much.status_code == 409
    returned = await plant.ok("POST", f"{M}/returns", crew.operator, json={
        "shipmentId": shipment["id"], "reason": "damaged in transit", "lines": [{"lotId": lot["id"], "quantity": 1}]})
    back = await plant.ok("GET", f"{M}/lots/{returned['lines'][0]['lotId']}", crew.viewer)
    assert (back["status"], back["origin"], back["parentLotId"], back["quantity"]) == (
        "quarantine", "returned", lot["id"], 1)
    over = await plant.http.post(f"{M}/returns", headers=crew.operator, json={
        "shipmentId": shipment["id"], "reason": "again", "lines": [{"lotId": lot["id"], "quantity": 3}]})
    assert over.status_code == 409, over.text  # 2 shipped units are not back yet
    children = (await plant.ok("GET", f"{M}/lots/{lot['id']}/genealogy", crew.viewer))["children"]
    assert [(c["childLotId"], c["relation"]) for c in children] == [(back["id"], "returned")]
    shipments = (await plant.ok("GET", f"{M}/shipments", crew.viewer))["items"]
    assert [s["customer"] for s in shipments] == ["Boeing Wichita"]


async def test_a_serial_tracked_order_mints_exactly_its_quantity_and_completes_them_with_it(plant):
    crew = plant.crew
    await plant.ok("PATCH", f"{M}/parts/{plant.part['id']}", crew.engineer, json={"tracking": "serial"})
    order = await plant.released(quantity=3)
    started = await plant.ok("POST", f"{M}/serials", crew.operator, json={
        "partId": plant.part["id"], "count": 2, "workOrderId": order["id"]})
    assert len(started) == 2
    refused = await plant.http.post(f"{M}/serials", headers=crew.operator, json={
        "partId": plant.part["id"], "count": 2, "workOrderId": order["id"]})
    assert refused.status_code == 409, refused.text  # 2 + 2 > 3
    await plant.ok("POST", f"{M}/serials", crew.operator, json={
        "partId": plant.part["id"], "count": 1, "workOrderId": order["id"]})
    forging = await plant.lot(plant.components[0], 5)
    await _issue(plant, order, forging, 3, "OP10")
    await _run(plant, order, 2, scrap_first=1)

    serials = (await plant.ok("GET", f"{M}/serials?workOrderId={order['id']}", crew.viewer))["items"]
    [lot] = await _finished_lots(plant, order)
    assert len(serials) == 3 and lot["quantity"] == 2
    assert sorted(s["status"] for s in serials) == ["completed", "completed", "scrapped"]
    assert {s["lotId"] for s in serials if s["status"] == "completed"} == {lot["id"]}
    assert not [s for s in serials if s["status"] == "in_process"]  # none stays in process after close
    assert (await plant.http.post(f"{W}/work-orders/{order['id']}/close", headers=crew.supervisor)).status_code == 200
    more = await plant.http.post(f"{M}/serials", headers=crew.operator, json={
        "partId": plant.part["id"], "count": 1, "workOrderId": order["id"]})
    assert more.status_code == 409

    done = [s for s in serials if s["status"] == "completed"]
    shipment = await plant.ok("POST", f"{M}/shipments", crew.operator, json={
        "customer": "Airbus", "lines": [{"lotId": lot["id"], "serialIds": [s["id"] for s in done]}]})
    assert sorted(line["serialId"] for line in shipment["lines"]) == sorted(s["id"] for s in done)
    assert (await plant.ok("GET", f"{M}/lots/{lot['id']}", crew.viewer))["status"] == "shipped"
    returned = await plant.ok("POST", f"{M}/returns", crew.operator, json={
        "shipmentId": shipment["id"], "reason": "field failure", "lines": [{"lotId": lot["id"],
                                                                           "serialIds": [done[0]["id"]]}]})
    unit = await plant.ok("GET", f"{M}/serials/{done[0]['id']}", crew.viewer)
    assert (unit["status"], unit["lotId"]) == ("returned", returned["lines"][0]["lotId"])
    assert (await plant.ok("GET", f"{M}/serials/{done[1]['id']}", crew.viewer))["status"] == "shipped"


async def test_a_reversed_consumption_goes_back_to_its_lot_and_off_the_orders_actuals(plant):
    crew = plant.crew
    order = await plant.released(quantity=4)
    forging = await plant.lot(plant.components[0], 4)
    issue = await _issue(plant, order, forging, 4, "OP10")
    await plant.api.system.drain()
    assert (await plant.ok("GET", f"{M}/lots/{forging['id']}", crew.viewer))["status"] == "consumed"
    no_reason = await plant.http.post(f"{M}/consumptions/{issue['id']}/reverse", headers=crew.operator, json={})
    assert no_reason.status_code == 422
    await plant.ok("POST", f"{M}/consumptions/{issue['id']}/reverse", crew.operator,
                   json={"reason": "wrong lot scanned", "quantity": 1})
    lot = await plant.ok("GET", f"{M}/lots/{forging['id']}", crew.viewer)
    assert (lot["quantity"], lot["status"]) == (1, "released")
    await plant.api.system.drain()
    variance = await plant.ok("GET", f"{W}/work-orders/{order['id']}/variance", crew.viewer)
    assert [(m["partNumber"], m["quantity"]) for m in variance["material"] if m["quantity"]] == [("C-1", 3)]
    too_much = await plant.http.post(f"{M}/consumptions/{issue['id']}/reverse", headers=crew.operator,
                                     json={"reason": "again", "quantity": 4})
    assert too_much.status_code == 409
    await plant.ok("POST", f"{M}/consumptions/{issue['id']}/reverse", crew.operator,
                   json={"reason": "order re-planned"})
    assert (await plant.ok("GET", f"{M}/lots/{forging['id']}", crew.viewer))["quantity"] == 4
    again = await plant.http.post(f"{M}/consumptions/{issue['id']}/reverse", headers=crew.operator,
                                  json={"reason": "twice"})
    assert again.status_code == 409
    reversals = (await plant.ok("GET", f"{M}/consumption-reversals?consumptionId={issue['id']}", crew.viewer))["items"]
    assert [(r["quantity"], r["reason"]) for r in reversals] == [(1, "wrong lot scanned"), (3, "order re-planned")]
    await plant.api.system.drain()
    variance = await plant.ok("GET", f"{W}/work-orders/{order['id']}/variance", crew.viewer)
    assert all(m["quantity"] == 0 for m in variance["material"])


async def test_a_reversed_issue_leaves_the_finished_lots_genealogy(plant):
    crew = plant.crew
    order = await plant.released(quantity=2)
    forging = await plant.lot(plant.components[0], 5)
    await _issue(plant, order, forging, 2, "OP10")
    await plant.api.system.drain()
    await _run(plant, order, 2)
    [lot] = await _finished_lots(plant, order)
    order_detail = await plant.ok("GET", f"{W}/work-orders/{order['id']}", crew.viewer)
    assert order_detail["status"] == "Completed"
    parents = (await plant.ok("GET", f"{M}/lots/{lot['id']}/genealogy", crew.viewer))["parents"]
    assert [p["parentLotId"] for p in parents] == [forging["id"]]
    [issue] = (await plant.ok("GET", f"{M}/consumptions?lotId={forging['id']}", crew.viewer))["items"]
    await plant.ok("POST", f"{M}/consumptions/{issue['id']}/reverse", crew.operator, json={"reason": "mis-booked"})
    assert (await plant.ok("GET", f"{M}/lots/{lot['id']}/genealogy", crew.viewer))["parents"] == []


async def test_a_production_report_is_corrected_by_a_counter_entry(plant):
    crew = plant.crew
    order = await plant.released(quantity=4)
    await _run(plant, order, 4)
    reports = (await plant.ok("GET", f"{W}/work-orders/{order['id']}/reports", crew.viewer))["items"]
    detail = await plant.ok("GET", f"{W}/work-orders/{order['id']}", crew.viewer)
    last_op = detail["operations"][-1]["id"]
    [last] = [r for r in reports if r["operationId"] == last_op]
    first = next(r for r in reports if r["operationId"] == detail["operations"][0]["id"])

    blocked = await plant.http.post(f"{W}/work-orders/{order['id']}/reports/{first['id']}/counter-entry",
                                    headers=crew.supervisor, json={"reason": "miscounted", "quantityGood": 1})
    assert blocked.status_code == 409, blocked.text  # operation 20 already used those units
    needs_reason = await plant.http.post(f"{W}/work-orders/{order['id']}/reports/{last['id']}/counter-entry",
                                         headers=crew.supervisor, json={"quantityGood": 1})
    assert needs_reason.status_code == 422
    counter = await plant.ok("POST", f"{W}/work-orders/{order['id']}/reports/{last['id']}/counter-entry",
                             crew.supervisor, json={"reason": "one unit counted twice", "quantityGood": 1})
    assert (counter["quantityGood"], counter["correctsReportId"]) == (-1, last["id"])
    over = await plant.http.post(f"{W}/work-orders/{order['id']}/reports/{last['id']}/counter-entry",
                                 headers=crew.supervisor, json={"reason": "again", "quantityGood": 4})
    assert over.status_code == 409
    corrected = await plant.ok("GET", f"{W}/work-orders/{order['id']}", crew.viewer)
    assert (corrected["quantityGood"], corrected["operations"][-1]["quantityGood"]) == (3, 3)
    reports = (await plant.ok("GET", f"{W}/work-orders/{order['id']}/reports", crew.viewer))["items"]
    assert last in reports and len(reports) == 4  # history is kept: the original and its counter-entry
    await plant.api.system.drain()
    [lot] = await _finished_lots(plant, order)
    assert (lot["quantity"], lot["initialQuantity"]) == (3, 3)
    receipts = (await plant.ok("GET", f"{M}/production-receipts?workOrderId={order['id']}", crew.viewer))["items"]
    assert [(r["quantity"], r["correctsReportId"]) for r in receipts] == [(4, None), (-1, last["id"])]


async def test_production_mints_the_serials_an_order_did_not_start(plant):
    await plant.ok("PATCH", f"{M}/parts/{plant.part['id']}", plant.crew.engineer, json={"tracking": "serial"})
    order = await plant.released(quantity=2)
    await _run(plant, order, 2, last_report=1)
    serials = (await plant.ok("GET", f"{M}/serials?workOrderId={order['id']}", plant.crew.viewer))["items"]
    [lot] = await _finished_lots(plant, order)
    assert [(s["status"], s["lotId"]) for s in serials] == [("completed", lot["id"])] * 2
