"""Settings, password hashing (argon2id) and sealing of TOTP secrets for the auth service.

Every setting has a production default here and can be lowered in tests through the
environment (for example the argon2 cost, which is deliberately expensive in production).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from isles import ConfigurationError
from isles.security import auth_secret


def _int(name: str, default: int, minimum: int, maximum: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number from {minimum} to {maximum}",
                                 service="auth", fix=f"unset it (default {default}) or pick a value in range")
    return value


@dataclass(frozen=True)
class AuthSettings:
    max_failed_logins: int          # consecutive failures before lockout
    lockout_minutes: int            # 0 = locked until an admin unlocks
    refresh_hours: int              # lifetime of a session and its refresh tokens
    session_idle_minutes: int       # a session unused for longer ends (both components needed again)
    password_max_age_days: int      # password aging (21 CFR Part 11 11.300); 0 = never expires
    min_password_length: int
    api_token_max_days: int
    require_reason: bool            # reason-for-change required on user administration (GMP)
    argon2_time_cost: int
    argon2_memory_kib: int
    argon2_parallelism: int


def settings() -> AuthSettings:
    """Read at call time so a test (or an operator) can change them through the environment."""
    return AuthSettings(
        max_failed_logins=_int("MES_AUTH_MAX_FAILED_LOGINS", 5, 1, 100),
        lockout_minutes=_int("MES_AUTH_LOCKOUT_MINUTES", 30, 0, 60 * 24 * 365),
        refresh_hours=_int("MES_AUTH_REFRESH_HOURS", 12, 1, 24 * 90),
        session_idle_minutes=_int("MES_AUTH_SESSION_IDLE_MINUTES", 60, 1, 60 * 24 * 90),
        password_max_age_days=_int("MES_AUTH_PASSWORD_MAX_AGE_DAYS", 90, 0, 3650),
        min_password_length=_int("MES_AUTH_MIN_PASSWORD_LENGTH", 12, 8, 1024),
        api_token_max_days=_int("MES_AUTH_API_TOKEN_MAX_DAYS", 365, 1, 3650),
        require_reason=bool(_int("MES_AUTH_REQUIRE_REASON", 0, 0, 1)),
        # argon2id, RFC 9106 "second recommended option" (64 MiB, t=3, p=4)
        argon2_time_cost=_int("MES_AUTH_ARGON2_TIME_COST", 3, 1, 100),
        argon2_memory_kib=_int("MES_AUTH_ARGON2_MEMORY_KIB", 65536, 8, 4 * 1024 * 1024),
        argon2_parallelism=_int("MES_AUTH_ARGON2_PARALLELISM", 4, 1, 64),
    )


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=max(memory_kib, 8 * parallelism),
                          parallelism=parallelism, type=Type.ID)


def hasher() -> PasswordHasher:
    s = settings()
    return _hasher(s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism)


def hash_password(password: str) -> str:
    return hasher().hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Constant-time check; an unknown user is checked against a dummy hash so timing does not
    reveal which usernames exist."""
    ph = hasher()
    try:
        return ph.verify(password_hash or _dummy_hash(), password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return hasher().check_needs_rehash(password_hash)


_DUMMY: dict[tuple[int, int, int], str] = {}  # argon2 (time, memory, parallelism) -> a hash to verify against


def _dummy_hash() -> str:
    s = settings()
    key = (s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism)
    if key not in _DUMMY:
        _DUMMY[key] = hasher().hash(secrets.token_urlsafe(16))
    return _DUMMY[key]


def check_password_policy(password: str, username: str) -> str | None:
    """The reason a new password is refused, or None."""
    s = settings()
    if len(password) < s.min_password_length:
        return f"the password must have at least {s.min_password_length} characters"
    if len(password) > 1024:
        return "the password is longer than 1024 characters"
    if username and username.lower() in password.lower():
        return "the password must not contain the username"
    return None


# -- sealing TOTP secrets ------------------------------------------------------------------------
# A TOTP secret must be readable by the server, so it cannot be hashed. It is sealed with keys
# derived from the auth secret: an HMAC-SHA256 keystream (counter mode over a random nonce) and an
# HMAC-SHA256 tag over nonce + ciphertext (encrypt-then-MAC). A copy of the database alone does
# not reveal the secrets. Rotating ISLES_AUTH_SECRET therefore requires re-enrolling MFA.
_VERSION = "v1"


def _keys() -> tuple[bytes, bytes]:
    master = auth_secret()
    return (hmac.new(master, b"mes.auth.totp.encrypt", hashlib.sha256).digest(),
            hmac.new(master, b"mes.auth.totp.authenticate", hashlib.sha256).digest())


def _keystream(key: bytes, nonce: bytes, length: int) -> bytes:
    blocks = (hmac.new(key, nonce + i.to_bytes(4, "big"), hashlib.sha256).digest() for i in range(length // 32 + 1))
    return b"".join(blocks)[:length]


def seal(plaintext: str) -> str:
    enc, mac = _keys()
    nonce = secrets.token_bytes(16)
    data = plaintext.encode()
    ciphertext = bytes(a ^ b for a, b in zip(data, _keystream(enc, nonce, len(data)), strict=True))
    tag = hmac.new(mac, nonce + ciphertext, hashlib.sha256).digest()
    return f"{_VERSION}.{base64.urlsafe_b64encode(nonce + ciphertext + tag).decode()}"


def unseal(sealed: str) -> str:
    enc, mac = _keys()
    version, _, body = sealed.partition(".")
    raw = base64.urlsafe_b64decode(body.encode()) if version == _VERSION else b""
    if len(raw) < 48:
        raise ValueError("sealed value is malformed")
    nonce, ciphertext, tag = raw[:16], raw[16:-32], raw[-32:]
    if not hmac.compare_digest(tag, hmac.new(mac, nonce + ciphertext, hashlib.sha256).digest()):
        raise ValueError("sealed value does not authenticate (was ISLES_AUTH_SECRET changed?)")
    keystream = _keystream(enc, nonce, len(ciphertext))
    return bytes(a ^ b for a, b in zip(ciphertext, keystream, strict=True)).decode()
