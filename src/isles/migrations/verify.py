"""``isles migrate verify``: every revision must undo exactly what it did.

For each service, on a scratch database of the same kind (a temporary SQLite file, or a fresh
PostgreSQL database next to the service's own), each revision in order is upgraded, downgraded
and upgraded again; the schema after each step is compared with the snapshot taken before it.
A downgrade that does nothing fails the check unless the revision declares
``irreversible = "reason"`` - then its round trip is skipped, and said so in the report.
"""
from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Iterable, Mapping

from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.schema import CreateSchema

from isles.config import DatabaseConfig, parse_database_url
from isles.migrations import snapshot
from isles.migrations.runner import _run, _with_connection, targets
from isles.migrations.scripts import Target, downgrade_is_empty, irreversible_reason, script_directory
from isles.system import System


@dataclass
class VerifyReport:
    service: str
    checked: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # revision -> irreversible reason
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _admin(config: DatabaseConfig, env: Mapping[str, str]) -> DatabaseConfig:
    """Creating a scratch database needs CREATEDB: ISLES_ADMIN_DATABASE_URL when set, else the service's URL."""
    raw = env.get("ISLES_ADMIN_DATABASE_URL")
    if not raw:
        return config
    url, _ = parse_database_url(raw, service=config.service, setting="ISLES_ADMIN_DATABASE_URL")
    return replace(config, url=url)


async def _scratch(config: DatabaseConfig, workdir: Path) -> tuple[DatabaseConfig, str | None]:
    """A throw-away database like ``config``'s; returns it and the PG database name to drop."""
    if config.dialect == "sqlite":
        url = config.url.set(database=str(workdir / f"{config.service}.db"))
        return replace(config, url=url, source="scratch"), None
    name = f"isles_verify_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(config.url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        await admin.dispose()
    scratch = replace(config, url=config.url.set(database=name), source="scratch")
    if config.schema:
        engine = create_async_engine(scratch.url, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(CreateSchema(config.schema))
        finally:
            await engine.dispose()
    return scratch, name


async def _drop(config: DatabaseConfig, name: str) -> None:
    admin = create_async_engine(config.url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()


def _step(conn: Connection, target: Target, script: ScriptDirectory, direction: str, destination: str) -> None:
    if direction == "up":
        fn = lambda rev, ctx: script._upgrade_revs(destination, rev)  # noqa: E731
    else:
        fn = lambda rev, ctx: script._downgrade_revs(destination, rev)  # noqa: E731
    with conn.begin():
        _run(conn, target, script, fn, destination)


def _snap(conn: Connection, schema: str | None) -> snapshot.Snapshot:
    try:
        return snapshot.take(conn, schema)
    finally:
        conn.rollback()  # reflection autobegins; the next step opens its own transaction


def _verify_service(conn: Connection, target: Target, report: VerifyReport) -> None:
    script = script_directory(target)
    schema = target.database.schema
    revisions = list(reversed(list(script.walk_revisions())))  # base -> head
    before = _snap(conn, schema)
    for rev in revisions:
        down = rev.down_revision if isinstance(rev.down_revision, str) else None
        lower = down or "base"
        _step(conn, target, script, "up", rev.revision)
        after = _snap(conn, schema)
        reason = irreversible_reason(rev)
        if reason:
            report.skipped[rev.revision] = reason
            before = after
            continue
        if downgrade_is_empty(rev):
            report.problems.append(
                f"{rev.revision} ({Path(rev.path).name}): downgrade() does nothing; write it, or declare "
                f"irreversible = \"why\" in the revision")
            return
        _step(conn, target, script, "down", lower)
        undone = _snap(conn, schema)
        diff = snapshot.differences(before, undone)
        if diff:
            report.problems.append(f"{rev.revision} ({Path(rev.path).name}): downgrade does not restore "
                                   f"the schema: " + "; ".join(diff))
            return
        _step(conn, target, script, "up", rev.revision)
        again = _snap(conn, schema)
        diff = snapshot.differences(after, again)
        if diff:
            report.problems.append(f"{rev.revision} ({Path(rev.path).name}): upgrade after downgrade "
                                   f"differs: " + "; ".join(diff))
            return
        report.checked.append(rev.revision)
        before = after


async def verify(system: System, services: Iterable[str] | None = None,
                 env: Mapping[str, str] | None = None) -> list[VerifyReport]:
    """Round-trip every revision of every selected service on scratch databases."""
    reports = []
    for target in targets(system, services, env):
        script_directory(target)  # clear error before creating anything
        report = VerifyReport(target.name)
        with tempfile.TemporaryDirectory(prefix="isles-verify-") as workdir:
            base = _admin(target.database, system.env if env is None else env)
            scratch, dropname = await _scratch(base, Path(workdir))
            try:
                scratch_target = replace(target, database=scratch)
                await _with_connection(scratch_target, partial(_verify_service, target=scratch_target, report=report))
            except Exception as exc:
                report.problems.append(f"{type(exc).__name__}: {str(getattr(exc, 'orig', None) or exc).strip()}")
            finally:
                if dropname:
                    await _drop(base, dropname)
        reports.append(report)
    return reports
