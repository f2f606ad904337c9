"""isles' own tables come from isles' steps: fresh databases, databases migrated before the steps
existed (their revisions copied isles' DDL), and a later isles step reaching every service."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from isles import System
from isles.config import resolve_database
from isles.migrations import downgrade, framework_tables, new_revision, status, upgrade
from isles.migrations.framework_tables import Step

from .conftest import make_system

LEGACY = Path(__file__).parent / "legacy" / "material_0001_initial.py.txt"
ISLES_TABLES = {"isles_outbox", "isles_inbox", "isles_dead_letters", "isles_api_tokens", "isles_idempotency_keys",
                "isles_audit_trail"}
#: the components material and work_order use (both declare idempotency and an audit trail)
MES_STEPS = {"core": {1}, "api_tokens": {1}, "idempotency": {1}, "audit": {1}}


def mes(env: dict[str, str]) -> System:
    from mes import material, work_order
    return System("mes", [material.service, work_order.service], env=dict(env))


@pytest.fixture(params=["sqlite", "postgres"])
async def backend_env(request, tmp_path, env, pg_database) -> dict[str, str]:
    if request.param == "sqlite":
        return env
    return {"DATABASE_URL": await pg_database()}  # schema per service


async def _read(system: System, service: str, fn):
    config = resolve_database(service, system.env)
    engine = create_async_engine(config.url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(lambda sync: fn(sync, config.schema))
    finally:
        await engine.dispose()


def _tables(conn, schema) -> set[str]:
    return set(sa.inspect(conn).get_table_names(schema=schema))


def _versions(conn, schema) -> dict[str, set[int]] | None:
    return framework_tables.applied(conn, schema)


def _columns(table: str):
    return lambda conn, schema: {c["name"] for c in sa.inspect(conn).get_columns(table, schema=schema)}


async def test_fresh_migrate_creates_everything_and_records_step_1(backend_env):
    system = mes(backend_env)
    results = await upgrade(system)
    assert all(r.ok for r in results), results
    assert [r.framework for r in results] == [[], []]  # the first revision created them
    for service in ("material", "work_order"):
        assert ISLES_TABLES <= await _read(system, service, _tables)
        assert await _read(system, service, _versions) == MES_STEPS
    assert [s.drift for s in await status(system)] == [[], []]

    assert all(r.ok for r in await downgrade(system, to="base"))
    left = await _read(system, "material", _tables)
    assert not (left & (ISLES_TABLES | {framework_tables.VERSION_TABLE}))


async def test_database_migrated_with_copied_ddl_is_adopted_once(backend_env, monkeypatch, tmp_path):
    """A database migrated by main's material 0001 (which copied isles' DDL, and a runner that knew
    no isles steps) upgrades to the new arrangement: no table re-created, step 1 recorded, idempotent."""
    from mes import material
    legacy = tmp_path / "legacy_migrations"
    legacy.mkdir()
    shutil.copy(LEGACY, legacy / "0001_initial.py")
    monkeypatch.setattr(material.service, "migrations_dir", legacy, raising=False)
    system = mes(backend_env)
    (first,) = await upgrade(system, ["material"])
    assert first.ok and first.applied == ["ebe6dac5e242"], first

    def forget_steps(conn, schema):  # exactly what main's runner left: tables, alembic_version, no isles steps
        with conn.begin():
            conn.execute(sa.text(f"DROP TABLE {schema + '.' if schema else ''}{framework_tables.VERSION_TABLE}"))
            # main's runner knew no audit component either (today's runner made it after the legacy 0001)
            conn.execute(sa.text(f"DROP TABLE {schema + '.' if schema else ''}isles_audit_trail"))
    config = resolve_database("material", system.env)
    engine = create_async_engine(config.url)
    async with engine.connect() as conn:
        await conn.run_sync(lambda sync: forget_steps(sync, config.schema))
    await engine.dispose()
    assert await _read(system, "material", _versions) is None

    monkeypatch.setattr(material.service, "migrations_dir", Path(material.__file__).parent / "migrations")
    (result,) = await upgrade(system, ["material"])
    assert result.ok, result.error
    assert result.applied == ["8b4e2d7c1a90", "c4a9e1f0b7d2", "7e994a3d624b"] and result.framework == [
        "isles:core:1 (adopted)", "isles:api_tokens:1 (adopted)", "isles:idempotency:1 (adopted)", "isles:audit:1"]
    assert await _read(system, "material", _versions) == MES_STEPS
    (again,) = await upgrade(system, ["material"])
    assert again.ok and again.applied == [] and again.framework == []
    assert (await status(system, ["material"]))[0].drift == []


async def test_a_later_isles_step_reaches_every_service_on_migrate_up(backend_env, monkeypatch):
    system = mes(backend_env)
    assert all(r.ok for r in await upgrade(system))

    def add_note(op):
        op.add_column("isles_outbox", sa.Column("note", sa.Text(), nullable=True))

    def drop_note(op):
        op.drop_column("isles_outbox", "note")

    monkeypatch.setattr(framework_tables, "STEPS",
                        [*framework_tables.STEPS, Step("core", 2, "outbox note", add_note, drop_note)])
    results = await upgrade(system)
    assert [(r.ok, r.applied, r.framework) for r in results] == [(True, [], ["isles:core:2"])] * 2
    for service in ("material", "work_order"):
        assert "note" in await _read(system, service, _columns("isles_outbox"))
        assert await _read(system, service, _versions) == {**MES_STEPS, "core": {1, 2}}
    assert [r.framework for r in await upgrade(system)] == [[], []]  # recorded: never twice

    assert all(r.ok for r in await downgrade(system, to="base"))  # undoes step 2, then step 1
    assert not (await _read(system, "material", _tables) & ISLES_TABLES)


async def _refused(system: System, service: str, statement: str) -> str | None:
    """Run raw SQL on the service's database (as its owner); the database's refusal, or None."""
    config = resolve_database(service, system.env)
    engine = create_async_engine(config.url)
    try:
        async with engine.begin() as conn:
            if config.schema:
                await conn.execute(sa.text(f'SET search_path TO "{config.schema}"'))
            await conn.execute(sa.text(statement))
        return None
    except sa.exc.DBAPIError as exc:
        return str(exc.orig)
    finally:
        await engine.dispose()


async def test_migrate_up_makes_the_audit_trail_append_only_and_down_removes_it(backend_env):
    """isles step audit:1 creates the table and its triggers on both dialects, for every service that
    declares an audit trail; UPDATE and DELETE then fail at the database, not only in isles."""
    system = mes(backend_env)
    assert all(r.ok for r in await upgrade(system))
    insert = ("INSERT INTO isles_audit_trail (change_id, occurred_at, actor_id, actor_name, action, entity, entity_id) "
              "VALUES ('c', CURRENT_TIMESTAMP, 'u', 'ann', 'lot.status_changed', 'lot', 'L-1')")
    for service in ("material", "work_order"):
        assert await _refused(system, service, insert) is None  # appending is what it is for
        for statement in ("UPDATE isles_audit_trail SET new_value = 'x'", "DELETE FROM isles_audit_trail"):
            assert "append-only" in (await _refused(system, service, statement) or ""), (service, statement)
    assert all(r.ok for r in await downgrade(system, to="base"))
    if backend_env.get("DATABASE_URL"):  # the trigger function went with the step
        assert await _refused(system, "material", "SELECT 'isles_audit_trail_append_only()'::regprocedure")


async def test_first_revision_calls_isles_instead_of_copying_its_tables(tmp_path, sqlite_env):
    system = make_system(tmp_path, sqlite_env)
    first = (await new_revision(system, "alpha", "initial")).read_text()
    assert "framework_tables.upgrade(op)" in first and "framework_tables.downgrade(op)" in first
    assert "isles_outbox" not in first and "create_table('widgets'" in first
    assert all(r.ok for r in await upgrade(system, ["alpha"]))
    grown = make_system(tmp_path, sqlite_env, extra_column=True)
    second = (await new_revision(grown, "alpha", "add colour")).read_text()
    assert "framework_tables" not in second and "isles_" not in second
