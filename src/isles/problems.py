"""One shape for every error a client gets: RFC 9457 problem details.

Every 4xx and 5xx the framework answers is ``application/problem+json``::

    {"type": "about:blank", "title": "Conflict", "status": 409,
     "detail": "lot L-1 is on hold", "errors": []}

``errors`` lists what was wrong with the input of a 422 (``loc``, ``msg``, ``type`` per item, as
pydantic reports them) and is empty otherwise. The status says what kind of refusal it is: 422
the input is invalid (fix the request), 409 a business rule or the current state refuses it
(the same request may succeed later or after another change), 404 nothing has that id, 401/403
who you are or what you may do.

The input is never echoed back: it may hold a secret (a password field), and a value the client
sent may not even be encodable (a lone surrogate, NaN), which would turn a 422 into a 500. Every
string in the body is made encodable before it is written.
"""
from __future__ import annotations

import json
import math
from http import HTTPStatus
from typing import Any, Iterable, Mapping

from pydantic import BaseModel, Field
from starlette.responses import Response

__all__ = ["CONTENT_TYPE", "Problem", "ProblemError", "problem", "problem_response", "validation_errors"]

#: RFC 9457's media type.
CONTENT_TYPE = "application/problem+json"


class ProblemError(BaseModel):
    """One invalid input: where it is (``["body", "items", 0, "quantity"]``), what is wrong, and
    pydantic's error type (``"missing"``, ``"extra_forbidden"``, ``"greater_than"``...)."""

    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """The body of every error answer (RFC 9457 problem details)."""

    type: str = Field("about:blank", description="a URI naming the kind of problem; about:blank: the status says it")
    title: str = Field(description="the status's reason phrase")
    status: int
    detail: str = Field(description="what went wrong, for a person")
    errors: list[ProblemError] = Field(default_factory=list, description="the invalid inputs of a 422")


def _clean(value: Any) -> Any:
    """``value`` with every string encodable as UTF-8 (a lone surrogate becomes U+FFFD) and every
    non-finite float replaced by its name, so writing the body can never fail."""
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8") if not value.isascii() else value
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, Mapping):
        return {str(_clean(k)): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return _clean(str(value))


def problem(status: int, detail: Any = None, *, errors: Iterable[Mapping[str, Any]] = (),
            title: str | None = None, type_: str = "about:blank") -> dict[str, Any]:
    """The problem-details body for ``status``; ``detail`` defaults to the reason phrase."""
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    if detail is None:
        detail = phrase
    elif not isinstance(detail, str):
        detail = json.dumps(_clean(detail), ensure_ascii=False, allow_nan=False)
    body: dict[str, Any] = _clean({
        "type": type_, "title": title or phrase, "status": status, "detail": detail,
        "errors": [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
                   for e in errors]})
    return body


def problem_response(status: int, detail: Any = None, *, errors: Iterable[Mapping[str, Any]] = (),
                     headers: Mapping[str, str] | None = None) -> Response:
    """A response carrying :func:`problem` (``application/problem+json``)."""
    body = json.dumps(problem(status, detail, errors=errors), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")
    return Response(body, status_code=status, headers=dict(headers or {}), media_type=CONTENT_TYPE)


def validation_errors(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic/FastAPI validation errors as ``errors[]`` items: location, message and type only
    (never ``input`` or ``ctx``: the client's value may be a secret or not encodable)."""
    return [{"loc": [part if isinstance(part, int) else str(part) for part in e.get("loc", ())],
             "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))} for e in errors]


def validation_detail(errors: list[dict[str, Any]]) -> str:
    """One sentence for a 422: the invalid inputs by location (``body.quantity: Input should be...``)."""
    if not errors:
        return "the request is invalid"
    parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5]]
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more
