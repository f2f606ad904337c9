"""API tokens at a verifying service: the ``isles_api_tokens`` replica of the owner's token events,
and how a service looks a presented token up (its replica, or the owner's own table)."""
from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from sqlalchemy import JSON, BigInteger, Boolean, Column, Index, String, Table, Uuid, select

from isles.errors import ConfigurationError
from isles.replication import Replica
from isles.security.principal import Principal
from isles.security.tokens import constant_time_equals

if TYPE_CHECKING:
    from isles.service import Service

API_TOKENS_TABLE = "isles_api_tokens"

#: ``await lookup(service, token_hash)`` returns the token's principal, or None if unknown.
ApiTokenLookup = Callable[["Service", str], Awaitable["Principal | None"]]

_lookups: "weakref.WeakKeyDictionary[Service, ApiTokenLookup]" = weakref.WeakKeyDictionary()


def api_tokens_table(metadata: Any) -> Table:
    """The ``isles_api_tokens`` replica table in a service's metadata (idempotent)."""
    if API_TOKENS_TABLE in metadata.tables:
        existing: Table = metadata.tables[API_TOKENS_TABLE]
        return existing
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


def api_token_replica(metadata: Any, *, source: str) -> Replica:
    """The replica that keeps ``isles_api_tokens`` (in ``metadata``) current from the owner's
    ``<source>.created/.updated/.revoked`` events; list it in the ``Service(replicas=[...])``.

    A service whose replicas include it accepts API tokens, verified against that table in its
    own database. The replica is optional: a system without the token owner still runs (access
    tokens work; API tokens never arrive).
    """
    return Replica(api_tokens_table(metadata), key="id", source=source, fields=API_TOKEN_FIELDS, upsert=True,
                   actions=("created", "updated", "revoked"), optional=True)


async def _replica_lookup(service: "Service", token_hash: str) -> Principal | None:
    table = service.metadata.tables[API_TOKENS_TABLE]
    async with service.unit_of_work() as uow:
        row = (await uow.execute(select(table).where(table.c.token_hash == token_hash))).first()
    if row is None or not constant_time_equals(row.token_hash, token_hash):
        return None
    return principal_from_token_row(row)


def lookup_for(service: "Service | None") -> ApiTokenLookup | None:
    """How ``service`` verifies an API token: a lookup registered by :func:`accept_api_tokens`,
    else its ``isles_api_tokens`` replica if it declares one, else None (API tokens refused)."""
    if service is None:
        return None
    registered = _lookups.get(service)
    if registered is not None:
        return registered
    table = service.metadata.tables.get(API_TOKENS_TABLE)
    if table is not None and any(r.table is table for r in service.replicas):
        return _replica_lookup
    return None


def accept_api_tokens(service: "Service", *, source: str | None = None,
                      lookup: ApiTokenLookup | None = None) -> Replica | None:
    """Let an already built ``service`` accept API tokens (prefer declaring it: list
    :func:`api_token_replica` in ``Service(replicas=...)``, or give the owner's ``Guard`` an
    ``api_tokens=`` lookup).

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
    assert source is not None  # exactly one of source and lookup, checked above
    replica = api_token_replica(service.metadata, source=source)
    service.replicas.append(replica)
    return replica
