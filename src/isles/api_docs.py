"""What the OpenAPI document says beyond what FastAPI writes: readable schema names and the error
answers of every operation.

* **Schema names.** FastAPI names a schema after its model class, unless two models share a name
  (resource's ``OperationOut`` and work_order's ``OperationOut``): then both get their module path,
  ``mes__resource__routings__OperationOut``, which leaks the code's layout into every generated
  client. Such a name becomes the service's name and the class's: ``ResourceOperationOut``. A
  generic model's name (``PageOut_PartOut_``) becomes its title (``PartPage``).
* **Error answers.** Every operation documents 401, 403, 404, 409 and 422 (public operations
  omit 401/403) with the one error shape, RFC 9457 problem details (:mod:`isles.problems`).
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterable

from fastapi import FastAPI

from isles.problems import CONTENT_TYPE, Problem

__all__ = ["ERROR_RESPONSES", "document_api", "readable_name"]

#: The error answers every operation documents, with what each means here.
ERROR_RESPONSES: dict[str, str] = {
    "401": "Not authenticated: no token, or an expired or revoked one",
    "403": "Authenticated, but the role or the token's scopes do not allow this",
    "404": "Nothing has that id (or the path does not exist)",
    "409": "Refused by a business rule or the record's current state (a conflict)",
    "422": "The request is invalid: errors[] names each field, query parameter or body value",
}


_CLEAN = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\-]", name) if part)


def readable_name(name: str, services: Iterable[str]) -> str:
    """``mes__resource__routings__OperationOut`` -> ``ResourceOperationOut``: the service the
    module belongs to (else the module's own name) and the class name, without the path."""
    if "__" not in name:
        return name
    parts = [p for p in name.split("__") if p]
    cls = parts[-1]
    modules = parts[:-1]
    owner = next((p for p in modules if p in set(services)), modules[-1] if modules else "")
    return f"{_camel(owner)}{cls}"


def _rename_schemas(schema: dict[str, Any], services: list[str]) -> dict[str, Any]:
    schemas = schema.get("components", {}).get("schemas", {})
    renames: dict[str, str] = {}
    taken = {n for n in schemas if _CLEAN.fullmatch(n)}
    for name in schemas:
        if _CLEAN.fullmatch(name):
            continue
        title = schemas[name].get("title", "")
        # a generic model's name (PageOut_PartOut_) becomes its title (PartPage, see isles.http.PageOut)
        new = title if "__" not in name and _CLEAN.fullmatch(title) and title not in taken \
            else readable_name(name, services)
        base, n = new, 2
        while new in taken:  # never merge two different schemas under one name
            new, n = f"{base}{n}", n + 1
        taken.add(new)
        renames[name] = new
    if not renames:
        return schema
    text = json.dumps(schema)
    for old, new in renames.items():
        text = text.replace(f'"#/components/schemas/{old}"', f'"#/components/schemas/{new}"')
    renamed: dict[str, Any] = json.loads(text)
    renamed["components"]["schemas"] = {renames.get(k, k): v for k, v in renamed["components"]["schemas"].items()}
    for old, new in renames.items():
        body = renamed["components"]["schemas"][new]
        if body.get("title") == old:
            body["title"] = new
    return renamed


def _add_error_responses(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, definition in problem.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components["Problem"] = problem
    # FastAPI's own 422 schemas are replaced by the problem shape
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)
    content = {CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            public = bool((operation.get("x-isles-access") or {}).get("public"))
            for status, description in ERROR_RESPONSES.items():
                if public and status in ("401", "403"):
                    continue
                existing = operation["responses"].get(status, {})
                operation["responses"][status] = {
                    "description": existing.get("description") if status != "422" and existing.get("description")
                    else description, "content": content}


def document_api(app: FastAPI, *, services: Iterable[str] = ()) -> None:
    """Wrap ``app.openapi`` so the document has readable schema names and the error answers (see
    the module docstring); ``services`` are the system's service names, to name colliding schemas."""
    names = list(services)
    generate = app.openapi

    done: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not done:
            schema = _rename_schemas(generate(), names)
            _add_error_responses(schema)
            app.openapi_schema = schema
            done.append(schema)
        return done[0]

    app.openapi = openapi  # type: ignore[method-assign]
