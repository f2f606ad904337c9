"""The auth service: users (deactivated, never deleted), argon2 passwords, JWT access tokens with
rotating refresh tokens, sessions, scoped API tokens, TOTP MFA, lockout, roles and an append-only
audit trail (21 CFR Part 11 11.10(d),(e), 11.100, 11.300)."""
from __future__ import annotations

import os
import sys
from typing import Any, Mapping

from mes.auth.service_def import service

__all__ = ["bootstrap", "seed", "service"]


async def bootstrap(env: Mapping[str, str] | None = None, *, out: Any = None) -> str | None:
    """Default roles and the first administrator (idempotent; call after ``system.start()``).

    The admin's password is ``MES_ADMIN_PASSWORD``; when unset (development) one is generated and
    printed once, here, to ``out`` (stdout) - never logged. Returns the admin's username if created.
    """
    from mes.auth.users import bootstrap_admin
    async with service.unit_of_work() as uow:
        user, generated = await bootstrap_admin(uow, os.environ if env is None else env)
    if user is None:
        return None
    if generated:
        print(f"auth: created administrator '{user.username}' with password {generated}\n"
              "      (shown once; set MES_ADMIN_PASSWORD to choose it)", file=out or sys.stdout, flush=True)
    return user.username


DEMO_USERS = [
    # username, first, last, roles
    ("jsmith", "John", "Smith", ["engineer"]),
    ("mgarcia", "Maria", "Garcia", ["supervisor"]),
    ("operator1", "Lee", "Chen", ["operator"]),
    ("qinspector", "Priya", "Patel", ["quality"]),
    ("auditor", "Ann", "Keller", ["auditor"]),
]


async def seed(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Demo users with roles (idempotent). Their password is ``MES_DEMO_PASSWORD``, else a generated
    one printed once. Returns {username: user id}."""
    import secrets

    from sqlalchemy import select

    from mes.auth.models import User
    from mes.auth.users import create_user, ensure_roles
    env = os.environ if env is None else env
    await bootstrap(env)
    ids: dict[str, str] = {}
    password = env.get("MES_DEMO_PASSWORD")
    generated = None
    async with service.unit_of_work() as uow:
        await ensure_roles(uow)
        for username, first, last, roles in DEMO_USERS:
            existing = await uow.scalar(select(User).where(User.username == username))
            if existing is None:
                if password is None:
                    password = generated = secrets.token_urlsafe(12)
                existing = await create_user(uow, username=username, password=password, first_name=first,
                                             last_name=last, email=f"{username}@example.com", roles=roles)
            ids[username] = str(existing.id)
        admin = await uow.scalar(select(User).where(User.username == (env.get("MES_ADMIN_USERNAME") or "admin")))
        if admin is not None:
            ids[admin.username] = str(admin.id)
    if generated:
        print(f"auth: demo users {', '.join(u[0] for u in DEMO_USERS)} have password {generated} (shown once)",
              flush=True)
    return ids
