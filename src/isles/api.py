"""One FastAPI application for the services of a System that run in this process.

Each service's router is mounted under ``/api/<service>`` (``work_order`` -> ``/api/work-order``)
and tagged with its name, so ``/docs`` groups the endpoints by the service that owns them.

``/docs`` (Swagger UI) and ``/redoc`` load their scripts and styles from ``/docs/static``, files
the ``fastapi-offline`` package ships: FastAPI's defaults come from a CDN, and a plant network
often has no way out, so the pages stayed blank there.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from datetime import datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, AsyncIterator, Awaitable, Callable

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator
from pydantic.alias_generators import to_camel
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from isles.database import is_connection_error
from isles.http import serve
from isles.idempotency import IdempotencyMiddleware
from isles.security.access import PUBLIC, document_access
from isles.system import System


class ApiModel(BaseModel):
    """Base of request and response bodies: camelCase JSON like the seeds' payloads, built from ORM rows."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)

    @field_validator("*", mode="after")
    @classmethod
    def _clean(cls, value: Any) -> Any:
        """Times are UTC (SQLite hands them back without a zone); text has no NUL characters
        (PostgreSQL cannot store them, so they would fail as a server error instead of a 422)."""
        if isinstance(value, datetime) and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        if isinstance(value, str) and "\x00" in value or isinstance(value, list) and any(
                isinstance(v, str) and "\x00" in v for v in value):
            raise ValueError("text must not contain NUL characters")
        return value


#: A non-negative quantity (up to 12 digits before the point, 6 after) held as ``Decimal`` - so
#: splitting a lot ten times does not drift like binary floats - and written as a JSON number.
Quantity = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6, allow_inf_nan=False),
                     PlainSerializer(float, return_type=float, when_used="json")]
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

    app = FastAPIOffline(title=title or f"{system.name} (isles)", lifespan=lifespan, static_url=DOCS_STATIC,
                         description=f"Services of the '{system.name}' system; each owns its database.")
    _answer_database_errors(app)
    app.add_middleware(IdempotencyMiddleware)  # h-idem: keyed commands commit with their stored response
    for name, service in system.services.items():
        if services is not None and name not in services:
            continue
        if service.router is not None:
            app.include_router(service.router, prefix=service_prefix(name), tags=[name],
                               dependencies=[Depends(serve(service))])

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
    return app


def _service_of(request: Request) -> str:
    """The service whose route answered (its router is mounted under /api/<service>)."""
    parts = request.url.path.split("/")
    return parts[2].replace("-", "_") if len(parts) > 2 and parts[1] == "api" else "?"


def _answer_database_errors(app: FastAPI) -> None:
    """Turn what the database says about a request into answers a client can act on, not a 500.

    * two requests changed one row at once: the second one's optimistic version check failed
      (``Versioned`` entities) - 409, reload and retry;
    * a unique or foreign-key constraint refused a write that a route did not check first - 409;
    * the service's database cannot be reached - 503 (the request may be retried later).
    Never the SQL or its parameters: they can hold data the client should not see.
    """

    @app.exception_handler(StaleDataError)
    async def stale(request: Request, exc: StaleDataError) -> JSONResponse:
        return JSONResponse({"detail": f"service '{_service_of(request)}': the record was changed by another "
                                       "request at the same time; reload it and try again"}, status_code=409)

    @app.exception_handler(IntegrityError)
    async def integrity(request: Request, exc: IntegrityError) -> JSONResponse:
        return JSONResponse({"detail": f"service '{_service_of(request)}': the change conflicts with an existing "
                                       "record (a duplicate, or a reference to something that is gone)"},
                            status_code=409)

    @app.exception_handler(DBAPIError)
    async def unavailable(request: Request, exc: DBAPIError) -> JSONResponse:
        if not is_connection_error(exc):
            raise exc
        return JSONResponse({"detail": f"service '{_service_of(request)}': its database is unavailable; "
                                       "try again shortly"}, status_code=503, headers={"Retry-After": "5"})
