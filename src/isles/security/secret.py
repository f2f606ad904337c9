"""The key that signs and verifies access tokens: ``ISLES_AUTH_SECRET``, or a development secret
kept in ``ISLES_DATA_DIR`` (mode 0600) and shared by every process on the machine."""
from __future__ import annotations

import os
import secrets
import stat
import time
from pathlib import Path
from typing import Mapping

from isles.errors import ConfigurationError

SECRET_FILE = "auth_secret.key"
MIN_SECRET_LENGTH = 32

_file_secrets: dict[str, bytes] = {}


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
