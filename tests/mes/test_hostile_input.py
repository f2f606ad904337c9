"""Hostile input into every field of every request body and every query parameter of every route.

The routes come from the app's OpenAPI (so a service added later is swept without a line of test
code); request schemas are resolved through their ``$ref``s. Each hostile value is written as raw
JSON text (a lone surrogate escape ``"\\ud800"``, ``NaN``, ``1e400``... are not values Python's
``json.dumps`` would write), into one field at a time of an otherwise plausible body. The caller
is an admin's API token with every scope, so authentication passes and the input reaches the
validation and the route's logic. No answer may be a server error, and every 4xx is RFC 9457
problem details (``application/problem+json`` with type, title, status, detail, errors[]).
"""
from __future__ import annotations

import json
import time
import uuid
from typing import Any, Iterator
from urllib.parse import quote

import pytest
from mes_helpers import bearer

#: Raw JSON texts that have crashed or fooled JSON APIs.
BODY_VALUES: dict[str, str] = {
    "lone surrogate": '"a\\ud800b"',
    "NUL": '"a\\u0000b"',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "1e400": "1e400",
    "huge integer": "1" + "0" * 5000,
    "big integer": "123456789012345678901234567890",
    "negative": "-1",
    "deep nesting": "[" * 10_000 + "]" * 10_000,
    "object": "{}",
    "array": "[]",
    "boolean": "true",
    "null": "null",
    "zero-width": '"P-1\\u200b00"',
    "RTL override": '"\\u202eevil"',
    "byte order mark": '"\\ufeffx"',
    "long text": json.dumps("x" * 70_000),
}
#: Sent once per route (into its first string field): a 10 MB string.
TEN_MB = json.dumps("y" * 10_000_000)

#: Query-string texts (already percent-encoded where needed).
QUERY_VALUES: dict[str, str] = {
    "surrogate bytes": "%ED%A0%80",
    "invalid utf-8": "%FF%FE",
    "NUL": "a%00b",
    "NaN": "NaN",
    "1e400": "1e400",
    "huge integer": "9" * 5000,
    "text": "text",
    "zero-width": quote("P-1\u200b00"),
    "RTL override": quote("\u202eevil"),
    "long text": "z" * 60_000,
}


def resolve(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> dict[str, Any]:
    """``schema`` with its ``$ref`` (and a nullable ``anyOf``'s object branch) resolved."""
    if depth > 20:
        return {}
    if "$ref" in schema:
        return resolve(components[schema["$ref"].split("/")[-1]], components, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            branches = [resolve(s, components, depth + 1) for s in schema[key]]
            concrete = [b for b in branches if b.get("type") != "null"]
            if concrete:
                return concrete[0]
    return schema


def sample(schema: dict[str, Any], components: dict[str, Any], depth: int = 0) -> Any:
    """A plausible value for ``schema`` (so the other fields of a body do not hide the one under test)."""
    schema = resolve(schema, components)
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        if depth > 4:
            return {}
        return {name: sample(sub, components, depth + 1) for name, sub in schema.get("properties", {}).items()}
    if kind == "array":
        return [sample(schema.get("items", {}), components, depth + 1)] if depth <= 4 else []
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt == "date-time":
            return "2030-01-01T00:00:00Z"
        if fmt == "date":
            return "2030-01-01"
        if fmt == "email":
            return "a@example.com"
        return "X" * max(int(schema.get("minLength", 1)), 1)
    return "x"


def field_paths(value: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every place in a sample body a hostile value can go (objects' keys, arrays' first item)."""
    if isinstance(value, dict):
        for key, sub in value.items():
            yield (*prefix, key)
            yield from field_paths(sub, (*prefix, key))
    elif isinstance(value, list) and value:
        yield (*prefix, 0)
        yield from field_paths(value[0], (*prefix, 0))


MARK = "\u0001HOSTILE\u0001"


def with_raw(body: Any, path: tuple, raw: str) -> bytes:
    """``body`` as JSON text with the value at ``path`` replaced by the raw JSON text ``raw``."""
    body = json.loads(json.dumps(body))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = MARK
    return json.dumps(body).replace(json.dumps(MARK), raw).encode("utf-8", "surrogatepass")


async def send(client, method: str, url: str, what: str, failures: list[str], **kwargs):
    """The response, or None (and a failure) if the app raised: the server would have answered 500."""
    try:
        response = await client.request(method, url, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the in-process transport re-raises what the app did not handle
        failures.append(f"{what}: 500 ({type(exc).__name__}: {str(exc)[:150]})")
        return None
    check(response, what, failures)
    return response


def check(response, what: str, failures: list[str]) -> None:
    if response.status_code >= 500:
        failures.append(f"{what}: {response.status_code} {response.text[:200]}")
        return
    if response.status_code >= 400:
        problem_ok = response.headers.get("content-type", "").startswith("application/problem+json")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not (problem_ok and isinstance(body, dict) and {"type", "title", "status", "detail", "errors"} <= set(body)
                and body["status"] == response.status_code and isinstance(body["errors"], list)):
            failures.append(f"{what}: {response.status_code} is not problem details: "
                            f"{response.headers.get('content-type')} {response.text[:200]}")


#: Routes whose side effects would end the run (they are covered by their own tests).
SKIP = {("post", "/api/auth/me/password"), ("post", "/api/auth/logout")}


@pytest.fixture
async def admin_api_token(api) -> str:
    access = await api.token()
    created = await api.http.post("/api/auth/api-tokens", json={"name": "hostile", "scopes": ["*"]},
                                  headers=bearer(access))
    assert created.status_code == 201, created.text
    return created.json()["token"]


async def test_hostile_values_in_every_field_and_query_parameter_answer_4xx_problem_details(
        api, client, plant, admin_api_token):
    headers = {**bearer(admin_api_token), "Content-Type": "application/json"}
    schema = (await client.get("/openapi.json")).json()
    components = schema["components"]["schemas"]
    known = {"part_id": plant.part["id"], "site_id": plant.site["id"], "routing_id": plant.routing["id"],
             "product_id": plant.product["id"], "work_center_id": plant.centers[0]["id"],
             "user_id": plant.crew.ids["operator"]}
    failures: list[str] = []
    sent = 0
    started = time.monotonic()
    for path, item in schema["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, operation in item.items():
            if (method, path) in SKIP or not isinstance(operation, dict):
                continue
            url = path
            for param in operation.get("parameters", []):
                if param["in"] == "path":
                    value = known.get(param["name"]) or (str(uuid.uuid4()) if resolve(
                        param["schema"], components).get("format") == "uuid" else "1")
                    url = url.replace("{" + param["name"] + "}", str(value))
            # every query parameter, one hostile value at a time (and one nobody declared)
            for param in operation.get("parameters", []):
                if param["in"] != "query":
                    continue
                for label, text in QUERY_VALUES.items():
                    await send(client, method.upper(), f"{url}?{param['name']}={text}",
                               f"{method.upper()} {path}?{param['name']}=<{label}>", failures, headers=headers)
                    sent += 1
            response = await send(client, method.upper(), f"{url}?noSuchParameter=1",
                                  f"{method.upper()} {path}?noSuchParameter", failures, headers=headers)
            sent += 1
            if response is not None and response.status_code != 422:
                failures.append(f"{method.upper()} {path}: an unknown query parameter answered {response.status_code}")
            # every field of the JSON body
            content = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if content is None:
                continue
            body = sample(content["schema"], components)
            paths = list(field_paths(body)) or []
            targets = paths + [()]  # () is the whole body
            big_sent = False
            for target in targets:
                for label, raw in BODY_VALUES.items():
                    data = raw.encode("utf-8") if target == () else with_raw(body, target, raw)
                    await send(client, method.upper(), url,
                               f"{method.upper()} {path} {'.'.join(map(str, target)) or '<body>'}=<{label}>",
                               failures, content=data, headers=headers)
                    sent += 1
                if not big_sent and target and isinstance(_at(body, target), str):
                    where = ".".join(map(str, target))
                    await send(client, method.upper(), url, f"{method.upper()} {path} {where}=<10 MB>", failures,
                               content=with_raw(body, target, TEN_MB), headers=headers)
                    sent += 1
                    big_sent = True
            if isinstance(body, dict):
                extra = json.dumps({**body, "noSuchField": 1}).encode()
                response = await send(client, method.upper(), url, f"{method.upper()} {path} +noSuchField", failures,
                                      content=extra, headers=headers)
                sent += 1
                if response is not None and response.status_code < 400:
                    failures.append(f"{method.upper()} {path}: an unknown body field answered {response.status_code}")
    elapsed = time.monotonic() - started
    print(f"hostile input: {sent} requests in {elapsed:.1f} s")
    assert sent > 1000, sent
    # the token still works: the sweep did not end up measuring 401s
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    assert not failures, f"{len(failures)} of {sent} requests ({elapsed:.0f} s):\n" + "\n".join(failures[:60])


def _at(body: Any, path: tuple) -> Any:
    for key in path:
        body = body[key]
    return body
