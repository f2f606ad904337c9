"""The material service through HTTP: parts, versioned BOMs, lots (disposition, split, merge,
sublots, expiry), serials, inventory and issuing material into work orders - and who may do what."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
from sqlalchemy import select

M, W = "/api/material", "/api/work-order"


async def outbox(system, prefix: str = "mes.material.lot.") -> list[tuple[str, dict]]:
    runtime = system.runtime("material")
    table = runtime.tables.outbox
    async with runtime.database.engine.connect() as conn:
        rows = (await conn.execute(select(table).order_by(table.c.id))).all()
    return [(r.type, orjson.loads(r.data)) for r in rows if r.type.startswith(prefix)]


async def test_parts_need_an_engineer_and_numbers_are_never_reused(api, crew):
    body = {"partNumber": "P-1", "name": "Bracket", "tracking": "serial"}
    refused = await api.http.post(f"{M}/parts", json=body, headers=crew.operator)
    assert refused.status_code == 403 and "engineer" in refused.json()["detail"]
    part = (await api.http.post(f"{M}/parts", json=body, headers=crew.engineer)).json()
    assert part["tracking"] == "serial" and part["version"] == 1
    assert (await api.http.delete(f"{M}/parts/{part['id']}", headers=crew.engineer)).status_code == 204
    again = await api.http.post(f"{M}/parts", json=body, headers=crew.engineer)
    assert again.status_code == 409 and "never reused" in again.json()["detail"]
    assert (await api.http.get(f"{M}/parts/{part['id']}", headers=crew.viewer)).json()["isActive"] is False
    bad = await api.http.post(f"{M}/parts", json={**body, "partNumber": "P-2", "tracking": "bulk"},
                              headers=crew.engineer)
    assert bad.status_code == 422


async def test_bom_versions_release_one_at_a_time_and_never_change(plant):
    http, eng, part = plant.http, plant.crew.engineer, plant.part
    current = await plant.ok("GET", f"{M}/parts/{part['id']}/bom", plant.crew.viewer)
    assert current["bomVersion"] == 1 and [i["componentPartNumber"] for i in current["items"]] == ["C-1", "C-2"]
    frozen = await http.post(f"{M}/parts/{part['id']}/boms/1/items", headers=eng, json={
        "lineNumber": 30, "componentPartId": plant.components[0]["id"], "quantityPer": 1})
    assert frozen.status_code == 409 and "copyReleased" in frozen.json()["detail"]
    draft = await plant.ok("POST", f"{M}/parts/{part['id']}/boms", eng, json={"copyReleased": True, "items": [
        {"lineNumber": 20, "componentPartId": plant.components[1]["id"], "quantityPer": 4}]})
    assert draft["bomVersion"] == 2 and draft["status"] == "draft"
    assert [(i["lineNumber"], i["quantityPer"]) for i in draft["items"]] == [(10, 1.0), (20, 4.0)]
    itself = await http.post(f"{M}/parts/{part['id']}/boms/2/items", headers=eng, json={
        "lineNumber": 40, "componentPartId": part["id"], "quantityPer": 1})
    assert itself.status_code == 422
    await plant.ok("POST", f"{M}/parts/{part['id']}/boms/2/release", eng)
    versions = (await plant.ok("GET", f"{M}/parts/{part['id']}/boms", plant.crew.viewer))["items"]
    assert [(v["bomVersion"], v["status"]) for v in versions] == [(1, "obsolete"), (2, "released")]
    empty = await plant.ok("POST", f"{M}/parts/{part['id']}/boms", eng, json={})
    assert (await http.post(f"{M}/parts/{part['id']}/boms/{empty['bomVersion']}/release",
                            headers=eng)).status_code == 409


async def test_lot_disposition_is_for_quality_and_follows_the_rules(plant):
    http, crew = plant.http, plant.crew
    lot = await plant.lot(plant.components[0], 10, release=False, quarantine=True, supplier="Ladish")
    assert lot["status"] == "quarantine" and lot["origin"] == "received"
    url = f"{M}/lots/{lot['id']}/status"
    assert (await http.post(url, headers=crew.operator, json={"status": "released"})).status_code == 403
    assert (await http.post(url, headers=crew.quality, json={"status": "rejected"})).status_code == 422  # no reason
    released = await plant.ok("POST", url, crew.quality, json={"status": "released"})
    assert released["status"] == "released"
    back = await plant.ok("POST", url, crew.quality, json={"status": "quarantine", "reason": "supplier recall"})
    assert back["statusReason"] == "supplier recall"
    rejected = await plant.ok("POST", url, crew.quality, json={"status": "rejected", "reason": "cracked"})
    final = await http.post(url, headers=crew.quality, json={"status": "released"})
    assert final.status_code == 409 and "nothing (final)" in final.json()["detail"]
    changes = [(d["previousStatus"], d["status"]) for t, d in await outbox(plant.api.system)
               if t.endswith("status_changed")]
    assert changes == [("quarantine", "released"), ("released", "quarantine"), ("quarantine", "rejected")]
    assert rejected["version"] == 4


async def test_expired_lots_cannot_be_released_or_issued(plant):
    crew = plant.crew
    past = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    lot = await plant.lot(plant.components[0], 5, release=False, expiresAt=past)
    assert lot["status"] == "expired"  # received past its expiry: straight into expired
    refused = await plant.http.post(f"{M}/lots/{lot['id']}/status", headers=crew.quality, json={"status": "released"})
    assert refused.status_code == 409 and "expired" in refused.json()["detail"]
    assert await plant.ok("POST", f"{M}/lots/expire-due", crew.quality) == []  # nothing left to sweep
    future = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    await plant.ok("POST", f"{M}/lots/{lot['id']}/status", crew.quality, json={"status": "quarantine",
                                                                                 "reason": "re-test"})
    retested = await plant.ok("POST", f"{M}/lots/{lot['id']}/status", crew.quality,
                              json={"status": "released", "expiresAt": future})
    assert retested["status"] == "released"


async def test_split_keeps_exact_quantities_and_records_the_genealogy(plant):
    lot = await plant.lot(plant.components[1], 10)
    children = []
    for _ in range(3):
        split = await plant.ok("POST", f"{M}/lots/{lot['id']}/split", plant.crew.operator, json={"quantity": 0.1})
        children.append(split["child"])
    parent = await plant.ok("GET", f"{M}/lots/{lot['id']}", plant.crew.viewer)
    assert parent["quantity"] == 9.7  # Decimal arithmetic: no 9.700000000000001
    assert [c["lotNumber"] for c in children] == [f"{lot['lotNumber']}-0{n}" for n in (1, 2, 3)]
    assert all(c["parentLotId"] == lot["id"] and c["status"] == "released" and c["origin"] == "split"
               for c in children)
    too_much = await plant.http.post(f"{M}/lots/{lot['id']}/split", headers=plant.crew.operator,
                                     json={"quantity": 9.7})
    assert too_much.status_code == 409
    splits = [d for t, d in await outbox(plant.api.system) if t == "mes.material.lot.split"]
    assert [(s["childLotNumber"], s["splitQuantity"], s["quantity"]) for s in splits][-1] == (
        children[-1]["lotNumber"], 0.1, 9.7)
    listed = (await plant.ok("GET", f"{M}/lots/{lot['id']}/children", plant.crew.viewer))["items"]
    assert len(listed) == 3


async def test_merge_empties_the_sources_into_one_lot(plant):
    soon = datetime.now(timezone.utc) + timedelta(days=10)
    a = await plant.lot(plant.components[1], 3, expiresAt=soon.isoformat(), supplier="Acme")
    b = await plant.lot(plant.components[1], 4.5, expiresAt=(soon + timedelta(days=50)).isoformat(), supplier="Acme")
    other = await plant.lot(plant.components[0], 1)
    mixed = await plant.http.post(f"{M}/lots/merge", headers=plant.crew.operator,
                                  json={"lotIds": [a["id"], other["id"]]})
    assert mixed.status_code == 409 and "one part" in mixed.json()["detail"]
    merged = await plant.ok("POST", f"{M}/lots/merge", plant.crew.operator,
                            json={"lotIds": [a["id"], b["id"]], "lotNumber": "M-1"})
    assert (merged["quantity"], merged["origin"], merged["supplier"]) == (7.5, "merge", "Acme")
    assert datetime.fromisoformat(merged["expiresAt"]).date() == soon.date()  # the earliest expiry
    source = await plant.ok("GET", f"{M}/lots/{a['id']}", plant.crew.viewer)
    assert (source["quantity"], source["status"], source["statusReason"]) == (0, "consumed", "merged into M-1")
    event = [d for t, d in await outbox(plant.api.system) if t == "mes.material.lot.merged"][0]
    assert sorted(s["lotNumber"] for s in event["sources"]) == sorted([a["lotNumber"], b["lotNumber"]])


async def test_sublots_hold_part_of_a_lot(plant):
    lot = await plant.lot(plant.components[1], 10)
    box = await plant.ok("POST", f"{M}/lots/{lot['id']}/sublots", plant.crew.operator, json={"quantity": 6})
    assert box["sublotNumber"] == f"{lot['lotNumber']}.001"
    over = await plant.http.post(f"{M}/lots/{lot['id']}/sublots", headers=plant.crew.operator, json={"quantity": 5})
    assert over.status_code == 409 and "only 4" in over.json()["detail"]
    split = await plant.http.post(f"{M}/lots/{lot['id']}/split", headers=plant.crew.operator, json={"quantity": 5})
    assert split.status_code == 409  # only 4 are loose


async def test_issuing_material_checks_order_lot_quantity_and_bom(plant):
    http, op = plant.http, plant.crew.operator
    forging = await plant.lot(plant.components[0], 10)
    stranger = (await http.post(f"{M}/parts", headers=plant.crew.engineer,
                                json={"partNumber": "X-9", "name": "Not on the BOM"})).json()
    foreign = await plant.lot(stranger, 5)
    order = await plant.order(quantity=4)
    body = {"lotId": forging["id"], "workOrderId": order["id"], "quantity": 2, "operationCode": "OP10"}
    forecast = await http.post(f"{M}/consumptions", headers=op, json=body)
    assert forecast.status_code == 409 and "is Forecast" in forecast.json()["detail"]
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/release", plant.crew.supervisor, json={})
    await plant.api.system.drain()  # material learns the order's new state from its event
    not_on_bom = await http.post(f"{M}/consumptions", headers=op, json={**body, "lotId": foreign["id"]})
    assert not_on_bom.status_code == 409 and "not on BOM version 1" in not_on_bom.json()["detail"]
    too_much = await http.post(f"{M}/consumptions", headers=op, json={**body, "quantity": 11, "reason": "scrap"})
    assert too_much.status_code == 409 and "11 cannot be issued" in too_much.json()["detail"]
    issued = await plant.ok("POST", f"{M}/consumptions", op, json=body)
    assert issued["quantity"] == 2 and issued["consumedBy"] == plant.crew.ids["operator"]
    rest = await plant.ok("POST", f"{M}/consumptions", op, json={**body, "quantity": 8, "reason": "set-up scrap"})
    lot = await plant.ok("GET", f"{M}/lots/{forging['id']}", plant.crew.viewer)
    assert (lot["quantity"], lot["status"]) == (0, "consumed")
    await plant.api.system.drain()
    variance = await plant.ok("GET", f"{W}/work-orders/{order['id']}/variance", plant.crew.viewer)
    assert variance["material"] == [{"partId": plant.components[0]["id"], "partNumber": "C-1", "quantity": 10.0,
                                     "unitOfMeasure": "EA", "lots": [forging["lotNumber"]], "required": 4,
                                     "variance": 6},
                                    {"partId": plant.components[1]["id"], "partNumber": "C-2", "quantity": 0,
                                     "unitOfMeasure": "EA", "lots": [], "required": 8, "variance": -8}]
    listed = (await plant.ok("GET", f"{M}/consumptions?workOrderId={order['id']}", plant.crew.viewer))["items"]
    assert [c["id"] for c in listed] == [issued["id"], rest["id"]]
    unknown = await http.post(f"{M}/consumptions", headers=op,
                              json={**body, "workOrderId": "00000000-0000-4000-8000-000000000000"})
    assert unknown.status_code == 422 and "unknown to material" in unknown.json()["detail"]


async def test_quarantined_lots_and_sublots_in_issues(plant):
    seals = await plant.lot(plant.components[1], 10, release=False)
    order = await plant.released(quantity=2)
    body = {"lotId": seals["id"], "workOrderId": order["id"], "quantity": 1}
    held = await plant.http.post(f"{M}/consumptions", headers=plant.crew.operator, json=body)
    assert held.status_code == 409 and "received" in held.json()["detail"]
    await plant.ok("POST", f"{M}/lots/{seals['id']}/status", plant.crew.quality, json={"status": "released"})
    box = await plant.ok("POST", f"{M}/lots/{seals['id']}/sublots", plant.crew.operator, json={"quantity": 3})
    from_box = await plant.ok("POST", f"{M}/consumptions", plant.crew.operator, json={**body, "sublotId": box["id"],
                                                                                      "quantity": 3})
    assert from_box["sublotId"] == box["id"]
    emptied = (await plant.ok("GET", f"{M}/lots/{seals['id']}/sublots", plant.crew.viewer))["items"]
    assert emptied[0]["quantity"] == 0
    assert (await plant.ok("GET", f"{M}/lots/{seals['id']}", plant.crew.viewer))["quantity"] == 7


async def test_serials_get_a_process_then_a_product_serial(plant):
    http, crew = plant.http, plant.crew
    lot_part = await http.post(f"{M}/serials", headers=crew.operator, json={"partId": plant.part["id"]})
    assert lot_part.status_code == 422 and "not serialized" in lot_part.json()["detail"]
    part = await plant.ok("POST", f"{M}/parts", crew.engineer, json={"partNumber": "S-1", "name": "Actuator",
                                                                      "tracking": "serial"})
    units = await plant.ok("POST", f"{M}/serials", crew.operator, json={"partId": part["id"], "count": 2})
    assert [u["processSerial"] for u in units] == ["S-1-PS00001", "S-1-PS00002"]
    assert (await http.post(f"{M}/serials", headers=crew.operator,
                            json={"partId": part["id"], "processSerials": ["S-1-PS00002"]})).status_code == 409
    url = f"{M}/serials/{units[0]['id']}/product-serial"
    assert (await http.post(url, headers=crew.operator, json={"productSerial": "SN-1001"})).status_code == 403
    done = await plant.ok("POST", url, crew.quality, json={"productSerial": "SN-1001"})
    assert (done["processSerial"], done["productSerial"], done["status"]) == ("S-1-PS00001", "SN-1001", "completed")
    twice = await http.post(f"{M}/serials/{units[1]['id']}/product-serial", headers=crew.quality,
                            json={"productSerial": "SN-1001"})
    assert twice.status_code == 409
    types = [t for t, _ in await outbox(plant.api.system, "mes.material.serial.")]
    assert types == ["mes.material.serial.created"] * 2 + ["mes.material.serial.updated"]


async def test_inventory_adds_up_the_lots_on_hand(plant):
    crew = plant.crew
    stores = await plant.ok("POST", f"{M}/locations", crew.engineer, json={"code": "ST-A", "name": "Stores A",
                                                                            "kind": "stores"})
    dup = await plant.http.post(f"{M}/locations", headers=crew.engineer, json={"code": "ST-A", "name": "again"})
    assert dup.status_code == 409
    await plant.lot(plant.components[1], 4, locationId=stores["id"])
    await plant.lot(plant.components[1], 2.5, locationId=stores["id"])
    await plant.lot(plant.components[1], 1, release=False, locationId=stores["id"], quarantine=True)
    rows = (await plant.ok("GET", f"{M}/inventory?partId={plant.components[1]['id']}", crew.viewer))["items"]
    assert [(r["locationCode"], r["available"], r["quarantine"], r["received"], r["lots"]) for r in rows] == [
        ("ST-A", 6.5, 1.0, 0, 3)]
