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
    dispatches = (await plant.ok("GET", f"{W}/work-orders/{order['id']}/dispatches", plant.crew.viewer))["items"]
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


# -- expiry holds by the clock, whether or not the sweep ran ---------------------------------------------------
async def _expire_now(plant, *lots: dict) -> None:
    """Move the lots' expiry into the past behind the API's back (as time passing would)."""
    import uuid

    from sqlalchemy import update

    from mes.material.models import MaterialLot
    runtime = plant.api.system.runtime("material")
    async with runtime.database.engine.begin() as conn:
        await conn.execute(update(MaterialLot).where(MaterialLot.id.in_([uuid.UUID(lot["id"]) for lot in lots]))
                           .values(expires_at=datetime.now(timezone.utc) - timedelta(minutes=1)))


async def test_an_expired_lot_is_refused_at_every_use_and_in_every_total(plant):
    soon = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    part = plant.components[0]
    old, good, other = (await plant.lot(part, 5, expiresAt=soon), await plant.lot(part, 7),
                        await plant.lot(part, 3, expiresAt=soon))
    await _expire_now(plant, old, other)
    inventory = (await plant.ok("GET", f"{M}/inventory?partId={part['id']}", plant.crew.viewer))["items"]
    assert [(row["available"], row["expired"]) for row in inventory] == [(7, 8)]
    merged = await plant.http.post(f"{M}/lots/merge", headers=plant.crew.operator,
                                   json={"lotIds": [good["id"], old["id"]]})
    assert merged.status_code == 409 and "expired" in merged.json()["detail"]
    for url, body in ((f"{M}/lots/{old['id']}/split", {"quantity": 1}),
                      (f"{M}/lots/{old['id']}/sublots", {"quantity": 1})):
        refused = await plant.http.post(url, headers=plant.crew.operator, json=body)
        assert refused.status_code == 409 and "expired" in refused.json()["detail"], (url, refused.text)
    order = await plant.released(quantity=1)
    assert (await _issue(plant, order, old, 1)).status_code == 409
    # the sweep is a job of the material service, run by the System in its worker
    from isles.jobs import run_once
    from mes import material
    job = next(j for j in material.service.jobs if j.name == "expire-due")
    swept = await run_once(plant.api.system.runtime("material"), job)
    assert sorted(lot.lot_number for lot in swept) == sorted([old["lotNumber"], other["lotNumber"]])
    assert (await plant.ok("GET", f"{M}/lots/{old['id']}", plant.crew.viewer))["status"] == "expired"


async def test_the_system_runs_a_services_periodic_jobs(mes_env):
    import asyncio

    from sqlalchemy import MetaData

    from isles import Service, System
    from isles.jobs import Job
    runs = []

    async def tick(uow):
        runs.append(uow.runtime.name)

    service = Service("ticker", metadata=MetaData(), jobs=[Job("tick", every=timedelta(seconds=0.05), run=tick)])
    async with System("jobs", [service], env=mes_env).running():
        await asyncio.sleep(0.3)
    assert len(runs) >= 2 and set(runs) == {"ticker"}


async def test_a_lot_past_its_expiry_is_received_as_expired(plant):
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    lot = await plant.ok("POST", f"{M}/lots", plant.crew.operator, json={
        "partId": plant.components[0]["id"], "quantity": 5, "expiresAt": past})
    assert lot["status"] == "expired" and "expired on receipt" in lot["statusReason"]
    refused = await plant.http.post(f"{M}/lots/{lot['id']}/status", headers=plant.crew.quality,
                                    json={"status": "released"})
    assert refused.status_code == 409
    inventory = (await plant.ok("GET", f"{M}/inventory?partId={plant.components[0]['id']}", plant.crew.viewer))["items"]
    assert [(row["available"], row["received"], row["expired"]) for row in inventory] == [(0, 0, 5)]


# -- a merge keeps its sources ----------------------------------------------------------------------------------
async def test_a_merged_lot_shows_every_source_with_quantities_and_supplier_data(plant):
    part = plant.components[0]
    a = await plant.lot(part, 4, supplier="Forge AG", supplierLotNumber="H-1", certificateNumber="CoC-1")
    b = await plant.lot(part, 6, supplier="Forge AG", supplierLotNumber="H-1", certificateNumber="CoC-1")
    c = await plant.lot(part, 2, supplier="Other Ltd", certificateNumber="CoC-9")
    same = await plant.ok("POST", f"{M}/lots/merge", plant.crew.operator, json={"lotIds": [a["id"], b["id"]]})
    assert (same["supplier"], same["supplierLotNumber"], same["certificateNumber"]) == ("Forge AG", "H-1", "CoC-1")
    parents = (await plant.ok("GET", f"{M}/lots/{same['id']}/parents", plant.crew.viewer))["items"]
    assert sorted((p["lotNumber"], p["link"], p["linkQuantity"]) for p in parents) == sorted(
        [(a["lotNumber"], "merge", 4), (b["lotNumber"], "merge", 6)])
    children = (await plant.ok("GET", f"{M}/lots/{a['id']}/children", plant.crew.viewer))["items"]
    assert [(ch["lotNumber"], ch["link"], ch["linkQuantity"]) for ch in children] == [(same["lotNumber"], "merge", 4)]
    mixed = await plant.ok("POST", f"{M}/lots/merge", plant.crew.operator, json={"lotIds": [same["id"], c["id"]]})
    assert mixed["certificateNumber"] is None
    sources = (await plant.ok("GET", f"{M}/lots/{mixed['id']}/parents", plant.crew.viewer))["items"]
    assert {(p["supplier"], p["certificateNumber"], p["linkQuantity"]) for p in sources} == {
        ("Forge AG", "CoC-1", 10), ("Other Ltd", "CoC-9", 2)}
    split = await plant.ok("POST", f"{M}/lots/{mixed['id']}/split", plant.crew.operator, json={"quantity": 5})
    up = (await plant.ok("GET", f"{M}/lots/{split['child']['id']}/parents", plant.crew.viewer))["items"]
    assert [(p["lotNumber"], p["link"], p["linkQuantity"]) for p in up] == [(mixed["lotNumber"], "split", 5)]


# -- a BOM never contains its own part, at any depth ------------------------------------------------------------
async def test_a_circular_bom_is_refused_with_its_path(plant):
    eng = plant.crew.engineer

    async def part(number):
        return await plant.ok("POST", f"{M}/parts", eng, json={"partNumber": number, "name": number})

    async def bom(parent, *components):
        draft = await plant.ok("POST", f"{M}/parts/{parent['id']}/boms", eng, json={"items": [
            {"lineNumber": 10 * (i + 1), "componentPartId": c["id"], "quantityPer": 1}
            for i, c in enumerate(components)]})
        return await plant.http.post(f"{M}/parts/{parent['id']}/boms/{draft['bomVersion']}/release", headers=eng)

    top, mid, low = await part("P-50001"), await part("P-50010"), await part("P-50020")
    assert (await bom(top, mid)).status_code == 200
    direct = await bom(mid, top)
    assert direct.status_code == 409 and "P-50010 -> P-50001 -> P-50010" in direct.json()["detail"]
    assert (await bom(mid, low)).status_code == 200
    deep = await bom(low, plant.components[0], top)
    assert deep.status_code == 409 and "P-50020 -> P-50001 -> P-50010 -> P-50020" in deep.json()["detail"]
    assert (await bom(low, plant.components[0])).status_code == 200


# -- issued against required: over-issue needs a reason, the variance shows both -------------------------------
async def test_over_issue_needs_a_reason_and_the_variance_sets_issued_against_the_bom(plant):
    order = await plant.released(quantity=4)  # BOM: C-1 x1 (OP10), C-2 x2
    forging, bushing = (await plant.lot(plant.components[0], 20), await plant.lot(plant.components[1], 20))
    assert (await _issue(plant, order, forging, 3, operationCode="OP10")).status_code == 201
    over = await _issue(plant, order, forging, 2, operationCode="OP10")
    assert over.status_code == 409
    assert "requires 4 EA of C-1" in over.json()["detail"] and "has 3" in over.json()["detail"]
    allowed = await _issue(plant, order, forging, 2, operationCode="OP10", reason="two forgings cracked at setup")
    assert allowed.status_code == 201 and allowed.json()["reason"] == "two forgings cracked at setup"
    assert (await _issue(plant, order, bushing, 8)).status_code == 201
    await plant.api.system.drain()
    variance = await plant.ok("GET", f"{W}/work-orders/{order['id']}/variance", plant.crew.viewer)
    rows = {m["partNumber"]: (m["quantity"], m["required"], m["variance"]) for m in variance["material"]}
    assert rows == {"C-1": (5, 4, 1), "C-2": (8, 8, 0)}


async def test_the_variance_lists_required_material_nothing_was_issued_for(plant):
    order = await plant.released(quantity=2)
    await plant.api.system.drain()
    variance = await plant.ok("GET", f"{W}/work-orders/{order['id']}/variance", plant.crew.viewer)
    rows = {m["partNumber"]: (m["quantity"], m["required"], m["variance"]) for m in variance["material"]}
    assert rows == {"C-1": (0, 2, -2), "C-2": (0, 4, -4)}


async def test_a_consumptions_operation_must_be_one_of_the_orders(plant):
    order = await plant.released(quantity=4)
    lot = await plant.lot(plant.components[0], 10)
    wrong = await _issue(plant, order, lot, 1, operationCode="OP99")
    assert wrong.status_code == 409 and "no operation OP99" in wrong.json()["detail"]
    assert "OP10, OP20, OP30" in wrong.json()["detail"]
    assert (await _issue(plant, order, lot, 1, operationCode="OP20")).status_code == 201


# -- resource's product follows a part rename ---------------------------------------------------------------------
async def test_a_products_part_number_follows_a_rename_in_material(plant):
    product = await plant.ok("GET", f"{R}/products/{plant.product['id']}", plant.crew.viewer)
    assert product["partNumber"] == "P-100"
    await plant.ok("PATCH", f"{M}/parts/{plant.part['id']}", plant.crew.engineer, json={"partNumber": "P-100X"})
    await plant.api.system.drain()
    renamed = await plant.ok("GET", f"{R}/products/{plant.product['id']}", plant.crew.viewer)
    assert renamed["partNumber"] == "P-100X"


# -- every list filters by its natural key ---------------------------------------------------------------------------
async def test_lists_filter_by_their_natural_key(plant):
    order = await plant.order(quantity=1)
    viewer = plant.crew.viewer
    found = (await plant.ok("GET", f"{W}/work-orders?number={order['workOrderNumber']}", viewer))["items"]
    assert [o["id"] for o in found] == [order["id"]]
    assert (await plant.ok("GET", f"{W}/work-orders?number=WO-NONE", viewer))["items"] == []
    parts = (await plant.ok("GET", f"{M}/parts?partNumber=c-1", viewer))["items"]
    assert [p["id"] for p in parts] == [plant.components[0]["id"]]
    lot = await plant.lot(plant.components[0], 1)
    lots = (await plant.ok("GET", f"{M}/lots?lotNumber={lot['lotNumber']}", viewer))["items"]
    assert [x["id"] for x in lots] == [lot["id"]]
    centers = (await plant.ok("GET", f"{R}/work-centers?code=ASSY-1", viewer))["items"]
    assert [c["id"] for c in centers] == [plant.centers[1]["id"]]
    products = (await plant.ok("GET", f"{R}/products?productNumber=P-100", viewer))["items"]
    assert [p["id"] for p in products] == [plant.product["id"]]
    routings = (await plant.ok("GET", f"{R}/routings?code=RT-100", viewer))["items"]
    assert [r["id"] for r in routings] == [plant.routing["id"]]
    users = (await plant.ok("GET", "/api/auth/users?username=Operator1", plant.crew.admin))["items"]
    assert [u["id"] for u in users] == [plant.crew.ids["operator"]]
