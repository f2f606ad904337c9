"""The shop-floor scenario as one story, through HTTP only, on SQLite files and on PostgreSQL.

Three supplier lots arrive: a steel heat (forgings, quarantined for incoming inspection and then
released by quality) and two bushing lots. One bushing lot is split, the piece is merged with the
other lot, and the heat and the merged lot are issued into an order for three units of a
serial-tracked strut. The order runs to completion, so material mints the units into a finished
lot; two units ship to a customer and one comes back. Then traceability must answer what a recall
asks: every finished unit traces back to every supplier lot, every supplier lot traces forward to
every unit shipped from it, and the recall of a supplier lot names the customer shipment.
"""
from __future__ import annotations

import pytest
from mes_helpers import M, Plant, W, make_crew, postgres_env, running_mes

T = "/api/traceability"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def plant(request, mes_env, pg_database):
    env = await postgres_env(mes_env, pg_database) if request.param == "postgres" else mes_env
    async with running_mes(env) as api:
        plant = await Plant(api, await make_crew(api)).build()
        plant.fg = await plant.ok("POST", f"{M}/locations", plant.crew.engineer,
                                  json={"code": "FG-1", "name": "Finished goods", "kind": "finished_goods"})
        yield plant


async def _trace(plant: Plant, kind: str, ref: str, direction: str) -> dict:
    return await plant.ok("GET", f"{T}/{kind}/{ref}/genealogy", plant.crew.viewer, params={"direction": direction})


def _numbers(trace: dict, kind: str) -> set[str]:
    return {n["number"] for n in trace["nodes"] if n["kind"] == kind}


async def test_receive_disposition_split_merge_issue_produce_ship_then_trace_both_ways(plant):
    crew, (forging, bushing) = plant.crew, plant.components
    await plant.ok("PATCH", f"{M}/parts/{plant.part['id']}", crew.engineer, json={"tracking": "serial"})

    # -- receive and disposition -----------------------------------------------------------------------------
    heat = await plant.ok("POST", f"{M}/lots", crew.operator, json={
        "partId": forging["id"], "quantity": 5, "lotNumber": "HEAT-4471", "supplier": "Ladish Forging",
        "supplierLotNumber": "H4471", "quarantine": True})
    assert heat["status"] == "quarantine"
    order = await plant.released(quantity=3)
    early = await plant.http.post(f"{M}/consumptions", headers=crew.operator, json={
        "lotId": heat["id"], "workOrderId": order["id"], "quantity": 3, "operationCode": "OP10"})
    assert early.status_code == 409, early.text  # quarantined stock is not issued
    heat = await plant.ok("POST", f"{M}/lots/{heat['id']}/status", crew.quality, json={"status": "released"})
    assert heat["status"] == "released"
    drum_a = await plant.ok("POST", f"{M}/lots", crew.operator, json={
        "partId": bushing["id"], "quantity": 20, "lotNumber": "BSH-A", "supplier": "Bearing Supply Co"})
    drum_b = await plant.ok("POST", f"{M}/lots", crew.operator, json={
        "partId": bushing["id"], "quantity": 4, "lotNumber": "BSH-B", "supplier": "Ampco Metal"})
    assert (drum_a["status"], drum_b["status"]) == ("received", "received")
    by_operator = await plant.http.post(f"{M}/lots/{drum_a['id']}/status", headers=crew.operator,
                                        json={"status": "released"})
    assert by_operator.status_code == 403  # a disposition is quality's
    await plant.ok("POST", f"{M}/lots/{drum_a['id']}/status", crew.quality,
                   json={"status": "quarantine", "reason": "CoC missing"})
    for lot in (drum_a, drum_b):
        assert (await plant.ok("POST", f"{M}/lots/{lot['id']}/status", crew.quality,
                               json={"status": "released"}))["status"] == "released"

    # -- split, merge -----------------------------------------------------------------------------------------
    piece = (await plant.ok("POST", f"{M}/lots/{drum_a['id']}/split", crew.operator, json={"quantity": 4}))["child"]
    merged = await plant.ok("POST", f"{M}/lots/merge", crew.operator, json={
        "lotIds": [piece["id"], drum_b["id"]], "lotNumber": "BSH-M1"})
    assert (merged["quantity"], merged["origin"]) == (8, "merge")
    parents = (await plant.ok("GET", f"{M}/lots/{merged['id']}/parents", crew.viewer))["items"]
    assert {(p["lotNumber"], p["link"], p["linkQuantity"]) for p in parents} == {("BSH-A-01", "merge", 4),
                                                                                  ("BSH-B", "merge", 4)}

    # -- issue, produce ---------------------------------------------------------------------------------------
    for lot, quantity, op in ((heat, 3, "OP10"), (merged, 6, "OP30")):
        await plant.ok("POST", f"{M}/consumptions", crew.operator, json={
            "lotId": lot["id"], "workOrderId": order["id"], "quantity": quantity, "operationCode": op})
    await plant.api.system.drain()
    for sequence in (10, 20, 30):
        assert (response := await plant.step(order, sequence, "start")).status_code == 200, response.text
        assert (response := await plant.step(order, sequence, "complete", quantityGood=3)).status_code == 200, \
            response.text
    await plant.api.system.drain()
    assert (await plant.ok("GET", f"{W}/work-orders/{order['id']}", crew.viewer))["status"] == "Completed"
    [finished] = (await plant.ok("GET", f"{M}/lots", crew.viewer,
                                 params={"lotNumber": f"FG-{order['workOrderNumber']}"}))["items"]
    assert (finished["quantity"], finished["origin"], finished["locationId"]) == (3, "produced", plant.fg["id"])
    units = (await plant.ok("GET", f"{M}/serials", crew.viewer, params={"workOrderId": order["id"]}))["items"]
    assert len(units) == 3 and {(u["status"], u["lotId"]) for u in units} == {("completed", finished["id"])}

    # -- ship two units, one comes back -----------------------------------------------------------------------
    shipped = units[:2]
    shipment = await plant.ok("POST", f"{M}/shipments", crew.operator, json={
        "customer": "Boeing Wichita", "customerOrder": "PO-7781",
        "lines": [{"lotId": finished["id"], "serialIds": [u["id"] for u in shipped]}]})
    returned = await plant.ok("POST", f"{M}/returns", crew.operator, json={
        "shipmentId": shipment["id"], "reason": "gland leak at acceptance test",
        "lines": [{"lotId": finished["id"], "serialIds": [shipped[0]["id"]]}]})
    await plant.api.system.drain()

    # -- trace: every finished unit back to every supplier lot ------------------------------------------------
    supplier_lots = {heat["lotNumber"], drum_a["lotNumber"], drum_b["lotNumber"]}
    for unit in units:
        back = await _trace(plant, "serials", unit["id"], "backward")
        assert supplier_lots <= _numbers(back, "lot"), (unit["processSerial"], _numbers(back, "lot"))
        assert {piece["lotNumber"], merged["lotNumber"], finished["lotNumber"]} <= _numbers(back, "lot")
        received = {n["number"] for n in back["nodes"] if n["origin"] == "received"}
        assert received == supplier_lots
    suppliers = {n["number"]: n["supplier"] for n in back["nodes"] if n["number"] in supplier_lots}
    assert suppliers == {"HEAT-4471": "Ladish Forging", "BSH-A": "Bearing Supply Co", "BSH-B": "Ampco Metal"}

    # -- and every supplier lot forward to every unit shipped from it -----------------------------------------
    shipped_numbers = {u["processSerial"] for u in shipped}
    for lot in (heat, drum_a, drum_b):
        forward = await _trace(plant, "lots", lot["lotNumber"], "forward")
        assert shipped_numbers <= _numbers(forward, "serial"), (lot["lotNumber"], _numbers(forward, "serial"))
        assert shipment["shipmentNumber"] in _numbers(forward, "shipment")
        check = await plant.ok("GET", f"{T}/lots/{lot['id']}/upstream-of/serials/{shipped[1]['id']}", crew.viewer)
        assert check["upstream"] is True and check["path"][0]["number"] == lot["lotNumber"]

    # -- the recall of a supplier lot reaches the customer ----------------------------------------------------
    recall = await plant.ok("GET", f"{T}/lots/{drum_b['lotNumber']}/recall", crew.viewer)
    assert recall["serials"] == 3
    assert [(s["shipmentNumber"], s["customer"], s["serials"]) for s in recall["byShipment"]] == [
        (shipment["shipmentNumber"], "Boeing Wichita", 2)]
    assert [c["customer"] for c in recall["byCustomer"]] == ["Boeing Wichita"]
    assert [w["workOrderNumber"] for w in recall["byWorkOrder"]] == [order["workOrderNumber"]]
    after = await _trace(plant, "shipments", shipment["shipmentNumber"], "forward")
    assert shipped[0]["processSerial"] in _numbers(after, "serial")  # the return reached traceability
    assert returned["lines"][0]["lotId"] in {n["id"] for n in after["nodes"]}
    picture = await plant.http.get(f"{T}/serials/{units[0]['id']}/genealogy.svg", headers=crew.viewer,
                                   params={"direction": "backward"})
    assert picture.status_code == 200 and picture.headers["content-type"].startswith("image/svg+xml")
    assert all(number in picture.text for number in supplier_lots | {merged["lotNumber"], finished["lotNumber"]})
