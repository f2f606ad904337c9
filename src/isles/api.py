"""One FastAPI application for the services of a System that run in this process.

Each service's router is mounted under ``/api/<service>`` (``work_order`` -> ``/api/work-order``)
and tagged with its name, so ``/docs`` groups the endpoints by the service that owns them.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from ``/docs/static``, files
the ``fastapi-offline`` package ships: FastAPI's defaults come from a CDN, and a plant network
often has no way out, so the pages stayed blank there.
"""
from __future__ import annotations

import email.message
import logging
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, AsyncIterator, Awaitable, Callable

import orjson
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator
from pydantic.alias_generators import to_camel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Message, Receive, Scope, Send

from isles import problems
from isles.access_log import AccessLogMiddleware
from isles.api_docs import document_api
from isles.database import is_connection_error, outage_reason
from isles.http import refuse_unknown_query, serve
from isles.idempotency import IdempotencyMiddleware
from isles.security.access import PUBLIC, document_access
from isles.system import System

log = logging.getLogger("isles.api")
#: Seconds a client is told to wait before retrying a request its service could not serve.
RETRY_AFTER = 5


class ApiModel(BaseModel):
    """Base of request bodies (and, through :class:`ApiOut`, of responses): camelCase JSON like the
    seeds' payloads, built from ORM rows.

    A field the model does not declare is refused (422 ``extra_forbidden`` naming it): a misspelt
    optional field (``"lotNumbr"``) would otherwise be dropped silently and the request succeed
    with a default the client did not mean."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True,
                              extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _clean(cls, value: Any) -> Any:
        """Times are UTC (SQLite hands them back without a zone); text has no NUL characters and
        no lone surrogates (``"\\ud800"`` in JSON): no database can store them, so they would fail
        as a server error instead of a 422."""
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        for text in (value,) if isinstance(value, str) else value if isinstance(value, list) else ():
            if isinstance(text, str) and not text.isascii():
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError("text must be valid Unicode (a lone surrogate is not)") from None
            if isinstance(text, str) and "\x00" in text:
                raise ValueError("text must not contain NUL characters")
        return value


class ApiOut(ApiModel):
    """Base of response bodies: like :class:`ApiModel` but open (no ``additionalProperties: false``
    in the OpenAPI), so a client that checks answers against the schema keeps working when a later
    version adds a field."""

    model_config = ConfigDict(extra="ignore")


def _quantity_json(value: Decimal | int | float) -> int | float:
    """A quantity as a JSON number without trailing zeros: ``5``, ``2.5``, ``0.125`` (never
    ``5.000000`` or ``5.0``). Whole quantities are written exactly whatever their size; others as
    the shortest float that reads back the same (exact to 15 significant digits)."""
    value = value if isinstance(value, Decimal) else Decimal(str(value))
    return int(value) if value == value.to_integral_value() else float(value)


#: A non-negative quantity (up to 12 digits before the point, 6 after) held as ``Decimal`` - so
#: splitting a lot ten times does not drift like binary floats - and written as a JSON number
#: without trailing zeros (``5``, ``2.5``).
Quantity = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False),
                     PlainSerializer(_quantity_json, return_type=int | float, when_used="json")]
#: A quantity that may be negative (a counter-entry, a correction), written like :data:`Quantity`.
SignedQuantity = Annotated[Decimal, Field(max_digits=18, decimal_places=6, allow_inf_nan=False),
                           *Quantity.__metadata__[1:]]


#: Where Swagger UI's and ReDoc's scripts, styles and icon are served from (no CDN).
DOCS_STATIC = "/docs/static"


def service_prefix(name: str) -> str:
    return f"/api/{name.replace('_', '-')}"


def create_app(system: System, *, start: Callable[[], Awaitable[Any]] | None = None,
               title: str | None = None, services: list[str] | None = None) -> FastAPI:
    """The ASGI app; ``start`` runs on start-up (default: ``system.start()``), stop on shutdown.

    ``services`` limits the routes to those services (one process per service)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start is not None:
            await start()
        elif not system.runtimes:
            await system.start()
        try:
            yield
        finally:
            await system.stop()

    _check_settings(system)
    app = FastAPIOffline(title=title or f"{system.name} (isles)", lifespan=lifespan, static_url=DOCS_STATIC,
                         description=f"Services of the '{system.name}' system; each owns its database.")
    # Middleware added first runs innermost: a keyed command commits with its stored response
    # (idempotency) inside the strict JSON check, and both inside the outage answers, so a database
    # that fails at the keyed commit is still a 503.
    app.add_middleware(IdempotencyMiddleware)
    _answer_invalid_bodies(app)
    _answer_database_errors(app)
    _answer_problems(app)
    app.add_middleware(AccessLogMiddleware)  # outermost: one line per request on the isles.access logger
    for name, service in system.services.items():
        if services is not None and name not in services:
            continue
        if service.router is not None:
            app.include_router(service.router, prefix=service_prefix(name), tags=[name],
                               dependencies=[Depends(serve(service)), Depends(refuse_unknown_query)])

    @app.get("/health", tags=["operations"], dependencies=[PUBLIC])
    async def health() -> JSONResponse:
        """Each running service's database round-trip; 503 if any is down."""
        checks = await system.health()
        body = {h.service: {"ok": h.ok, "latencyMs": round(h.latency_ms, 2), "detail": h.detail} for h in checks}
        return JSONResponse(body, status_code=200 if all(h.ok for h in checks) else 503)

    @app.get("/status", tags=["operations"], dependencies=[PUBLIC])
    async def status() -> list[dict[str, Any]]:
        """Outbox backlog (and its oldest row's age), inbox and dead letters per service."""
        return [{to_camel(k): v for k, v in vars(s).items()} for s in await system.status()]

    # each route's requirement in the OpenAPI (isles.security.access); the offline docs pages are public
    document_access(app, public_paths=("/docs", "/redoc"))
    # schema names without module paths, the error answers on every operation (isles.api_docs)
    document_api(app, services=list(system.services))
    return app


def _check_settings(system: System) -> None:
    """Settings an app would otherwise trip on per request, checked when it is built.

    A short ``ISLES_AUTH_SECRET`` let the server start and then answer every login with a 500;
    a setting that names no service (``MATERAIL_DATABASE_URL``) was ignored in silence."""
    from isles.config import check_auth_secret, warn_settings_for_no_service

    check_auth_secret(system.env)
    warn_settings_for_no_service(system.env, system.services)


def _service_of(request: Request) -> str:
    """The service whose route answered (its router is mounted under /api/<service>)."""
    return _service_of_path(request.url.path)


def _service_of_path(path: str) -> str:
    parts = path.split("/")
    return parts[2].replace("-", "_") if len(parts) > 2 and parts[1] == "api" else "?"


def _answer_database_errors(app: FastAPI) -> None:
    """Turn what the database says about a request into answers a client can act on, not a 500.

    * two requests changed one row at once: the second one's optimistic version check failed
      (``Versioned`` entities) - 409, reload and retry;
    * a unique or foreign-key constraint refused a write that a route did not check first - 409;
    * the service's database cannot be used (down, dropped, CONNECT revoked, out of
      connections) - 503 with ``Retry-After`` (see :class:`OutageAnswers`).
    Never the SQL or its parameters: they can hold data the client should not see.
    """
    app.add_middleware(OutageAnswers)

    @app.exception_handler(StaleDataError)
    async def stale(request: Request, exc: StaleDataError) -> Response:
        return problems.problem_response(409, f"service '{_service_of(request)}': the record was changed by "
                                              "another request at the same time; reload it and try again")

    @app.exception_handler(IntegrityError)
    async def integrity(request: Request, exc: IntegrityError) -> Response:
        return problems.problem_response(409, f"service '{_service_of(request)}': the change conflicts with an "
                                              "existing record (a duplicate, or a reference to something that is gone)")


class OutageAnswers:
    """Answer 503 with ``Retry-After`` when a route fails because its service's database is away.

    Whatever layer the failure surfaces from - SQLAlchemy's DBAPIError, a bare OSError or
    timeout from the connect, isles' DatabaseUnavailable - the client gets a response it can act
    on instead of a 500 (which also closed its keep-alive connection). An outage is logged once
    when it starts and once when the service answers again: a traceback per request would bury
    the one line that matters under thousands.
    """

    def __init__(self, app: Any):
        self.app = app
        self.down: dict[str, str] = {}  # service -> what its database said

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        service = _service_of_path(scope.get("path", ""))
        status: list[int] = []

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if status or not is_connection_error(exc):
                raise
            self._went_down(service, exc)
            await problems.problem_response(
                503, f"service '{service}': its database is unavailable; try again shortly",
                headers={"Retry-After": str(RETRY_AFTER)})(scope, receive, send)
            return
        if service in self.down and status and status[0] < 500:
            self._came_back(service)

    def _went_down(self, service: str, exc: BaseException) -> None:
        if service not in self.down:
            self.down[service] = outage_reason(exc)
            log.warning("service '%s': its database is unavailable (%s); its routes answer 503 until it is back",
                        service, self.down[service])

    def _came_back(self, service: str) -> None:
        reason = self.down.pop(service)
        log.warning("service '%s': its database is back (it was: %s)", service, reason)


# -- bodies no client should send ------------------------------------------------------------------
def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI would parse a body with this Content-Type as JSON (none given counts)."""
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class StrictJsonBodies:
    """Refuse, with a 422, a JSON body that strict JSON (RFC 8259, as orjson reads it) refuses.

    Python's ``json.loads``, which FastAPI uses, accepts ``NaN``, ``Infinity``, numbers that
    overflow to infinity (``1e400``) and lone surrogate escapes (``"\\ud800"``). None of them is
    JSON and none can be written back out: the validation answer that echoed them failed to
    encode, and one unauthenticated request got a 500 that also closed its keep-alive
    connection. Reading the body here, before routing, keeps every route of every service safe.
    """

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        if not _is_json(headers.get("content-type")):
            await self.app(scope, receive, send)
            return
        body, more, messages = b"", True, []
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if body:
            try:
                orjson.loads(body)
            except orjson.JSONDecodeError as exc:
                errors = [{"loc": ["body", exc.pos], "msg": f"JSON decode error: {exc.msg}", "type": "json_invalid"}]
                await problems.problem_response(422, problems.validation_detail(errors), errors=errors)(
                    scope, receive, send)
                return
        await self.app(scope, _replay(messages, receive), send)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A ``receive`` that hands out the messages already read, then the real ones."""
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()
    return replayed


def _answer_invalid_bodies(app: FastAPI) -> None:
    """Bodies strict JSON refuses get a 422 before routing (see :class:`StrictJsonBodies`); the
    validation answer itself never echoes input, so it always encodes (:mod:`isles.problems`)."""
    app.add_middleware(StrictJsonBodies)


def _answer_problems(app: FastAPI) -> None:
    """Every HTTP error and every invalid request as RFC 9457 problem details (:mod:`isles.problems`)."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return problems.problem_response(exc.status_code, exc.detail, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = problems.validation_errors(exc.errors())
        return problems.problem_response(422, problems.validation_detail(errors), errors=errors)
