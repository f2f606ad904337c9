"""Request authentication for every service's HTTP API: access tokens, API tokens, roles, scopes.

A service's package may import only ``isles`` and itself, so the verification every API needs
lives here, while issuing credentials (login, refresh, API token creation) belongs to the
service that owns users (``mes.auth``).

Two kinds of bearer credential are accepted:

**Access tokens** are short-lived JWTs (HS256, default 15 minutes) that auth issues at login
and refresh. Any service verifies them locally with the shared secret, without a call or a
query: ``sub`` (user id), ``name``, ``roles``, ``sid`` (session), ``iss``/``aud`` = ``isles``,
``typ`` = ``access``. The secret comes from ``ISLES_AUTH_SECRET`` (at least 32 characters).
When it is unset (development), a random secret is created once in ``ISLES_DATA_DIR``
(default ``./data``) as ``auth_secret.key`` with mode 0600 and reused by every process on that
machine; it is never logged and never part of an error message. Because the secret is
symmetric, every service that verifies could also mint tokens: production deployments keep
``ISLES_AUTH_SECRET`` in a secret store. Revocation (logout, deactivation) stops refreshes at
once and access tokens within their short lifetime.

**API tokens** are opaque random strings (``isat_`` + 256 bits), shown once. Auth stores only
their SHA-256 hash. Other services must accept them *without reading auth's database*, so the
design follows isles' own promise 5 (copies that never go backwards): auth publishes
``<source>.created/.updated/.revoked`` events carrying the token's hash, owner, roles, scopes,
expiry and revoked flag, and each verifying service keeps a replica table ``isles_api_tokens``
in its own database, maintained by an ordinary :class:`isles.Replica` (upsert, version guard).
:func:`accept_api_tokens` installs table and replica on a service. Verifying is then one indexed
lookup by hash in the service's own database. Why this rather than self-contained signed API
tokens with a replicated revocation list: the token stays opaque (a leaked token reveals
nothing, scopes can change without reissuing it), revocation and scope changes use the exact
same replication path as creation (so a verifier never knows a token without also knowing it
was revoked, ordered by the token's version), and it needs no second signing key. The cost is
eventual consistency: a new token works at another service once the event has arrived
(milliseconds in-process), and a revocation takes effect there when its event arrives; the
owning service (auth) checks its own table and sees both at once. The published value is a
SHA-256 of a 256-bit random secret, useless for authenticating.

An API token acts for its owner with at most the owner's roles, further limited by its scopes
(``resource:read``, ``resource:write``, ``*``); a user's access token has every scope (``*``).

Use from a service's ``api.py``::

    guard = Guard(service)                          # JWT + API tokens checked in this service's DB
    router = APIRouter(dependencies=[Depends(guard.authenticated())])

    @router.post("/sites", dependencies=[Depends(guard.require_roles("engineer", "admin")),
                                         Depends(guard.require_scopes("resource:write"))])
    async def post_site(..., principal: Principal = Depends(guard.authenticated())): ...

and in its ``service_def.py`` (once, at import time, before the System is built)::

    accept_api_tokens(service, source="mes.auth.api_token")

Missing or invalid credentials give 401 (with ``WWW-Authenticate: Bearer``), a missing role or
scope 403.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, String, Table, Uuid, select

from isles.errors import ConfigurationError
from isles.replication import Replica

if TYPE_CHECKING:
    from isles.service import Service

__all__ = [
    "API_TOKEN_PREFIX", "ApiTokenLookup", "Guard", "InvalidToken", "Principal", "accept_api_tokens",
    "auth_secret", "authenticated", "constant_time_equals", "decode_access_token", "decode_assertion",
    "hash_token", "issue_access_token", "issue_assertion", "new_api_token", "new_opaque_token", "require_roles",
    "require_scopes",
]

ALGORITHM = "HS256"
ISSUER = "isles"
AUDIENCE = "isles"
API_TOKEN_PREFIX = "isat_"
SECRET_FILE = "auth_secret.key"
MIN_SECRET_LENGTH = 32
DEFAULT_ACCESS_MINUTES = 15
API_TOKENS_TABLE = "isles_api_tokens"

_file_secrets: dict[str, bytes] = {}


class InvalidToken(Exception):
    """A credential that is missing, malformed, expired, revoked or signed with another key.

    The message is safe to return to a client: it never contains the token or the secret.
    """


# -- the secret ---------------------------------------------------------------------------------
def auth_secret(env: Mapping[str, str] | None = None) -> bytes:
    """The HS256 key: ``ISLES_AUTH_SECRET``, else the persisted development secret."""
    env = os.environ if env is None else env
    configured = env.get("ISLES_AUTH_SECRET")
    if configured:
        if len(configured) < MIN_SECRET_LENGTH:
            raise ConfigurationError(
                f"ISLES_AUTH_SECRET is shorter than {MIN_SECRET_LENGTH} characters",
                fix="generate one with `python -c 'import secrets; print(secrets.token_urlsafe(48))'`")
        return configured.encode()
    path = (Path(env.get("ISLES_DATA_DIR") or "data") / SECRET_FILE).absolute()
    cached = _file_secrets.get(str(path))
    if cached is not None and path.exists():
        return cached
    secret = _load_or_create_secret(path)
    _file_secrets[str(path)] = secret
    return secret


def _load_or_create_secret(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigurationError(
                f"the development auth secret {path} is readable by other users (mode {mode:o})",
                fix=f"run `chmod 600 {path}`, or set ISLES_AUTH_SECRET") from None
        for _ in range(50):  # another process may be writing it right now
            value = path.read_bytes().strip()
            if len(value) >= MIN_SECRET_LENGTH:
                return value
            time.sleep(0.01)
        raise ConfigurationError(f"the development auth secret {path} is empty or too short",
                                 fix=f"delete {path} (a new one is generated) or set ISLES_AUTH_SECRET") from None
    value = secrets.token_urlsafe(48).encode()
    with os.fdopen(fd, "wb") as handle:
        handle.write(value + b"\n")
    return value


# -- hashing and comparison ---------------------------------------------------------------------
def hash_token(token: str) -> str:
    """SHA-256 (hex) of a high-entropy token: how refresh and API tokens are stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    return hmac.compare_digest(a.encode() if isinstance(a, str) else a, b.encode() if isinstance(b, str) else b)


def new_opaque_token(nbytes: int = 32) -> str:
    """A URL-safe random token (refresh tokens)."""
    return secrets.token_urlsafe(nbytes)


def new_api_token() -> str:
    """A new API token; the prefix makes leaked tokens easy for secret scanners to spot."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


# -- the principal ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Principal:
    """Who is calling: a user through an access token, or a user's API token."""

    user_id: str
    username: str
    roles: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset({"*"})
    kind: str = "user"  # "user" (access token) or "api_token"
    session_id: str | None = None
    token_id: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def has_role(self, *roles: str) -> bool:
        """True if the principal holds any of ``roles``."""
        return any(role in self.roles for role in roles)

    def has_scope(self, scope: str) -> bool:
        """``*`` grants every scope, ``resource:*`` every scope of ``resource``."""
        if "*" in self.scopes or scope in self.scopes:
            return True
        prefix = scope.split(":", 1)[0]
        return f"{prefix}:*" in self.scopes

    @property
    def user_uuid(self) -> uuid.UUID:
        return uuid.UUID(self.user_id)


# -- access tokens (JWT) ------------------------------------------------------------------------
def access_token_minutes(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    raw = env.get("ISLES_ACCESS_TOKEN_MINUTES") or ""
    try:
        value = int(raw) if raw else DEFAULT_ACCESS_MINUTES
    except ValueError:
        value = 0
    if not 1 <= value <= 24 * 60:
        raise ConfigurationError(f"ISLES_ACCESS_TOKEN_MINUTES={raw!r} is not a number of minutes from 1 to 1440",
                                 fix="unset it (15 minutes) or set e.g. 15")
    return value


def issue_access_token(*, user_id: str | uuid.UUID, username: str, roles: Iterable[str],
                       session_id: str | uuid.UUID | None = None, minutes: int | None = None,
                       extra: Mapping[str, Any] | None = None) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    lifetime = 60 * (minutes if minutes is not None else access_token_minutes())
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER, "aud": AUDIENCE, "typ": "access", "sub": str(user_id), "name": username,
        "roles": sorted(set(roles)), "iat": now, "nbf": now, "exp": now + lifetime, "jti": uuid.uuid4().hex,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    if extra:
        claims.update({k: v for k, v in extra.items() if k not in claims})
    return jwt.encode(claims, auth_secret(), algorithm=ALGORITHM), lifetime


def decode_access_token(token: str) -> Principal:
    """Verify signature, issuer, audience, type and expiry; raise :class:`InvalidToken` otherwise."""
    try:
        claims = jwt.decode(token, auth_secret(), algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                            leeway=5, options={"require": ["exp", "iat", "sub", "iss", "aud"]})
    except jwt.ExpiredSignatureError:
        raise InvalidToken("the access token has expired; refresh it or log in again") from None
    except jwt.PyJWTError:
        raise InvalidToken("the access token is not valid") from None
    if claims.get("typ") != "access" or not isinstance(claims.get("roles", []), list):
        raise InvalidToken("the token is not an access token")
    return Principal(user_id=str(claims["sub"]), username=str(claims.get("name") or ""),
                     roles=frozenset(map(str, claims.get("roles", []))), scopes=frozenset({"*"}), kind="user",
                     session_id=claims.get("sid"), claims=claims)


# -- short-lived signed assertions (e.g. an electronic signature's identity check) ----------------
def issue_assertion(typ: str, claims: Mapping[str, Any], *, seconds: int = 120) -> str:
    """A signed statement of type ``typ`` (``sub`` required) another service verifies with
    :func:`decode_assertion` - e.g. auth's "this user re-entered their password to sign, meaning
    approval" for the quality service. Single use is the consumer's job (store its ``jti``)."""
    if typ == "access":
        raise ConfigurationError("assertions cannot be access tokens", fix="use issue_access_token()")
    now = int(time.time())
    body = {**claims, "iss": ISSUER, "aud": AUDIENCE, "typ": typ, "iat": now, "nbf": now, "exp": now + seconds,
            "jti": uuid.uuid4().hex}
    return jwt.encode(body, auth_secret(), algorithm=ALGORITHM)


def decode_assertion(token: str, typ: str) -> dict[str, Any]:
    """The claims of a valid, unexpired assertion of type ``typ``; :class:`InvalidToken` otherwise."""
    try:
        claims = jwt.decode(token, auth_secret(), algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                            leeway=5, options={"require": ["exp", "iat", "sub", "jti"]})
    except jwt.PyJWTError:
        raise InvalidToken(f"the {typ} assertion is not valid or has expired") from None
    if claims.get("typ") != typ:
        raise InvalidToken(f"the token is not a {typ} assertion")
    return claims


# -- API tokens: the per-service verifier --------------------------------------------------------
#: ``await lookup(service, token_hash)`` returns the token's principal, or None if unknown.
ApiTokenLookup = Callable[["Service", str], Awaitable["Principal | None"]]

_lookups: "weakref.WeakKeyDictionary[Service, ApiTokenLookup]" = weakref.WeakKeyDictionary()


def api_tokens_table(metadata: Any) -> Table:
    """The ``isles_api_tokens`` replica table in a service's metadata (idempotent)."""
    if API_TOKENS_TABLE in metadata.tables:
        return metadata.tables[API_TOKENS_TABLE]
    return Table(
        API_TOKENS_TABLE, metadata,
        Column("id", Uuid, primary_key=True),
        Column("token_hash", String(64), nullable=False),
        Column("user_id", String(36), nullable=False),
        Column("username", String(150)),
        Column("roles", JSON, nullable=False, default=list),
        Column("scopes", JSON, nullable=False, default=list),
        Column("expires_at", BigInteger),  # epoch seconds, NULL = no expiry
        Column("revoked", Boolean, nullable=False, default=False),
        Column("version", BigInteger, nullable=False),
        Index(f"idx_{API_TOKENS_TABLE}_token_hash", "token_hash", unique=True),
        Index(f"idx_{API_TOKENS_TABLE}_user_id", "user_id"),
    )


API_TOKEN_FIELDS = {"token_hash": "tokenHash", "user_id": "userId", "username": "username", "roles": "roles",
                    "scopes": "scopes", "expires_at": "expiresAt", "revoked": "revoked"}


def principal_from_token_row(row: Any, *, now: float | None = None) -> Principal | None:
    """The principal of an API token row (``isles_api_tokens`` or the owner's table), or None if it
    is revoked or expired."""
    now = time.time() if now is None else now
    if row is None or row.revoked:
        return None
    if row.expires_at is not None and int(row.expires_at) <= now:
        return None
    return Principal(user_id=str(row.user_id), username=row.username or "", roles=frozenset(row.roles or ()),
                     scopes=frozenset(row.scopes or ()), kind="api_token", token_id=str(row.id))


def accept_api_tokens(service: "Service", *, source: str | None = None,
                      lookup: ApiTokenLookup | None = None) -> Replica | None:
    """Let ``service`` accept API tokens.

    With ``source`` (e.g. ``"mes.auth.api_token"``) the service keeps the ``isles_api_tokens``
    replica of the owner's ``created/updated/revoked`` events in its own database and verifies
    against it. The owning service passes ``lookup`` instead, reading its own table.
    Call at import time, before the service is added to a System.
    """
    if (source is None) == (lookup is None):
        raise ConfigurationError("accept_api_tokens() needs exactly one of source= or lookup=", service=service.name,
                                 fix="pass source='mes.auth.api_token' (replica) or lookup=<async fn> (owner)")
    if lookup is not None:
        _lookups[service] = lookup
        return None
    table = api_tokens_table(service.metadata)
    existing = next((r for r in service.replicas if r.table is table), None)
    if existing is not None:
        return existing
    # optional: a system without the token owner still runs (access tokens work; API tokens never arrive)
    replica = Replica(table, key="id", source=source, fields=API_TOKEN_FIELDS, upsert=True,
                      actions=("created", "updated", "revoked"), optional=True)
    service.replicas.append(replica)

    async def replica_lookup(svc: "Service", token_hash: str) -> Principal | None:
        async with svc.unit_of_work() as uow:
            row = (await uow.execute(select(table).where(table.c.token_hash == token_hash))).first()
        if row is None or not constant_time_equals(row.token_hash, token_hash):
            return None
        return principal_from_token_row(row)

    _lookups[service] = replica_lookup
    return replica


# -- FastAPI dependencies -----------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False, description="An access token from auth's /login, or an API token")


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail,
                         headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def _principal(credentials: HTTPAuthorizationCredentials | None, service: "Service | None") -> Principal:
    if credentials is None or not credentials.credentials:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "authentication required: send 'Authorization: Bearer "
                            "<access token or API token>'", headers={"WWW-Authenticate": "Bearer"})
    token = credentials.credentials.strip()
    if token.startswith(API_TOKEN_PREFIX):
        lookup = _lookups.get(service) if service is not None else None
        if lookup is None:
            raise _unauthorized("this API does not accept API tokens; use an access token")
        principal = await lookup(service, hash_token(token))
        if principal is None:
            raise _unauthorized("the API token is unknown, expired or revoked")
        return principal
    try:
        return decode_access_token(token)
    except InvalidToken as exc:
        raise _unauthorized(str(exc)) from None


def authenticated(service: "Service | None" = None) -> Callable[..., Awaitable[Principal]]:
    """Dependency: the calling :class:`Principal` (401 without a valid credential).

    Without ``service`` only access tokens are accepted; with it, also API tokens if the service
    called :func:`accept_api_tokens`.
    """

    async def dependency(request: Request,
                         credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        cached = getattr(request.state, "isles_principal", None)
        if cached is not None:
            return cached
        principal = await _principal(credentials, service)
        request.state.isles_principal = principal
        return principal

    return dependency


def require_roles(*roles: str, service: "Service | None" = None) -> Callable[..., Awaitable[Principal]]:
    """Dependency: 401 without a credential, 403 unless the principal holds any of ``roles``."""
    if not roles:
        raise ConfigurationError("require_roles() needs at least one role", fix="e.g. require_roles('admin')")
    auth = authenticated(service)

    async def dependency(principal: Principal = Depends(auth)) -> Principal:
        if not principal.has_role(*roles):
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"this operation needs one of the roles: {', '.join(roles)}")
        return principal

    return dependency


def require_scopes(*scopes: str, service: "Service | None" = None) -> Callable[..., Awaitable[Principal]]:
    """Dependency: 401 without a credential, 403 unless the principal has every scope in ``scopes``."""
    auth = authenticated(service)

    async def dependency(principal: Principal = Depends(auth)) -> Principal:
        missing = [s for s in scopes if not principal.has_scope(s)]
        if missing:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"the token lacks the scope(s): {', '.join(missing)}")
        return principal

    return dependency


class Guard:
    """The three dependencies bound to one service (so its API tokens are checked in its own DB)."""

    def __init__(self, service: "Service"):
        self.service = service

    def authenticated(self) -> Callable[..., Awaitable[Principal]]:
        return authenticated(self.service)

    def require_roles(self, *roles: str) -> Callable[..., Awaitable[Principal]]:
        return require_roles(*roles, service=self.service)

    def require_scopes(self, *scopes: str) -> Callable[..., Awaitable[Principal]]:
        return require_scopes(*scopes, service=self.service)

    def require(self, *, roles: Iterable[str] = (), scopes: Iterable[str] = ()) -> Callable[..., Awaitable[Principal]]:
        """Dependency: any of ``roles`` (if given) and every scope of ``scopes``."""
        roles, scopes = tuple(roles), tuple(scopes)
        auth = authenticated(self.service)

        async def dependency(principal: Principal = Depends(auth)) -> Principal:
            if roles and not principal.has_role(*roles):
                raise HTTPException(status.HTTP_403_FORBIDDEN,
                                    f"this operation needs one of the roles: {', '.join(roles)}")
            missing = [s for s in scopes if not principal.has_scope(s)]
            if missing:
                raise HTTPException(status.HTTP_403_FORBIDDEN, f"the token lacks the scope(s): {', '.join(missing)}")
            return principal

        return dependency
