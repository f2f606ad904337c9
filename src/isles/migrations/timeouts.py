"""Lock and statement timeouts for one revision, so a migration waits briefly instead of queueing
every query of the service behind a lock it cannot get.

Generated revisions call :func:`apply` first; on PostgreSQL it issues ``SET LOCAL`` (scoped to
the migration's transaction), elsewhere it does nothing. ``isles lint`` (ISL206) flags revisions
whose rendered SQL lacks them.
"""
from __future__ import annotations

import re

from alembic import op

_DURATION = re.compile(r"^\d+(ms|s|min)?$")


def apply(lock: str = "5s", statement: str = "60s") -> None:
    for name, value in (("lock_timeout", lock), ("statement_timeout", statement)):
        if not _DURATION.match(value):
            raise ValueError(f"{name}={value!r} is not a duration such as 5s or 500ms")
    if op.get_context().dialect.name != "postgresql":
        return
    op.execute(f"SET LOCAL lock_timeout = '{lock}'")
    op.execute(f"SET LOCAL statement_timeout = '{statement}'")
