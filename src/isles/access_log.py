"""The HTTP access log: one line per request on the ``isles.access`` logger.

    GET /api/material/lots 200 3.1ms service=material request_id=5f0c...

Method, path, status, duration in milliseconds, the service that answered and a request id
(the client's ``X-Request-ID`` if it sent a sane one, else a new one; echoed in the response's
``X-Request-ID`` header so a client can quote it). Never the query string (it may carry a token
or a search for a person's name) and never a header (``Authorization``, cookies). The fields are
also attached to the record (``extra``) for a structured formatter.
"""
from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["AccessLogMiddleware", "REQUEST_ID_HEADER", "logger"]

logger = logging.getLogger("isles.access")

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def _service(path: str) -> str:
    parts = path.split("/")
    return parts[2].replace("-", "_") if len(parts) > 2 and parts[1] == "api" and parts[2] else "-"


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _SANE_ID.fullmatch(text):
                return text
            break
    return uuid.uuid4().hex


class AccessLogMiddleware:
    """ASGI middleware writing the access line when the response has started (or failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        status: list[int] = []

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode("latin-1"))]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            code = status[0] if status else 500
            # the raw path, made printable: a hostile path must not forge log lines
            path = scope.get("path", "").encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
            path = path.replace("\n", "\\n").replace("\r", "\\r")
            elapsed = (time.perf_counter() - started) * 1000
            fields: dict[str, Any] = {"method": scope.get("method", "-"), "path": path, "status": code,
                                      "duration_ms": round(elapsed, 1), "service": _service(path),
                                      "request_id": request_id}
            logger.info("%s %s %s %.1fms service=%s request_id=%s", fields["method"], path, code, elapsed,
                        fields["service"], request_id, extra={"isles_access": fields})
