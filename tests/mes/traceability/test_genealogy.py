"""The traceability service on a small hand-built plant history (story.py), delivered as events to
its handlers, queried over HTTP - on SQLite and on PostgreSQL."""
from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from mes_helpers import bearer, postgres_env, running_mes  # noqa: E402 - importable only after the sys.path line above
from story import Story  # noqa: E402 - importable only after the sys.path line above

from isles.consumer import Consumer  # noqa: E402 - after sys.path, as the imports above

T = "/api/traceability"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def traced(request, mes_env, pg_database):
    """The MES running, the story delivered to traceability's handlers (the optional ones too: lot.produced,
    shipments and returns are not published by material yet), an admin token."""
    from mes import traceability
    env = await postgres_env(mes_env, pg_database) if request.param == "postgres" else mes_env
    async with running_mes(env) as api:
        story = Story().build()
        consumer = Consumer(api.system.runtime("traceability"), traceability.service.subscriptions, batch_size=1,
                            max_attempts=1)
        await consumer.deliver(story.envelopes)
        assert consumer.dead_lettered == 0
        api.story, api.headers = story, bearer(await api.token())
        yield api


async def get(api, path: str, **params) -> dict | list:
    response = await api.http.get(f"{T}{path}", headers=api.headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def numbers(trace: dict, sign: int | None = None) -> set[str]:
    return {n["number"] for n in trace["nodes"] if sign is None or (n["depth"] > 0) - (n["depth"] < 0) == sign}


async def test_backward_forward_both_and_depth(traced):
    back = await get(traced, "/serials/U1/genealogy", direction="backward")
    assert numbers(back) == {"U1", "B1", "R1", "S1", "M1", "R1-01", "R2"}
    edges = {(e["parent"].split(":")[1], e["child"].split(":")[1]): e for e in back["edges"]}
    ids = traced.story.ids
    s1_to_b1 = edges[(ids["S1"], ids["B1"])]
    assert s1_to_b1["quantity"] == 10 and s1_to_b1["workOrderNumber"] == "WO-1"
    assert edges[(ids["R1-01"], ids["M1"])]["kind"] == "merge"
    assert edges[(ids["R1"], ids["U1"])]["quantity"] == 1  # issued into U1 only
    one_up = await get(traced, "/serials/U1/genealogy", direction="backward", depth=1)
    assert numbers(one_up) == {"U1", "B1", "R1"}
    forward = await get(traced, f"/lots/{ids['R2']}/genealogy", direction="forward")
    assert numbers(forward) == {"R2", "M1", "B1", "U1", "U2", "SH1", "SH2"}  # through the cycle, once each
    one_down = await get(traced, "/lots/M1/genealogy", direction="forward", depth=1)
    assert numbers(one_down) == {"M1", "B1"}
    both = await get(traced, "/lots/B1/genealogy", direction="both")
    assert numbers(both, -1) == {"S1", "M1", "R1-01", "R2", "R1"} and numbers(both, 1) == {"U1", "U2", "SH1", "SH2"}
    assert {n["number"]: n["depth"] for n in both["nodes"]}["R1"] == -3
    assert both["root"]["partNumber"] == "P-BRK" and both["root"]["workOrderNumber"] == "WO-1"


async def test_cycles_of_returns_are_guarded(traced):
    # U2 -> SH1 -> U2 -> SH2 -> U2: the walks end, and every node is listed once
    forward = await get(traced, "/serials/U2/genealogy", direction="forward")
    assert sorted(n["number"] for n in forward["nodes"]) == ["SH1", "SH2", "U2"]
    back = await get(traced, "/serials/U2/genealogy", direction="backward")
    listed = [n["number"] for n in back["nodes"]]
    assert len(listed) == len(set(listed)) and {"SH1", "SH2", "B1", "S1", "R2"} <= set(listed)
    assert (await get(traced, "/serials/U2/upstream-of/serials/U2"))["upstream"] is True


async def test_is_upstream_with_the_chain(traced):
    found = await get(traced, "/lots/S1/upstream-of/serials/U2")
    assert found["upstream"] is True and [n["number"] for n in found["path"]] == ["S1", "B1", "U2"]
    assert (await get(traced, "/serials/U1/upstream-of/lots/S1")) == {"upstream": False, "path": []}
    assert (await get(traced, "/lots/R1/upstream-of/serials/U2"))["upstream"] is True  # via split and merge
    missing = await traced.http.get(f"{T}/lots/NOPE/upstream-of/lots/S1", headers=traced.headers)
    assert missing.status_code == 404


async def test_recall_rolls_up_by_order_product_shipment_customer(traced):
    recall = await get(traced, "/lots/R2/recall")
    assert (recall["affected"], recall["lots"], recall["serials"], recall["shipments"]) == (7, 3, 2, 2)
    assert {r["workOrderNumber"]: (r["lots"], r["serials"]) for r in recall["byWorkOrder"]} == {
        "WO-1": (1, 0), "WO-2": (0, 2)}
    assert {r["partNumber"]: (r["lots"], r["serials"]) for r in recall["byProduct"]} == {
        "P-RES": (2, 0), "P-BRK": (1, 0), "P-ASM": (0, 2)}
    assert [(s["shipmentNumber"], s["customer"], s["serials"]) for s in recall["byShipment"]] == [
        ("SH1", "Globex", 2), ("SH2", "Initech", 1)]
    assert {c["customer"]: (c["shipments"], c["serials"]) for c in recall["byCustomer"]} == {
        "Globex": (1, 2), "Initech": (1, 1)}
    steel = await get(traced, "/lots/S1/recall")
    assert steel["serials"] == 2 and steel["root"]["number"] == "S1"


async def test_serial_as_built_tree(traced):
    tree = await get(traced, "/serials/U1/as-built")
    assert tree["node"]["number"] == "U1"
    parts = {c["node"]["number"]: c for c in tree["components"]}
    assert set(parts) == {"B1", "R1"}
    bracket = {c["node"]["number"]: c for c in parts["B1"]["components"]}
    assert set(bracket) == {"S1", "M1"} and bracket["S1"]["quantity"] == 10
    merge = {c["node"]["number"]: c for c in bracket["M1"]["components"]}
    assert set(merge) == {"R1-01", "R2"}
    resin = merge["R1-01"]["components"][0]
    # R1 is shown twice (directly in U1, and through the split): expanded once, marked repeated the other time
    assert resin["node"]["number"] == "R1" and [parts["R1"]["repeated"], resin["repeated"]].count(True) == 1
    assert resin["node"]["supplier"] == "Acme" and resin["node"]["supplierLotNumber"] == "A-77"


async def test_digital_thread_in_time_order_across_services(traced):
    thread = (await get(traced, "/lots/B1/thread"))["items"]
    kinds = [(e["kind"], e["source"]) for e in thread]
    assert ("work_order", "/mes/work_order") in kinds and ("produce", "/mes/material") in kinds
    assert [e["occurredAt"] for e in thread] == sorted(e["occurredAt"] for e in thread)
    summaries = " | ".join(e["summary"] for e in thread)
    assert "work order WO-1 created" in summaries and "produced 4 KG as B1 by WO-1" in summaries
    assert "B1 issued to WO-2" in summaries and "work order WO-2 created" in summaries
    r1 = [e["kind"] for e in (await get(traced, "/lots/R1/thread"))["items"]]
    assert r1[:2] == ["receive", "split"] and "consume" in r1
    u2 = [e["summary"] for e in (await get(traced, "/serials/U2/thread"))["items"]]
    assert sum("returned" in s for s in u2) == 2 and sum("shipped" in s for s in u2) == 2


async def test_picture_is_svg_with_the_nodes_and_quantities(traced):
    response = await traced.http.get(f"{T}/lots/B1/genealogy.svg", headers=traced.headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(response.text)
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    for number in ("B1", "S1", "M1", "R1", "R1-01", "R2", "U1", "U2", "SH1", "SH2"):
        assert number in texts
    assert "10" in texts and "Genealogy of lot B1 (P-BRK)" in texts
    assert any(p.get("stroke-dasharray") for p in root.iter("{http://www.w3.org/2000/svg}path"))  # the return


async def test_nodes_by_number_and_access(traced):
    found = (await get(traced, "/nodes", kind="lot", number="M1"))["items"]
    assert [(n["number"], n["origin"], n["partNumber"]) for n in found] == [("M1", "merge", "P-RES")]
    assert (await get(traced, "/nodes", partNumber="P-ASM"))["total"] == 2
    anonymous = await traced.http.get(f"{T}/lots/M1/genealogy")
    assert anonymous.status_code == 401
