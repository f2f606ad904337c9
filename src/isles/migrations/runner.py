"""Apply, undo and inspect one service's migrations on its own database.

Each service's revisions run inside one transaction on that service's engine (PostgreSQL and
SQLite both have transactional DDL), so a failing revision leaves the service exactly where it
was. Before anything runs, every selected service is checked (migrations present, database not
ahead of the code, nothing irreversible in the way): a bad plan changes no database at all.
A revision declaring ``transactional = False`` (CREATE INDEX CONCURRENTLY) runs on its own.

After a service's own revisions, ``upgrade`` applies the isles steps its database lacks (isles'
own tables: :mod:`isles.migrations.framework_tables`), in one more transaction. On PostgreSQL
every connection first acts as the owner of the service's schema
(:mod:`isles.migrations.acting_role`), so what a migration creates belongs to the owner role
that ``isles db provision`` made, whoever logs in.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateSchema

from isles.config import resolve_database
from isles.database import Database, is_connection_error
from isles.errors import IslesError
from isles.migrations import framework_tables
from isles.migrations.acting_role import act_as_schema_owner
from isles.migrations.scripts import (
    VERSION_TABLE,
    MigrationError,
    Target,
    irreversible_reason,
    migrations_dir,
    script_directory,
)
from isles.system import System


@dataclass
class Result:
    """What happened to one service: revisions applied (in order) or the error that stopped it."""

    service: str
    action: str
    before: str | None
    after: str | None
    applied: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    #: the tables existed (created by ``create_all`` before migrations) and matched head: stamped, not run
    adopted: bool = False
    #: isles steps applied after the revisions (``isles:core:2``; ``(adopted)``: recorded, not run)
    framework: list[str] = field(default_factory=list)
    #: how to fix ``error`` when it is not the revision's fault (e.g. a login role without DDL rights)
    fix: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Status:
    service: str
    database: str
    current: str | None
    head: str | None
    pending: int
    drift: list[str] | None  # None: not checked (not at head)


def targets(system: System, services: Iterable[str] | None = None,
            env: Mapping[str, str] | None = None) -> list[Target]:
    """The selected services of ``system`` with their databases and migration folders."""
    env = system.env if env is None else env
    names = list(services) if services else list(system.services)
    for name in names:
        system.service(name)  # clear error for an unknown name
    result = []
    for name in names:
        service = system.services[name]
        others = frozenset(t for other in system.services.values() if other is not service
                           for t in other.metadata.tables) - frozenset(service.metadata.tables)
        result.append(Target(service, resolve_database(name, env), migrations_dir(service), others))
    return result


def include_object_for(target: Target, *, framework: bool = True) -> Callable[..., bool]:
    """Autogenerate/drift filter: this service's schema and tables only, never another service's.

    ``framework=False`` (autogenerate) also leaves out isles' own tables: they are migrated by
    isles' steps, never copied into a service's revision.
    """
    own = set(target.service.metadata.tables)
    schema = target.database.schema

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
        if type_ == "table":
            if reflected and name in (VERSION_TABLE, framework_tables.VERSION_TABLE):
                return False
            if not framework and name in framework_tables.OWNED:
                return False
            if name in target.others and name not in own:
                return False
            if reflected and obj.schema not in (None, schema):
                return False
        return True

    return include_object


def _alembic_config() -> Config:
    config = Config()  # in memory: isles is the configuration, there is no alembic.ini
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def _configure(env: EnvironmentContext, conn: Connection | None, target: Target, *, per_migration: bool = False,
               **kw: Any) -> None:
    env.configure(connection=conn, target_metadata=target.service.metadata, version_table=VERSION_TABLE,
                  version_table_schema=target.database.schema, include_object=include_object_for(target),
                  transaction_per_migration=per_migration, **kw)


def current_heads(conn: Connection, target: Target) -> tuple[str, ...]:
    if target.database.schema and not inspect(conn).has_schema(target.database.schema):
        return ()
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE,
                                                     "version_table_schema": target.database.schema})
    return context.get_current_heads()


def _check_known(script: ScriptDirectory, heads: tuple[str, ...], target: Target) -> None:
    for rev in heads:
        try:
            script.get_revision(rev)
        except CommandError:
            raise MigrationError(
                f"its database is at revision {rev}, which the code does not have (the database is ahead "
                f"of the code, or the revision file was deleted)", service=target.name,
                fix="deploy the code that contains that revision (or restore the file); "
                    "never stamp a database back by hand") from None


def _revisions_between(script: ScriptDirectory, upper: str, lower: str | None) -> list[str]:
    """Revision ids from ``upper`` down to (not including) ``lower``, newest first."""
    return [s.revision for s in script.iterate_revisions(upper, lower or "base")
            if s.revision != lower]


def _resolve(script: ScriptDirectory, rev: str, target: Target) -> str | None:
    if rev in ("base", None):
        return None
    if rev in ("head", "heads"):
        return script.get_current_head()
    try:
        found = script.get_revision(rev)
    except CommandError:
        found = None
    if found is None:
        raise MigrationError(f"has no revision {rev!r}", service=target.name,
                             fix="use a revision id from `isles migrate status`, 'head' or 'base'")
    return found.revision


def _run(conn: Connection, target: Target, script: ScriptDirectory, fn: Callable[..., Any], destination: str | None,
         *, managed: bool = False, **kw: Any) -> None:
    """Run ``fn``'s revisions on ``conn``: inside the caller's transaction, or (``managed``) letting
    Alembic commit each revision, which ``op.get_context().autocommit_block()`` needs."""
    with EnvironmentContext(_alembic_config(), script, fn=fn, destination_rev=destination) as env:
        _configure(env, conn, target, per_migration=managed, **kw)
        if managed:
            with env.begin_transaction():
                env.run_migrations()
        else:
            env.run_migrations()


def _stamp(conn: Connection, target: Target, script: ScriptDirectory, destination: str) -> None:
    if conn.in_transaction():
        conn.rollback()
    with conn.begin():
        _run(conn, target, script, lambda rev, ctx: script._stamp_revs(destination, rev), destination)


def is_transactional(script: ScriptDirectory, rev: str) -> bool:
    """False for a revision declaring ``transactional = False`` (e.g. CREATE INDEX CONCURRENTLY)."""
    return getattr(script.get_revision(rev).module, "transactional", True) is not False


def segments(script: ScriptDirectory, steps: list[str], direction: str) -> list[tuple[list[str], str | None, bool]]:
    """Steps grouped into runs of one transaction: (revisions, destination, transactional).

    Transactional revisions that follow each other share one transaction; a revision declaring
    ``transactional = False`` runs on its own, committed by Alembic.
    """
    groups: list[tuple[list[str], bool]] = []
    for rev in steps:
        flag = is_transactional(script, rev)
        if groups and flag and groups[-1][1]:
            groups[-1][0].append(rev)
        else:
            groups.append(([rev], flag))
    result = []
    for revs, flag in groups:
        if direction == "up":
            destination: str | None = revs[-1]
        else:
            down = script.get_revision(revs[-1]).down_revision
            destination = down if isinstance(down, str) else None
        result.append((revs, destination, flag))
    return result


async def _with_connection(target: Target, work: Callable[[Connection], Any]) -> Any:
    database = Database(target.database)
    try:
        async with database.engine.connect() as conn:
            await conn.run_sync(lambda sync: act_as_schema_owner(sync, target.database.schema))
            return await conn.run_sync(work)
    except IslesError:
        raise
    except Exception as exc:
        if is_connection_error(exc):
            error = database.unavailable(exc)
            if "role" in error.problem and "does not exist" in error.problem:
                error.fix = ("create the service's roles with `isles db provision` (named "
                             "<prefix>_<service>_migrator / _app), or correct the user in " + target.database.source)
            raise error from exc
        raise
    finally:
        await database.dispose()


async def status(system: System, services: Iterable[str] | None = None,
                 env: Mapping[str, str] | None = None, *, check_drift: bool = True) -> list[Status]:
    """Per service: the database's revision, the code's head, how many are pending, schema drift."""
    rows = []
    for target in targets(system, services, env):
        script = script_directory(target)
        read_status = partial(_inspect, target=target, script=script, head=script.get_current_head(),
                              check_drift=check_drift)
        rows.append(await _with_connection(target, read_status))
    return rows


def _inspect(conn: Connection, *, target: Target, script: ScriptDirectory, head: str | None,
             check_drift: bool) -> Status:
    """The status of one service, read on ``conn``."""
    heads = current_heads(conn, target)
    _check_known(script, heads, target)
    current = heads[0] if heads else None
    pending = len(_revisions_between(script, head, current)) if head else 0
    drift = None
    if check_drift and pending == 0 and current is not None:
        drift = _drift(conn, target)
    return Status(target.name, target.database.display, current, head, pending, drift)


def _drift(conn: Connection, target: Target) -> list[str]:
    """Differences between the service's models and its live schema (empty: they match)."""
    context = MigrationContext.configure(conn, opts={
        "include_object": include_object_for(target), "version_table": VERSION_TABLE,
        "version_table_schema": target.database.schema})
    try:
        return [_describe(diff) for diff in compare_metadata(context, target.service.metadata)]
    finally:
        conn.rollback()


def _unversioned_tables(conn: Connection, target: Target) -> list[str]:
    """The service's tables that exist although the database has no migration history."""
    inspector = inspect(conn)
    try:
        names = set(inspector.get_table_names(schema=target.database.schema))
    finally:
        conn.rollback()
    return sorted(names & {t.name for t in target.service.metadata.tables.values()})


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # column modifications come as lists of tuples
        return "; ".join(_describe(d) for d in diff)
    kind, *rest = diff
    names = [getattr(x, "name", None) or str(x) for x in rest if x is not None and not isinstance(x, dict)]
    return f"{kind} {' '.join(n for n in names if n)}".strip()


async def _ensure_schema(target: Target) -> None:
    """Schema-per-service: the schema must exist (``isles db provision`` creates it with its owner)."""
    if not target.database.schema:
        return
    schema = target.database.schema

    def check(conn: Connection) -> None:
        exists = inspect(conn).has_schema(schema)
        conn.rollback()
        if exists:
            return
        try:
            with conn.begin():
                conn.execute(CreateSchema(schema, if_not_exists=True))
        except Exception as exc:
            raise MigrationError(f"its schema {schema!r} does not exist and cannot be created here "
                                 f"({str(getattr(exc, 'orig', None) or exc).strip()})",
                                 service=target.name, fix="run `isles db provision` first") from None

    await _with_connection(target, check)


async def upgrade(system: System, services: Iterable[str] | None = None, to: str = "head",
                  env: Mapping[str, str] | None = None) -> list[Result]:
    """Bring each selected service's database to ``to`` (default: its head), one transaction each.

    Call it before ``system.start(create_tables=False)``; it opens and closes its own engines.
    Raises :class:`MigrationError` before touching any database when the plan is wrong; a revision
    that fails rolls back its service and is reported in that service's :class:`Result`.
    """
    return await _move(system, services, to, env, "up")


async def downgrade(system: System, services: Iterable[str] | None = None, to: str = "-1",
                    env: Mapping[str, str] | None = None) -> list[Result]:
    """Undo revisions (default: the latest one) of each selected service, one transaction each."""
    return await _move(system, services, to, env, "down")


@dataclass
class _Plan:
    target: Target
    script: ScriptDirectory
    current: str | None
    destination: str | None
    steps: list[str]  # in the order they run
    adopt: bool = False


async def _plan(target: Target, to: str, direction: str) -> _Plan:
    """Check one service and work out its steps, without changing its database."""
    script = script_directory(target)
    heads = await _with_connection(target, lambda conn: current_heads(conn, target))
    _check_known(script, heads, target)
    current = heads[0] if heads else None
    if direction == "up":
        destination = _resolve(script, to, target)
        if current and destination and current not in _revisions_between(script, destination, None):
            raise MigrationError(f"cannot upgrade from {current} to {to}: it is not above the current revision",
                                 service=target.name, fix="use `isles migrate down --to` to go back")
        steps = list(reversed(_revisions_between(script, destination, current))) if destination else []
        if current is None and await _with_connection(target, lambda conn: _unversioned_tables(conn, target)):
            await _check_adoptable(target, script, destination)
            return _Plan(target, script, current, destination, [], adopt=True)
        return _Plan(target, script, current, destination, steps)
    if to.startswith("-") and to[1:].isdigit():
        below = _revisions_between(script, current, None) if current else []
        destination = below[int(to[1:])] if int(to[1:]) < len(below) else None
    else:
        destination = _resolve(script, to, target)
    steps = _revisions_between(script, current, destination) if current else []
    for rev in steps:
        reason = irreversible_reason(script.get_revision(rev))
        if reason:
            raise MigrationError(f"revision {rev} is irreversible: {reason}", service=target.name,
                                 fix="restore from a backup instead, or downgrade only to a revision above it")
    return _Plan(target, script, current, destination, steps)


async def _check_adoptable(target: Target, script: ScriptDirectory, destination: str | None) -> None:
    """A database made by ``create_all`` (before migrations existed) is adopted only if it is exactly head."""
    existing = await _with_connection(target, lambda conn: _unversioned_tables(conn, target))
    drift = await _with_connection(target, lambda conn: _drift(conn, target))
    if drift or destination != script.get_current_head():
        raise MigrationError(
            f"its database has tables ({', '.join(existing)}) but no migration history"
            + (f", and they differ from the models: {'; '.join(drift)}" if drift else
               f"; it can only be adopted at head, not at {destination}"),
            service=target.name,
            fix="for a disposable database, drop it (or delete its SQLite file) and run `isles migrate up`; "
                "otherwise make it match the models by hand, then `isles migrate up` adopts it")


def _apply(conn: Connection, plan: _Plan, direction: str, result: Result) -> None:
    """Run a plan's steps: each run of transactional revisions in one transaction."""
    script = plan.script
    for revs, segment_destination, transactional in segments(script, plan.steps, direction):
        dest = segment_destination or "base"
        if direction == "up":
            fn = lambda rev, ctx, dest=dest: script._upgrade_revs(dest, rev)  # noqa: E731
        else:
            fn = lambda rev, ctx, dest=dest: script._downgrade_revs(dest, rev)  # noqa: E731
        if conn.in_transaction():
            conn.rollback()
        if transactional:
            with conn.begin():
                _run(conn, plan.target, script, fn, dest)
        else:
            _run(conn, plan.target, script, fn, dest, managed=True)
        result.applied += revs
        result.after = segment_destination


async def _move(system: System, services: Iterable[str] | None, to: str, env: Mapping[str, str] | None,
                direction: str) -> list[Result]:
    plans = [await _plan(target, to, direction) for target in targets(system, services, env)]
    results = []
    for plan in plans:
        result = Result(plan.target.name, direction, plan.current, plan.current)
        results.append(result)
        if not plan.steps and not plan.adopt and (direction != "up" or plan.current is None):
            continue
        started = time.perf_counter()
        try:
            await _carry_out(plan, direction, result)
        except IslesError as exc:
            result.error = str(exc)
        except Exception as exc:  # the failing transaction rolled back; report and go on
            reason = str(getattr(exc, 'orig', None) or exc).strip().splitlines()[0]
            result.error = f"{type(exc).__name__}: {reason}"
            if _is_permission_error(exc):
                result.error, result.fix = _permission_problem(plan.target, reason)
        result.seconds = time.perf_counter() - started
    return results


async def _carry_out(plan: _Plan, direction: str, result: Result) -> None:
    """Move one service as ``plan`` says, recording what happened in ``result``."""
    if direction == "up":
        await _ensure_schema(plan.target)
    if plan.adopt:
        await _with_connection(plan.target, lambda conn: _stamp(conn, plan.target, plan.script,
                                                                 plan.destination or "base"))
        result.after, result.adopted = plan.destination, True
    elif plan.steps:
        await _with_connection(plan.target, lambda conn: _apply(conn, plan, direction, result))
    if direction == "up" and result.after is not None:
        result.framework = await _with_connection(
            plan.target, lambda conn: _framework_up(conn, plan.target, adopt_all=plan.adopt))


async def ensure_head(system: System, services: Iterable[str] | None = None,
                      env: Mapping[str, str] | None = None) -> list[Result]:
    """Upgrade every selected service to head, raising if any service failed (for ``isles run``).

    Services that succeeded stay upgraded; the error names the first that failed and why.
    """
    results = await upgrade(system, services, "head", env)
    for result in results:
        if not result.ok:
            raise MigrationError(f"migrations failed and were rolled back: {result.error}", service=result.service,
                                 fix=result.fix or f"fix the revision, then run `isles migrate up --service "
                                                   f"{result.service}`")
    return results



def _framework_up(conn: Connection, target: Target, *, adopt_all: bool = False) -> list[str]:
    """isles' own steps the database lacks, in one transaction (nothing to do: no transaction)."""
    if conn.in_transaction():
        conn.rollback()
    with conn.begin():
        return framework_tables.bring_up(conn, target.service.metadata, target.database.schema,
                                         adopt_all=adopt_all)


def _is_permission_error(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None) or exc
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code == "42501" or "permission denied" in str(orig).lower()


def _permission_problem(target: Target, reason: str) -> tuple[str, str]:
    """The error and fix for a login role that may not change the service's schema (the app role)."""
    user = target.database.url.username or "the login user"
    problem = (f"{reason} (logged in as {user}, which may not create or change {target.name}'s tables: "
               f"the app role has no DDL rights, by design)")
    fix = (f"run `isles migrate up --service {target.name}` first with {target.database.source} set to the "
           f"migrator's URL (<prefix>_{target.name}_migrator, made by `isles db provision`) or a superuser's; "
           f"then start the service with the app role's URL and --no-migrate (`isles serve --no-migrate`)")
    return problem, fix
