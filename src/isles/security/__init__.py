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

Use from a service's ``access.py``::

    guard = Guard()     # JWT + API tokens, checked in the database of the service answering the request
    Writer = Annotated[Principal, Depends(guard.require(roles=("engineer", "admin"), scopes=("resource:write",)))]

and declare the replica in its ``service_def.py``::

    service = Service("resource", ..., replicas=[api_token_replica(Base.metadata, source="mes.auth.api_token")])

Every dependency a Guard builds records the requirement it checks (:mod:`isles.security.access`),
so the framework can list what each route requires (``access_map(app)``, ``x-isles-access`` in the
OpenAPI); public routes declare ``dependencies=[PUBLIC]``, and a route declaring neither is
reported as undeclared.

Missing or invalid credentials give 401 (with ``WWW-Authenticate: Bearer``), a missing role or
scope 403.
"""
from __future__ import annotations

from isles.security.access import (
    ACCESS_EXTENSION,
    PUBLIC,
    Access,
    Requirement,
    RouteAccess,
    access_map,
    declare,
    document_access,
    public,
    requirement_of,
    route_access,
)
from isles.security.api_tokens import (
    API_TOKEN_FIELDS,
    API_TOKENS_TABLE,
    ApiTokenLookup,
    accept_api_tokens,
    api_token_replica,
    api_tokens_table,
    lookup_for,
    principal_from_token_row,
)
from isles.security.guard import Guard, authenticated, require_roles, require_scopes
from isles.security.principal import Principal
from isles.security.secret import MIN_SECRET_LENGTH, SECRET_FILE, auth_secret
from isles.security.secret import _file_secrets as _file_secrets  # tests clear the cache
from isles.security.tokens import (
    ALGORITHM,
    API_TOKEN_PREFIX,
    AUDIENCE,
    DEFAULT_ACCESS_MINUTES,
    ISSUER,
    InvalidToken,
    access_token_minutes,
    constant_time_equals,
    decode_access_token,
    decode_assertion,
    hash_token,
    issue_access_token,
    issue_assertion,
    new_api_token,
    new_opaque_token,
)

__all__ = [
    "ACCESS_EXTENSION", "Access", "PUBLIC", "Requirement", "RouteAccess", "access_map", "declare", "document_access",
    "public", "requirement_of", "route_access",
    "ALGORITHM", "API_TOKEN_FIELDS", "API_TOKEN_PREFIX", "API_TOKENS_TABLE", "AUDIENCE", "ApiTokenLookup",
    "DEFAULT_ACCESS_MINUTES", "Guard", "ISSUER", "InvalidToken", "MIN_SECRET_LENGTH", "Principal", "SECRET_FILE",
    "accept_api_tokens", "access_token_minutes", "api_token_replica", "api_tokens_table", "auth_secret",
    "authenticated", "constant_time_equals", "decode_access_token", "decode_assertion", "hash_token",
    "issue_access_token", "issue_assertion", "lookup_for", "new_api_token", "new_opaque_token",
    "principal_from_token_row", "require_roles", "require_scopes",
]
