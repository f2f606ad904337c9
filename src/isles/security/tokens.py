"""Credentials as strings: hashed opaque tokens, API token strings, JWT access tokens and
short-lived signed assertions, all signed with :func:`isles.security.secret.auth_secret`."""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import time
import uuid
from typing import Any, Iterable, Mapping

import jwt

from isles.errors import ConfigurationError
from isles.security.principal import Principal
from isles.security.secret import auth_secret

ALGORITHM = "HS256"
ISSUER = "isles"
AUDIENCE = "isles"
API_TOKEN_PREFIX = "isat_"
DEFAULT_ACCESS_MINUTES = 15


class InvalidToken(Exception):
    """A credential that is missing, malformed, expired, revoked or signed with another key.

    The message is safe to return to a client: it never contains the token or the secret.
    """


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
