"""The resource service through HTTP: hierarchy, personnel, routings - and who may do what."""
from __future__ import annotations

from datetime import date, timedelta

import orjson
from sqlalchemy import select

R = "/api/resource"


async def events(system, type_prefix="mes.resource."):
    runtime = system.runtime("resource")
    outbox = runtime.tables.outbox
    async with runtime.database.engine.connect() as conn:
        rows = (await conn.execute(select(outbox).order_by(outbox.c.id))).all()
    return [(r.type, orjson.loads(r.data), r.entity_version) for r in rows if r.type.startswith(type_prefix)]


async def hierarchy(api, token):
    h = api.bearer(token)
    post = api.http.post
    enterprise = (await post(f"{R}/enterprises", json={"code": "ACME", "name": "Acme"}, headers=h)).json()
    site = (await post(f"{R}/sites", json={"code": "PLT1", "name": "Plant 1", "enterpriseId": enterprise["id"],
                                           "timezone": "America/Chicago"}, headers=h)).json()
    area = (await post(f"{R}/areas", json={"code": "MACH", "name": "Machining", "siteId": site["id"]},
                       headers=h)).json()
    center = (await post(f"{R}/work-centers", json={"code": "CNC-1", "name": "CNC line 1", "areaId": area["id"],
                                                    "kind": "ProductionLine"}, headers=h)).json()
    unit = (await post(f"{R}/work-units", json={"code": "CELL-1", "name": "Cell 1", "workCenterId": center["id"]},
                       headers=h)).json()
    return enterprise, site, area, center, unit


async def test_every_endpoint_needs_a_token(api):
    assert (await api.http.get(f"{R}/sites")).status_code == 401
    assert (await api.http.post(f"{R}/enterprises", json={"code": "X", "name": "X"})).status_code == 401
    bad = await api.http.get(f"{R}/sites", headers=api.bearer("not.a.jwt"))
    assert bad.status_code == 401 and bad.headers["www-authenticate"].startswith("Bearer")


async def test_writes_need_engineer_or_admin(api):
    operator = await api.user_token("op1", ["operator"])
    assert (await api.http.get(f"{R}/enterprises", headers=api.bearer(operator))).status_code == 200
    refused = await api.http.post(f"{R}/enterprises", json={"code": "X", "name": "X"}, headers=api.bearer(operator))
    assert refused.status_code == 403 and "engineer" in refused.json()["detail"]
    engineer = await api.user_token("eng1", ["engineer"])
    assert (await api.http.post(f"{R}/enterprises", json={"code": "X", "name": "X"},
                                headers=api.bearer(engineer))).status_code == 201


async def test_isa95_hierarchy_crud_and_tree(api, system):
    token = await api.user_token("eng2", ["engineer"])
    h = api.bearer(token)
    enterprise, site, area, center, unit = await hierarchy(api, token)
    assert center["kind"] == "ProductionLine" and unit["workCenterId"] == center["id"]
    tree = (await api.http.get(f"{R}/enterprises/{enterprise['id']}/tree", headers=h)).json()
    assert tree["children"][0]["code"] == "PLT1"
    assert tree["children"][0]["children"][0]["children"][0]["children"][0]["code"] == "CELL-1"
    # a parent must exist, codes are unique under their parent, kinds are ISA-95's
    missing = await api.http.post(f"{R}/areas", json={"code": "A", "name": "A",
                                                      "siteId": "00000000-0000-0000-0000-000000000000"}, headers=h)
    assert missing.status_code == 422 and "siteId" in missing.json()["detail"]
    dup = await api.http.post(f"{R}/areas", json={"code": "MACH", "name": "again", "siteId": site["id"]}, headers=h)
    assert dup.status_code == 409
    wrong_kind = await api.http.post(f"{R}/work-centers", json={"code": "Z", "name": "Z", "areaId": area["id"],
                                                                "kind": "Spaceship"}, headers=h)
    assert wrong_kind.status_code == 422
    # rename the work center: one work_center.updated event per change, versions increasing
    renamed = await api.http.patch(f"{R}/work-centers/{center['id']}", json={"name": "5-axis line 1"}, headers=h)
    assert renamed.status_code == 200 and renamed.json()["version"] == 2
    centers = [e for e in await events(system) if e[0] == "mes.resource.work_center.updated"]
    assert [(e[1]["name"], e[2]) for e in centers] == [("CNC line 1", 1), ("5-axis line 1", 2)]
    assert centers[1][1]["siteId"] == site["id"] and centers[1][1]["changes"] == {"name": "5-axis line 1"}
    assert centers[1][1]["previousValues"] == {"name": "CNC line 1"}
    # filter by parent, deactivate instead of delete
    listed = (await api.http.get(f"{R}/work-units", params={"parentId": center["id"]}, headers=h)).json()["items"]
    assert [u["code"] for u in listed] == ["CELL-1"]
    gone = await api.http.delete(f"{R}/work-centers/{center['id']}", headers=h)
    assert gone.status_code == 200 and gone.json()["isActive"] is False
    assert (await api.http.get(f"{R}/work-centers", headers=h)).json()["items"] == []
    with_inactive = await api.http.get(f"{R}/work-centers", params={"includeInactive": "true"}, headers=h)
    assert len(with_inactive.json()["items"]) == 1
    assert any(e[0] == "mes.resource.site.updated" for e in await events(system))


async def test_routing_operations_are_ordered_and_sequences_unique(api):
    token = await api.user_token("eng3", ["engineer"])
    h = api.bearer(token)
    *_, center, _unit = await hierarchy(api, token)
    product = (await api.http.post(f"{R}/products", json={"productNumber": "P-12345", "name": "Landing Gear Strut",
                                                          "revision": "C"}, headers=h)).json()
    body = {"productId": product["id"], "code": "RT-1", "name": "Strut", "revision": "C", "operations": [
        {"sequence": 30, "code": "OP30", "name": "Finish", "workCenterId": center["id"], "runMinutesPerUnit": 52},
        {"sequence": 10, "code": "OP10", "name": "Rough", "workCenterId": center["id"], "setupMinutes": 45},
    ]}
    routing = await api.http.post(f"{R}/routings", json=body, headers=h)
    assert routing.status_code == 201, routing.text
    routing = routing.json()
    assert [o["sequence"] for o in routing["operations"]] == [10, 30] and routing["status"] == "draft"
    dup_in_body = await api.http.post(f"{R}/routings", headers=h, json={**body, "code": "RT-2", "operations": [
        {"sequence": 10, "code": "A", "name": "A"}, {"sequence": 10, "code": "B", "name": "B"}]})
    assert dup_in_body.status_code == 422 and "repeated: [10]" in dup_in_body.json()["detail"]
    dup = await api.http.post(f"{R}/routings/{routing['id']}/operations", headers=h,
                              json={"sequence": 30, "code": "OPX", "name": "clash"})
    assert dup.status_code == 409
    added = await api.http.post(f"{R}/routings/{routing['id']}/operations", headers=h,
                                json={"sequence": 20, "code": "OP20", "name": "Heat treat"})
    assert added.status_code == 201
    clash = await api.http.patch(f"{R}/routings/{routing['id']}/operations/{added.json()['id']}", headers=h,
                                 json={"sequence": 10})
    assert clash.status_code == 409
    full = (await api.http.get(f"{R}/routings/{routing['id']}", headers=h)).json()
    assert [o["code"] for o in full["operations"]] == ["OP10", "OP20", "OP30"]
    released = await api.http.post(f"{R}/routings/{routing['id']}/status", json={"status": "released"}, headers=h)
    assert released.status_code == 200 and released.json()["status"] == "released"
    frozen = await api.http.post(f"{R}/routings/{routing['id']}/operations", headers=h,
                                 json={"sequence": 40, "code": "OP40", "name": "late"})
    assert frozen.status_code == 409
    again = await api.http.post(f"{R}/routings", json={**body, "operations": []}, headers=h)
    assert again.status_code == 409  # same product, code and revision


async def test_personnel_certifications_and_expiry_check(api, system):
    token = await api.user_token("eng4", ["engineer"])
    h = api.bearer(token)
    skill = (await api.http.post(f"{R}/skills", json={"code": "NDT-PT", "name": "Penetrant testing"},
                                 headers=h)).json()
    person = (await api.http.post(f"{R}/personnel", json={"employeeNumber": "E-1", "firstName": "Priya",
                                                          "lastName": "Patel"}, headers=h)).json()
    other = (await api.http.post(f"{R}/personnel", json={"employeeNumber": "E-2", "firstName": "Lee",
                                                         "lastName": "Chen"}, headers=h)).json()
    today = date(2026, 6, 1)
    for who, name, until in ((person, "PT level 2", today - timedelta(days=3)),
                             (person, "PT level 3", today + timedelta(days=10)),
                             (other, "Forklift", today + timedelta(days=200)),
                             (other, "First aid", None)):
        response = await api.http.post(f"{R}/personnel/{who['id']}/certifications", headers=h, json={
            "name": name, "skillId": skill["id"], "level": 2, "validFrom": "2024-01-01",
            "validUntil": until.isoformat() if until else None})
        assert response.status_code == 201, response.text
    bad = await api.http.post(f"{R}/personnel/{person['id']}/certifications", headers=h, json={
        "name": "x", "validFrom": "2025-01-01", "validUntil": "2024-01-01"})
    assert bad.status_code == 422
    put = await api.http.put(f"{R}/personnel/{person['id']}/skills", headers=h,
                             json={"skillId": skill["id"], "level": 4})
    assert put.status_code == 200 and put.json()["skillCode"] == "NDT-PT"
    report = (await api.http.get(f"{R}/certifications/expiring", headers=h,
                                 params={"withinDays": 30, "asOf": today.isoformat()})).json()["items"]
    assert [(r["name"], r["status"], r["daysLeft"]) for r in report] == [("PT level 2", "expired", -3),
                                                                          ("PT level 3", "expiring", 10)]
    assert report[0]["personnelName"] == "Priya Patel"
    only_expiring = (await api.http.get(f"{R}/certifications/expiring", headers=h, params={
        "withinDays": 30, "asOf": today.isoformat(), "includeExpired": "false"})).json()["items"]
    assert [r["name"] for r in only_expiring] == ["PT level 3"]
    quals = (await api.http.get(f"{R}/personnel/{person['id']}/qualifications", headers=h)).json()
    assert quals["skills"] == [{"skillId": skill["id"], "skillCode": "NDT-PT", "level": 4}]
    updates = [e for e in await events(system) if e[0] == "mes.resource.personnel.updated"
               and e[1]["personnelId"] == person["id"]]
    assert [e[2] for e in updates] == sorted(e[2] for e in updates) and len(updates) == 4  # create, 2 certs, skill
    assert updates[-1][1]["skills"] == [{"skillCode": "NDT-PT", "name": "NDT-PT", "level": 4, "validUntil": None}]
    assert {c["name"] for c in updates[-1][1]["certifications"]} == {"PT level 2", "PT level 3"}


async def test_products_publish_product_updated(api, system):
    token = await api.user_token("eng5", ["engineer"])
    h = api.bearer(token)
    product = (await api.http.post(f"{R}/products", json={"productNumber": "P-1", "name": "Bracket"},
                                   headers=h)).json()
    await api.http.patch(f"{R}/products/{product['id']}", json={"name": "Bracket, LH"}, headers=h)
    updates = [e[1] for e in await events(system) if e[0] == "mes.resource.product.updated"]
    assert [u["productName"] for u in updates] == ["Bracket", "Bracket, LH"]
    assert (await api.http.post(f"{R}/products", json={"productNumber": "P-1", "name": "dup"},
                                headers=h)).status_code == 409


async def test_demo_seed_is_realistic_and_idempotent(system):
    from mes import auth, resource
    users = await auth.seed({"MES_DEMO_PASSWORD": "Demo-password-1234", "MES_ADMIN_PASSWORD": "x" * 20})
    ids = await resource.seed(users)
    assert {"PLT1", "CNC-LINE-1", "P-12345"} <= set(ids)
    again = await resource.seed(users)
    assert again["P-12345"] == ids["P-12345"]
    await system.drain()
