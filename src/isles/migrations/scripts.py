"""Where a service's migrations live and what each revision file declares.

Every service keeps its revisions in ``<service package>/migrations/`` (a plain package, so it
ships with the code). isles builds the Alembic :class:`ScriptDirectory` from that folder itself:
there is no ``alembic.ini`` and no ``env.py`` to copy between services and let drift apart.

A service's first revision calls ``framework_tables.upgrade(op)`` / ``.downgrade(op)`` for
isles' own tables instead of carrying their DDL. A revision may declare ``irreversible = "why"``;
its downgrade is then refused (and skipped by ``isles migrate verify``) instead of silently doing nothing.
"""
from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError

from isles.config import DatabaseConfig
from isles.errors import ConfigurationError
from isles.service import Service

#: the per-service version table (in the service's schema under schema-per-service)
VERSION_TABLE = "alembic_version"
_HERE = Path(__file__).parent


class MigrationError(ConfigurationError):
    """A service's migrations cannot be applied as asked (missing, ahead of the code, irreversible)."""


@dataclass(frozen=True)
class Target:
    """One service's migrations and the database they apply to."""

    service: Service
    database: DatabaseConfig
    directory: Path
    #: names of the tables other services of the system own (never proposed for dropping)
    others: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.service.name


def migrations_dir(service: Service) -> Path:
    """``<package>/migrations`` of the service (``service.migrations_dir`` overrides it)."""
    override = getattr(service, "migrations_dir", None)
    if override is not None:
        return Path(override)
    try:
        spec = importlib.util.find_spec(service.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(f"its package {service.package!r} cannot be found", service=service.name,
                                 fix="declare the Service inside its package, or pass package='...' to Service")
    return Path(list(spec.submodule_search_locations)[0]) / "migrations"


def has_revisions(directory: Path) -> bool:
    return directory.is_dir() and any(p.name != "__init__.py" for p in directory.glob("*.py"))


def script_directory(target: Target, *, must_exist: bool = True) -> ScriptDirectory:
    """The Alembic view of a service's revisions (raises a clear error when there are none)."""
    directory = target.directory
    if must_exist and not has_revisions(directory):
        raise MigrationError(
            f"has no migrations (looked in {directory})", service=target.name,
            fix=f"create the first one: isles migrate new --service {target.name} -m 'initial'")
    try:
        script = ScriptDirectory(str(_HERE), version_locations=[str(directory)])
        heads = script.get_heads()  # loads the revisions now: errors in revision files surface here
    except CommandError as exc:
        raise MigrationError(f"its migrations cannot be read: {exc}", service=target.name,
                             fix=f"repair the revision files in {directory}") from None
    if must_exist and len(heads) > 1:
        raise MigrationError(f"its migrations have several heads: {', '.join(heads)}",
                             service=target.name, fix="merge them into one line of revisions")
    return script


def irreversible_reason(script: Script) -> str | None:
    """The reason a revision declares for being irreversible, if it does."""
    reason = getattr(script.module, "irreversible", None)
    return reason.strip() if isinstance(reason, str) and reason.strip() else None


def downgrade_is_empty(script: Script) -> bool:
    """True when ``downgrade()`` is missing or does nothing (only ``pass``, ``...`` or a docstring)."""
    tree = ast.parse(Path(script.path).read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
            body = [stmt for stmt in node.body
                    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant))
                    and not isinstance(stmt, ast.Pass)]
            return not body
    return True


TEMPLATE = '''"""{message}

Revision ID: {rev}
Revises: {down}
Create Date: {date}
Service: {service}
"""
from alembic import op
import sqlalchemy as sa

from isles.migrations import {imports}

revision = {rev!r}
down_revision = {down_rev!r}
branch_labels = None
depends_on = None
# A revision that cannot be undone says why here; `isles migrate down` then refuses it:
# irreversible = "drops data that cannot be restored"
# A revision that cannot run inside a transaction (CREATE INDEX CONCURRENTLY) runs on its own with:
# transactional = False


def upgrade() -> None:
    timeouts.apply(lock="{lock}", statement="{statement}")
{upgrade}


def downgrade() -> None:
    timeouts.apply(lock="{lock}", statement="{statement}")
{downgrade}
'''


def write_revision(directory: Path, *, service: str, rev: str, down: str | None, message: str,
                   upgrade: str, downgrade: str, lock: str = "5s", statement: str = "60s",
                   framework: bool = False) -> Path:
    """Write a revision file from isles' own template (the one place its shape is defined)."""
    directory.mkdir(parents=True, exist_ok=True)
    init = directory / "__init__.py"
    if not init.exists():
        init.write_text(f'"""Migrations of the {service} service (managed by `isles migrate`)."""\n')
    existing = sorted(p.name for p in directory.glob("[0-9][0-9][0-9][0-9]_*.py"))
    number = len(existing) + 1
    slug = "_".join("".join(c if c.isalnum() else " " for c in message.lower()).split())[:40] or "revision"
    path = directory / f"{number:04d}_{slug}.py"
    path.write_text(TEMPLATE.format(
        message=message.replace('"""', "'''"), rev=rev, down=down or "<base>", down_rev=down,
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"), service=service,
        upgrade=upgrade, downgrade=downgrade, lock=lock, statement=statement,
        imports="framework_tables, timeouts" if framework else "timeouts"))
    return path
