"""One API across the four services: lists are pages with a total, unknown query parameters and
body fields are refused, every error is RFC 9457 problem details, quantities have no trailing
zeros, the OpenAPI names schemas without module paths and documents the error answers, one status
vocabulary style, and an access log line per request."""
from __future__ import annotations

import logging
import re

from mes_helpers import M, R, W

PROBLEM_KEYS = {"type", "title", "status", "detail", "errors"}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body = response.json()
    assert PROBLEM_KEYS <= set(body) and body["status"] == status and isinstance(body["errors"], list), body
    return body


async def test_every_list_is_a_page_with_the_total_and_limit_and_offset_work_everywhere(client, plant):
    schema = (await client.get("/openapi.json")).json()
    bare_arrays, unpaged = [], []
    for path, item in schema["paths"].items():
        get = item.get("get")
        if not path.startswith("/api/") or get is None:
            continue
        ok = get["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema", {})
        if ok.get("type") == "array":
            bare_arrays.append(path)
        if ok.get("$ref", "").endswith("Page"):
            names = {p["name"] for p in get.get("parameters", []) if p["in"] == "query"}
            if not {"limit", "offset"} <= names:
                unpaged.append(path)
    assert bare_arrays == [] and unpaged == []
    http, viewer = plant.http, plant.crew.viewer
    await plant.lot(plant.components[0], 5)
    await plant.lot(plant.components[1], 3)
    for url in (f"{M}/inventory", f"{M}/locations", f"{M}/parts", f"{M}/lots"):
        whole = (await http.get(url, headers=viewer)).json()
        assert whole["total"] == len(whole["items"]) and whole["limit"] == 100 and whole["offset"] == 0, (url, whole)
        page = (await http.get(url, params={"limit": 1, "offset": 1}, headers=viewer)).json()
        assert page["total"] == whole["total"] and page["items"] == whole["items"][1:2], url
    assert (await http.get(f"{M}/parts", params={"limit": 1}, headers=viewer)).json()["total"] == 3


async def test_unknown_query_parameters_and_body_fields_are_refused_naming_them(plant):
    http = plant.http
    typo = await http.get(f"{W}/work-orders", params={"lmit": 5, "partID": plant.part["id"]}, headers=plant.crew.viewer)
    body = assert_problem(typo, 422)
    assert [e["loc"] for e in body["errors"]] == [["query", "lmit"], ["query", "partID"]]
    assert "lmit" in body["detail"] and "partID" in body["detail"]
    extra = await http.post(f"{M}/parts", headers=plant.crew.engineer,
                            json={"partNumber": "P-7", "name": "Pin", "revison": "B"})
    body = assert_problem(extra, 422)
    assert body["errors"] == [{"loc": ["body", "revison"], "msg": "Extra inputs are not permitted",
                               "type": "extra_forbidden"}]
    # declared parameters still work, and a response may carry fields a request may not
    assert (await http.get(f"{W}/work-orders", params={"limit": 5}, headers=plant.crew.viewer)).status_code == 200


async def test_every_error_is_problem_details(plant):
    http = plant.http
    assert_problem(await http.get(f"{M}/parts"), 401)
    assert_problem(await http.post(f"{M}/parts", headers=plant.crew.viewer, json={"partNumber": "P-8", "name": "x"}),
                   403)
    missing = assert_problem(await http.get(f"{M}/lots/00000000-0000-4000-8000-000000000000",
                                            headers=plant.crew.viewer), 404)
    assert "not found" in missing["detail"] and missing["title"] == "Not Found"
    again = await http.post(f"{M}/parts", headers=plant.crew.engineer, json={"partNumber": "P-100", "name": "Dup"})
    assert assert_problem(again, 409)["title"] == "Conflict"
    invalid = assert_problem(await http.post(f"{M}/lots", headers=plant.crew.operator,
                                             json={"partId": plant.part["id"], "quantity": -1}), 422)
    assert invalid["errors"][0]["loc"] == ["body", "quantity"] and "input" not in invalid["errors"][0]
    assert_problem(await http.get("/api/material/no-such-route", headers=plant.crew.viewer), 404)


async def test_quantities_are_json_numbers_without_trailing_zeros(plant):
    whole = await plant.http.post(f"{M}/lots", headers=plant.crew.operator,
                                  json={"partId": plant.components[0]["id"], "quantity": "5.000"})
    assert re.search(r'"quantity":5[,}]', whole.text), whole.text
    part = await plant.http.post(f"{M}/lots", headers=plant.crew.operator,
                                 json={"partId": plant.components[0]["id"], "quantity": 2.5})
    assert re.search(r'"quantity":2\.5[,}]', part.text), part.text
    inventory = await plant.http.get(f"{M}/inventory", headers=plant.crew.viewer)
    assert '"received":7.5' in inventory.text and ".000000" not in inventory.text, inventory.text


async def test_openapi_names_schemas_without_module_paths_and_documents_the_errors(client):
    schema = (await client.get("/openapi.json")).json()
    names = list(schema["components"]["schemas"])
    assert [n for n in names if "__" in n or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", n)] == []
    assert {"ResourceOperationOut", "WorkOrderOperationOut", "PartPage", "Problem"} <= set(names)
    undocumented = []
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if not path.startswith("/api/"):
                continue
            public = operation.get("x-isles-access", {}).get("public")
            wanted = {"404", "409", "422"} | (set() if public else {"401", "403"})
            missing = wanted - set(operation["responses"])
            if missing:
                undocumented.append((method, path, sorted(missing)))
            for status in wanted & set(operation["responses"]):
                content = operation["responses"][status]["content"]
                assert content == {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    assert undocumented == []


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value.rsplit("/", 1)[-1]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


async def test_request_bodies_are_closed_and_responses_open(client):
    """Request models refuse unknown fields (additionalProperties: false); response models do not,
    so a client that validates answers keeps working when a field is added."""
    schema = (await client.get("/openapi.json")).json()
    components = schema["components"]["schemas"]

    def closure(names):
        seen, todo = set(), list(names)
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(_refs(components[name]))
        return seen

    operations = [op for item in schema["paths"].values() for op in item.values()]
    requests = closure(r for op in operations for r in _refs(op.get("requestBody", {})))
    responses = closure(r for op in operations for r in _refs(op["responses"]))
    assert requests and responses and not requests & responses
    assert [n for n in requests if components[n].get("additionalProperties") is not False] == []
    assert [n for n in responses if components[n].get("additionalProperties") is False] == []


#: ISA-95 / B2MML enumerations keep the standard's spelling (PascalCase); see the report.
B2MML = {"Forecast", "Released", "Cancelled", "Ready", "Running", "Completed", "Aborted", "Held", "Paused",
         "Closed", "Pending", "ProcessCell", "ProductionLine", "ProductionUnit", "StorageZone", "Unit", "WorkCell",
         "StorageUnit"}


async def test_one_status_vocabulary_style(client):
    """Every enumeration is either the ISA-95/B2MML names as the standard writes them, or
    lower_snake_case: never a mix within one enumeration, never a third style."""
    schema = (await client.get("/openapi.json")).json()
    mixed = []

    def walk(node):
        if isinstance(node, dict):
            values = node.get("enum")
            if values and all(isinstance(v, str) for v in values):
                standard = all(v in B2MML for v in values)
                snake = all(re.fullmatch(r"[a-z][a-z0-9]*(_[a-z0-9]+)*", v) for v in values)
                if not (standard or snake):
                    mixed.append(values)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert mixed == []


async def test_access_log_has_one_line_per_request_without_query_or_credentials(plant, caplog):
    caplog.set_level(logging.INFO, logger="isles.access")
    response = await plant.http.get(f"{R}/sites", params={"token": "s3cret-in-query"},
                                    headers={**plant.crew.viewer, "X-Request-ID": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    lines = [r for r in caplog.records if r.name == "isles.access"]
    assert len(lines) == 1
    text = lines[0].getMessage()
    assert re.fullmatch(r"GET /api/resource/sites 422 \d+\.\dms service=resource request_id=req-42", text), text
    assert "s3cret" not in text and "Bearer" not in text
    assert lines[0].isles_access["status"] == 422 and lines[0].isles_access["service"] == "resource"
    caplog.clear()
    await plant.http.get(f"{R}/sites", headers=plant.crew.viewer)
    (line,) = [r for r in caplog.records if r.name == "isles.access"]
    assert " 200 " in line.getMessage() and re.search(r"request_id=[0-9a-f]{32}$", line.getMessage())
