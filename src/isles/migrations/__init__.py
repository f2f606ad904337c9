"""Per-service Alembic migrations, driven by isles (no alembic.ini, no env.py per service).

Public API (all coroutines take the :class:`isles.System` and read database settings from its
environment, opening and closing their own engines)::

    await upgrade(system, services=None, to="head")   -> list[Result]
    await ensure_head(system)                         -> list[Result], raises MigrationError on a failure
    await downgrade(system, services=None, to="-1")   -> list[Result]
    await status(system, services=None)               -> list[Status]
    await new_revision(system, "material", "add lots") -> Path | None
    await verify(system, services=None)               -> list[VerifyReport]

isles' own tables (outbox, inbox, dead letters, API tokens) are not copied into a service's
revisions: its first revision calls ``framework_tables.upgrade(op)``, and ``upgrade`` applies
isles' later steps to every service (see :mod:`isles.migrations.framework_tables`).
"""
from isles.migrations.autogen import new_revision
from isles.migrations.runner import Result, Status, downgrade, ensure_head, status, targets, upgrade
from isles.migrations.scripts import VERSION_TABLE, MigrationError, Target, migrations_dir
from isles.migrations.verify import VerifyReport, verify

__all__ = ["ensure_head", "MigrationError", "Result", "Status", "Target", "VERSION_TABLE", "downgrade",
           "migrations_dir", "new_revision", "status", "targets", "upgrade", "verify", "VerifyReport"]
