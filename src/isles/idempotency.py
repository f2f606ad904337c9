"""Idempotent HTTP commands: a retried POST/PUT/PATCH/DELETE with the same ``Idempotency-Key``
returns the first response, byte for byte, and does nothing twice.

A client that lost the answer to "issue 5 kg of lot L into work order W" cannot know whether it
happened; retrying without this would issue 10 kg. With ``Idempotency-Key: <any unique string>``:

* the key (scoped to the caller: two users' keys never collide), a fingerprint of the request
  (method, path, query, body bytes, caller) and the response (status, headers, body bytes) are
  written to ``isles_idempotency_keys`` in the service's **own** database, in the **same
  transaction** as the command's effect: either both commit or neither does. A retry finds the
  row and gets the stored response (plus ``Idempotent-Replayed: true``); a request that failed
  and rolled back left no row, so its retry runs again.
* the same key with a different request is refused with 422, naming the first request.
* two requests with one key at once: the second waits until the first finishes, then replays
  its response (on PostgreSQL the key row's insert blocks on the first transaction's uncommitted
  row; on SQLite the service's single connection already serialises them). It never runs twice.
* keys expire after a window (``Idempotency(ttl=...)``, else ``ISLES_IDEMPOTENCY_TTL`` in
  seconds or with a unit - ``90s``, ``30m``, ``24h``, ``7d`` - else 24 hours); an expired key is
  a new key, and expired rows are purged in batches.

How it meets "same transaction": the routes get their unit of work from :data:`isles.http.Uow`.
When the request carries the header, that dependency opens a :class:`KeyedUnitOfWork` whose
``commit()`` (called by the route, or after it) writes everything - state, outbox - but holds
the database COMMIT back. The :class:`IdempotencyMiddleware` (installed by
:func:`isles.api.create_app`) receives the response FastAPI produced, stores it in the key row
and only then commits, and only then sends the first byte. A crash before the commit loses
effect and response together; the client saw nothing and retries.

Declare it on the service: ``Service("material", ..., idempotency=Idempotency())``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, AsyncIterator, Protocol

from fastapi import Depends, Header, HTTPException, Request, status
from sqlalchemy import MetaData, Table, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from isles.errors import ConfigurationError
from isles.runtime import ServiceRuntime
from isles.tables import install_idempotency_keys
from isles.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from fastapi import APIRouter
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["COMMANDS", "DEFAULT_TTL", "ENV_TTL", "HEADER", "Idempotency", "IdempotencyMiddleware",
           "KeyedUnitOfWork", "applies", "keyed_unit_of_work", "parse_ttl", "purge_expired"]

log = logging.getLogger("isles.idempotency")

#: the HTTP methods that change something and so honour the header
COMMANDS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = "Idempotency-Key"
#: added to a replayed response (the rest is the first response, byte for byte)
REPLAYED = "Idempotent-Replayed"
ENV_TTL = "ISLES_IDEMPOTENCY_TTL"
DEFAULT_TTL = timedelta(hours=24)
#: response headers not stored: per-response (date, server) or secret (cookies)
_NOT_STORED = frozenset({b"date", b"server", b"set-cookie"})
_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII, like the IETF draft's examples
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MIDDLEWARE = "isles.idempotency.middleware"  # scope key: the middleware wraps this request
_HOLD = "isles.idempotency.hold"  # scope key: the held unit of work of this request


class Service(Protocol):
    """What this module needs of an :class:`isles.Service` (not imported: the Service imports this)."""

    name: str
    metadata: MetaData
    router: "APIRouter | None"
    idempotency: "Idempotency | None"

    @property
    def runtime(self) -> ServiceRuntime: ...


def parse_ttl(text: str) -> timedelta:
    """``"86400"``, ``"90s"``, ``"30m"``, ``"24h"``, ``"7d"`` -> a positive timedelta."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"] if match else 0
    if seconds <= 0:
        raise ConfigurationError(f"{ENV_TTL}={text!r} is not a positive duration",
                                 fix=f"set {ENV_TTL} to seconds or a number with s, m, h or d (e.g. 24h)")
    return timedelta(seconds=seconds)


@dataclass
class Idempotency:
    """A service's declaration that its HTTP commands honour ``Idempotency-Key``.

    ``ttl``: how long a key is remembered (a timedelta or seconds); None reads ``ISLES_IDEMPOTENCY_TTL``
    when first needed, else 24 hours. ``purge_batch`` rows of expired keys are deleted at most every
    ``purge_every`` seconds per process, after a keyed response went out (never in its transaction).
    """

    ttl: timedelta | float | None = None
    purge_batch: int = 500
    purge_every: float = 60.0
    _window: timedelta | None = field(default=None, init=False, repr=False)
    _last_purge: float = field(default=0.0, init=False, repr=False)

    @property
    def window(self) -> timedelta:
        if self._window is None:
            if self.ttl is None:
                raw = os.environ.get(ENV_TTL)
                self._window = parse_ttl(raw) if raw else DEFAULT_TTL
            else:
                self._window = self.ttl if isinstance(self.ttl, timedelta) else timedelta(seconds=float(self.ttl))
            if self._window <= timedelta(0):
                raise ConfigurationError(f"Idempotency(ttl={self.ttl!r}) is not positive",
                                         fix="give a positive timedelta or number of seconds")
        return self._window

    def attach(self, service: "Service") -> None:
        """Called by ``Service(..., idempotency=...)``: add the keys table to the service's metadata
        (so ``isles migrate up`` creates it, as isles step ``idempotency:1``) and document the
        header on each of its command routes."""
        install_idempotency_keys(service.metadata)
        if service.router is not None:
            document(service.router)

    def purge_due(self) -> bool:
        now = time.monotonic()
        if now - self._last_purge < self.purge_every:
            return False
        self._last_purge = now
        return True


def _header(key: str | None = Header(
        None, alias=HEADER, min_length=1, max_length=255,
        description="Makes the command safe to retry: a retry with the same key (by the same caller) returns "
                    "the first response byte for byte and changes nothing; the same key with a different "
                    "request is refused with 422. Keys are kept for the service's window (default 24 h).")) -> None:
    """Only documents and bounds the header; :func:`keyed_unit_of_work` acts on it."""


def document(router: "APIRouter") -> None:
    """Put the ``Idempotency-Key`` header parameter on every POST/PUT/PATCH/DELETE route of
    ``router``, and of the routers it includes (FastAPI builds a mounted route from its original's
    dependencies, so the header reaches the app's routes and its OpenAPI)."""
    from fastapi.routing import APIRoute
    for route in router.routes:
        if isinstance(route, APIRoute):
            if (route.methods or set()) & COMMANDS and not any(getattr(d, "dependency", None) is _header
                                                    for d in route.dependencies):
                route.dependencies.append(Depends(_header))
        elif getattr(route, "original_router", None) is not None:  # an included router (FastAPI >= 0.16x)
            document(route.original_router)  # type: ignore[attr-defined]
        elif getattr(route, "routes", None):  # a router-like mount
            document(route)  # type: ignore[arg-type]


def applies(service: "Service", request: Request) -> bool:
    """True if ``request`` is a command with the header to a service that declares idempotency."""
    return (getattr(service, "idempotency", None) is not None and request.method in COMMANDS
            and HEADER.lower() in request.headers)


# -- the held transaction -----------------------------------------------------------------------
class _HeldSession(AsyncSession):
    """A session whose ``commit()`` only flushes while held: the real COMMIT waits for the response."""

    held = True
    commit_asked = False

    async def commit(self) -> None:
        if self.held:
            await self.flush()
            self.commit_asked = True
            return
        await super().commit()


class KeyedUnitOfWork(UnitOfWork):
    """The unit of work of a request with an ``Idempotency-Key``: ``commit()`` writes state and outbox
    rows but the transaction commits only with the stored response (see :class:`IdempotencyMiddleware`)."""

    def __init__(self, runtime: ServiceRuntime):
        super().__init__(runtime)
        self.session = _HeldSession(bind=runtime.database.engine, expire_on_commit=False)

    @property
    def effect_pending(self) -> bool:
        """The route committed (or returned cleanly): its effect waits for the response to commit with."""
        return not self._finished or self.session.commit_asked  # type: ignore[attr-defined]

    async def commit_with(self, table: Table, key_id: str, status_code: int, headers: list[list[str]],
                          body: bytes) -> None:
        """Store the response in the key row and commit it with everything the route wrote."""
        session: _HeldSession = self.session  # type: ignore[assignment]
        await session.execute(update(table).where(table.c.key_id == key_id)
                              .values(status=status_code, headers=json.dumps(headers), body=body))
        session.held = False
        if not self._finished:
            await self.commit()  # the route relied on the dependency's commit: flush, outbox, commit
        else:
            await session.commit()
            # the route's commit told the relay about rows that are only visible now
            self.runtime.committed(len(self._published))


@dataclass
class _Hold:
    """What the dependency leaves the middleware: the held unit of work and where the response goes."""

    uow: KeyedUnitOfWork
    table: Table
    key_id: str
    idempotency: Idempotency
    closed: bool = False

    async def finish(self, status_code: int, headers: list[list[str]], body: bytes) -> None:
        if self.closed:
            return
        try:
            if self.uow.effect_pending:
                await self.uow.commit_with(self.table, self.key_id, status_code, headers, body)
        finally:
            await self.close()

    async def close(self, exc: BaseException | None = None) -> None:
        """Roll back whatever did not commit and give the connection back."""
        if self.closed:
            return
        self.closed = True
        exc = exc or _Abandoned()
        await self.uow.__aexit__(type(exc), exc, None)


class _Abandoned(Exception):
    """Closes a held unit of work that never got its response: it rolls back."""


class _Replay(Exception):
    """Raised by the dependency to skip the route: the middleware sends the stored response."""

    def __init__(self, status_code: int, headers: list[list[str]], body: bytes):
        super().__init__("idempotent replay")
        self.status_code, self.headers, self.body = status_code, headers, body


# -- the request side ---------------------------------------------------------------------------
def _identity(request: Request) -> str:
    """Who is calling: the authenticated principal's user id (a router-level guard caches it before
    the unit of work is asked for), else a hash of the credential sent, else anonymous."""
    principal = getattr(request.state, "isles_principal", None)
    if principal is not None:
        return f"user:{principal.user_id}"
    credential = request.headers.get("authorization")
    if credential:
        return "credential:" + hashlib.sha256(credential.encode()).hexdigest()
    return "anonymous"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:  # length-prefixed, so no two different requests concatenate alike
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


async def _claim(uow: KeyedUnitOfWork, table: Table, row: dict[str, Any]) -> Any:
    """Insert the key row in ``uow``'s transaction; None if it is ours, else the stored row.

    On PostgreSQL the insert waits for a concurrent transaction holding the same key; when that
    one commits, ``ON CONFLICT DO NOTHING`` inserts nothing and the row is read back.
    """
    dialect = uow.session.bind.dialect.name  # type: ignore[union-attr]
    for _ in range(3):
        if dialect in ("postgresql", "sqlite"):
            from sqlalchemy.dialects import postgresql, sqlite
            upsert = postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
            result = await uow.execute(upsert.values(row).on_conflict_do_nothing(index_elements=["key_id"]))
            if result.rowcount == 1:
                return None
        elif await uow.scalar(select(table.c.key_id).where(table.c.key_id == row["key_id"])) is None:
            await uow.execute(insert(table).values(row))
            return None
        stored = (await uow.execute(select(table).where(table.c.key_id == row["key_id"]))).one_or_none()
        if stored is None:
            continue  # purged between the two statements: try again
        expires = stored.expires_at if stored.expires_at.tzinfo else stored.expires_at.replace(tzinfo=timezone.utc)
        if expires > row["created_at"]:
            return stored
        await uow.execute(delete(table).where(table.c.key_id == row["key_id"]))  # expired: a new key
    raise HTTPException(status.HTTP_409_CONFLICT, f"{HEADER} {row['idempotency_key']!r} is in use; retry")


@asynccontextmanager
async def keyed_unit_of_work(request: Request, service: "Service") -> AsyncIterator[UnitOfWork]:
    """The unit of work of a command carrying ``Idempotency-Key`` (what :data:`isles.http.Uow` yields).

    Replays the stored response (the route does not run), refuses a reused key with 422, or claims
    the key in the transaction the route then writes in.
    """
    if not request.scope.get(_MIDDLEWARE):
        raise ConfigurationError(
            f"a request to {request.url.path} carries {HEADER} but the app has no IdempotencyMiddleware, "
            "so the response could not be stored with the effect", service=service.name,
            fix="serve the service with isles.api.create_app(), or app.add_middleware("
                "isles.idempotency.IdempotencyMiddleware)")
    idempotency = service.idempotency
    if idempotency is None:
        raise ConfigurationError("got a keyed unit of work but declares no idempotency", service=service.name,
                                 fix="declare Service(..., idempotency=Idempotency()), or check applies() first")
    key = request.headers[HEADER.lower()]
    if not _KEY.fullmatch(key):
        raise HTTPException(status.HTTP_400_BAD_REQUEST,
                            f"{HEADER} must be 1 to 255 visible ASCII characters (e.g. a UUID)")
    identity = _identity(request)
    body = await request.body()
    fingerprint = _digest(request.method.encode(), request.url.path.encode(),
                          request.scope.get("query_string", b""), identity.encode(), body)
    table = install_idempotency_keys(service.metadata)
    now = datetime.now(timezone.utc)
    row: dict[str, Any] = {"key_id": _digest(identity.encode(), key.encode()), "idempotency_key": key,
                           "request_hash": fingerprint, "method": request.method, "path": request.url.path,
                           "created_at": now, "expires_at": now + idempotency.window}
    uow = KeyedUnitOfWork(service.runtime)
    await uow.__aenter__()
    try:
        stored = await _claim(uow, table, row)
    except BaseException as exc:
        await uow.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    if stored is not None:
        await uow.__aexit__(_Abandoned, _Abandoned(), None)
        if stored.request_hash != fingerprint:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                                f"{HEADER} {key!r} was already used for a different request ({stored.method} "
                                f"{stored.path} at {stored.created_at:%Y-%m-%dT%H:%M:%SZ}); use a new key for a "
                                "new request")
        if stored.status is None:  # cannot be seen committed; kept as a guard
            raise HTTPException(status.HTTP_409_CONFLICT, f"the request with {HEADER} {key!r} is still in progress")
        raise _Replay(stored.status, json.loads(stored.headers or "[]"), bytes(stored.body or b""))
    hold = _Hold(uow, table, row["key_id"], idempotency)
    request.scope[_HOLD] = hold
    try:
        yield uow
    except BaseException as exc:
        # A route that committed and then raised (e.g. a refused login that counts the failure)
        # keeps its effect: the middleware stores the error response with it. Otherwise roll back.
        if not uow.session.commit_asked:  # type: ignore[attr-defined]
            await hold.close(exc)
        raise
    # The route returned: the middleware stores its response and commits before the first byte
    # goes out, or (no response seen) rolls back - in its own ``finally``, after this exit.


# -- the response side --------------------------------------------------------------------------
class IdempotencyMiddleware:
    """ASGI middleware: hands a keyed command's complete response to its held unit of work, which
    stores it and commits, before any byte of it is sent; sends replays. Passes every other
    request through untouched (no buffering)."""

    def __init__(self, app: "ASGIApp"):
        self.app = app

    async def __call__(self, scope: "Scope", receive: "Receive", send: "Send") -> None:
        if scope["type"] != "http" or scope.get("method") not in COMMANDS:
            await self.app(scope, receive, send)
            return
        scope[_MIDDLEWARE] = True
        buffered: list["Message"] = []

        async def capture(message: "Message") -> None:
            hold: _Hold | None = scope.get(_HOLD)
            if hold is None or hold.closed and not buffered:
                await send(message)
                return
            buffered.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                start = buffered[0]
                headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in start.get("headers", [])
                           if k.lower() not in _NOT_STORED]
                body = b"".join(m.get("body", b"") for m in buffered[1:])
                await hold.finish(start["status"], headers, body)  # commit before the first byte goes out
                for held in buffered:
                    await send(held)
                buffered.clear()

        try:
            await self.app(scope, receive, capture)
        except _Replay as replay:
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in replay.headers]
            await send({"type": "http.response.start", "status": replay.status_code,
                        "headers": headers + [(REPLAYED.lower().encode(), b"true")]})
            await send({"type": "http.response.body", "body": replay.body})
        finally:
            hold = scope.get(_HOLD)
            if hold is not None:
                await hold.close()
        if hold is not None and hold.idempotency.purge_due():
            try:
                await purge_expired(hold.uow.runtime, hold.table, batch=hold.idempotency.purge_batch)
            except Exception:  # a purge that fails now runs again later; the response went out
                log.exception("purging expired idempotency keys of %s failed", hold.uow.service)


async def purge_expired(runtime: ServiceRuntime, table: Table, *, batch: int = 500,
                        now: datetime | None = None) -> int:
    """Delete up to ``batch`` expired keys of one service in one short transaction; returns how many."""
    now = now or datetime.now(timezone.utc)
    async with UnitOfWork(runtime) as uow:
        ids = select(table.c.key_id).where(table.c.expires_at < now).order_by(table.c.expires_at).limit(batch)
        doomed = list(await uow.scalars(ids))
        if doomed:
            await uow.execute(delete(table).where(table.c.key_id.in_(doomed)))
    return len(doomed)


async def purge_all_expired(runtime: ServiceRuntime, table: Table, *, batch: int = 500,
                            now: datetime | None = None) -> int:
    """Purge batch after batch until no expired key is left (e.g. from a maintenance job)."""
    total = 0
    while True:
        done = await purge_expired(runtime, table, batch=batch, now=now)
        total += done
        if done < batch:
            return total


def keys_table(service: "Service") -> Table:
    """The ``isles_idempotency_keys`` table of a service that declares idempotency."""
    return install_idempotency_keys(service.metadata)

