"""The SQL a revision runs on PostgreSQL, rendered offline (no database needed).

``isles lint`` reads this to judge each migration as the database will see it: what it drops,
renames, locks and whether it sets its timeouts.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import RevisionStep
from alembic.script import Script, ScriptDirectory

from isles.migrations.runner import _alembic_config, include_object_for
from isles.migrations.scripts import VERSION_TABLE, Target, script_directory


@dataclass(frozen=True)
class RenderedRevision:
    service: str
    revision: str
    path: Path
    upgrade_sql: str
    #: why the revision could not be rendered (e.g. an identifier PostgreSQL would refuse), if it could not
    error: str | None = None


def render_upgrade(target: Target, script_dir: ScriptDirectory, rev: Script, dialect: str = "postgresql") -> str:
    buffer = io.StringIO()
    down = rev.down_revision if isinstance(rev.down_revision, str) else None

    def fn(_rev: Any, _context: Any) -> list[RevisionStep]:
        # alembic annotates current_rev as str, but None (upgrading from base) is what it means
        return script_dir._upgrade_revs(rev.revision, down)  # type: ignore[arg-type]

    with EnvironmentContext(_alembic_config(), script_dir, fn=fn, as_sql=True,
                            starting_rev=down, destination_rev=rev.revision) as env:
        env.configure(url=None, dialect_name=dialect, output_buffer=buffer, literal_binds=True,
                      target_metadata=target.service.metadata, version_table=VERSION_TABLE,
                      include_object=include_object_for(target), transaction_per_migration=False)
        env.run_migrations()
    return buffer.getvalue()


def render_all(target: Target) -> list[RenderedRevision]:
    """Every revision of a service, oldest first, with its upgrade SQL."""
    script_dir = script_directory(target)
    revisions = list(reversed(list(script_dir.walk_revisions())))
    rendered = []
    for rev in revisions:
        try:
            sql, error = render_upgrade(target, script_dir, rev), None
        except Exception as exc:  # reported as a finding: one broken revision must not hide the others
            sql, error = "", f"{type(exc).__name__}: {' '.join(str(exc).split())}"
        rendered.append(RenderedRevision(target.name, rev.revision, Path(rev.path), sql, error))
    return rendered
