"""The genealogy built from what material and work_order really publish, in a running MES (SQLite and
PostgreSQL): lots received, released, split, merged and issued into an order, units of the order."""
from __future__ import annotations

import pytest
from mes_helpers import M, Plant, make_crew, postgres_env, running_mes

T = "/api/traceability"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def mes_api(request, mes_env, pg_database):
    env = await postgres_env(mes_env, pg_database) if request.param == "postgres" else mes_env
    async with running_mes(env) as api:
        yield api


async def test_material_events_build_the_genealogy(mes_api):
    api = mes_api
    crew = await make_crew(api)
    plant = await Plant(api, crew).build()
    forging, bushing = plant.components
    op, eng = crew.operator, crew.engineer
    heat = await plant.lot(forging, 10, supplier="Ladish", supplierLotNumber="H-4711")
    split = await plant.ok("POST", f"{M}/lots/{heat['id']}/split", op, json={"quantity": 4})
    piece = split["child"]
    first, second = await plant.lot(bushing, 6), await plant.lot(bushing, 6)
    merged = await plant.ok("POST", f"{M}/lots/merge", op, json={"lotIds": [first["id"], second["id"]]})
    order = await plant.released(quantity=2)
    for lot, quantity, code in ((piece, 2, "OP10"), (merged, 4, "OP30")):
        await plant.ok("POST", f"{M}/consumptions", op, json={"lotId": lot["id"], "workOrderId": order["id"],
                                                               "quantity": quantity, "operationCode": code})
    unit_part = await plant.ok("POST", f"{M}/parts", eng, json={"partNumber": "U-100", "name": "Strut unit",
                                                                 "tracking": "serial"})
    units = await plant.ok("POST", f"{M}/serials", op, json={"partId": unit_part["id"], "count": 2,
                                                              "workOrderId": order["id"]})
    await api.system.drain()

    async def get(path: str, **params):
        response = await api.http.get(f"{T}{path}", headers=crew.viewer, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    unit = units[0]["id"]
    back = await get(f"/serials/{unit}/genealogy", direction="backward")
    assert {n["number"] for n in back["nodes"]} == {units[0]["processSerial"], piece["lotNumber"], heat["lotNumber"],
                                                     merged["lotNumber"], first["lotNumber"], second["lotNumber"]}
    quantities = {(e["kind"], e["quantity"], e.get("operationCode")) for e in back["edges"]}
    assert ("split", 4, None) in quantities and ("merge", 6, None) in quantities
    assert ("consume", 2, "OP10") in quantities and ("consume", 4, "OP30") in quantities
    forward = await get(f"/lots/{heat['id']}/genealogy", direction="forward")
    assert {n["number"] for n in forward["nodes"]} == {heat["lotNumber"], piece["lotNumber"],
                                                        *(u["processSerial"] for u in units)}
    assert (await get(f"/lots/{second['lotNumber']}/upstream-of/serials/{units[1]['id']}"))["upstream"] is True
    recall = await get(f"/lots/{first['id']}/recall")
    assert recall["serials"] == 2 and recall["byWorkOrder"][0]["workOrderNumber"] == order["workOrderNumber"]
    thread = (await get(f"/lots/{heat['id']}/thread"))["items"]
    kinds = [e["kind"] for e in thread]
    assert kinds[:3] == ["receive", "status", "split"], kinds
    assert "Ladish" in thread[0]["summary"]
    piece_thread = " | ".join(e["summary"] for e in (await get(f"/lots/{piece['id']}/thread"))["items"])
    assert f"issued to {order['workOrderNumber']} at OP10" in piece_thread
    assert f"work order {order['workOrderNumber']} created" in piece_thread  # from work_order, the other service
    tree = await get(f"/serials/{unit}/as-built")
    assert {c["node"]["number"] for c in tree["components"]} == {piece["lotNumber"], merged["lotNumber"]}
    picture = await api.http.get(f"{T}/serials/{unit}/genealogy.svg", headers=crew.viewer)
    assert picture.status_code == 200 and heat["lotNumber"] in picture.text
