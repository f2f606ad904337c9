"""Per-service migrations: new, up, down, status, drift, and the errors that must stop them."""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.engine import make_url

from isles.migrations import MigrationError, downgrade, new_revision, status, upgrade

from .conftest import make_system


def _tables(path) -> set[str]:
    with sqlite3.connect(path) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


async def test_new_up_status_down(tmp_path, sqlite_env):
    system = make_system(tmp_path, sqlite_env)
    for name in ("alpha", "beta"):
        assert (await new_revision(system, name, "initial")).exists()
    rows = {s.service: s for s in await status(system)}
    assert rows["alpha"].current is None and rows["alpha"].pending == 1 and rows["alpha"].drift is None

    results = await upgrade(system)
    assert [r.ok for r in results] == [True, True] and all(len(r.applied) == 1 for r in results)
    assert "widgets" in _tables(tmp_path / "data" / "alpha.db")
    assert "gadgets" not in _tables(tmp_path / "data" / "alpha.db")  # one database per service
    assert [r.applied for r in await upgrade(system)] == [[], []]  # nothing pending
    rows = {s.service: s for s in await status(system)}
    assert rows["alpha"].pending == 0 and rows["alpha"].drift == []

    # the model grows a column: status shows drift, `new` writes only that change
    grown = make_system(tmp_path, sqlite_env, extra_column=True)
    assert (await status(grown, ["alpha"]))[0].drift
    path = await new_revision(grown, "alpha", "add colour")
    source = path.read_text()
    assert "add_column('widgets'" in source and "drop_table" not in source
    assert (await upgrade(grown, ["alpha"]))[0].ok
    assert (await status(grown, ["alpha"]))[0].drift == []
    assert await new_revision(grown, "alpha", "nothing") is None

    result = (await downgrade(grown, ["alpha"]))[0]
    assert result.ok and result.after is not None
    result = (await downgrade(grown, ["alpha"], to="base"))[0]
    assert result.ok and result.after is None and "widgets" not in _tables(tmp_path / "data" / "alpha.db")


async def test_autogenerate_never_drops_another_services_tables(tmp_path, sqlite_env):
    """alpha's database also holds beta's table (a shared test database, or a leftover):
    autogenerate for alpha must neither drop it nor touch it."""
    (tmp_path / "data").mkdir()
    with sqlite3.connect(tmp_path / "data" / "alpha.db") as conn:
        conn.execute("CREATE TABLE gadgets (id CHAR(32) PRIMARY KEY, widget_id CHAR(32) NOT NULL)")
    source = (await new_revision(make_system(tmp_path, sqlite_env), "alpha", "initial")).read_text()
    assert "create_table('widgets'" in source
    assert "gadgets" not in source


async def test_service_without_migrations_is_a_clear_error(tmp_path, sqlite_env):
    system = make_system(tmp_path, sqlite_env)
    await new_revision(system, "alpha", "initial")
    with pytest.raises(MigrationError) as caught:
        await upgrade(system)  # beta has none: nothing is applied, not even alpha's
    assert caught.value.service == "beta" and "isles migrate new --service beta" in caught.value.fix
    assert not (tmp_path / "data" / "alpha.db").exists() or "widgets" not in _tables(tmp_path / "data" / "alpha.db")


async def test_database_ahead_of_code_is_refused(tmp_path, sqlite_env):
    system = make_system(tmp_path, sqlite_env)
    first = await new_revision(system, "alpha", "initial")
    await new_revision(system, "beta", "initial")
    grown = make_system(tmp_path, sqlite_env, extra_column=True)
    await upgrade(grown)
    second = await new_revision(grown, "alpha", "add colour")
    await upgrade(grown, ["alpha"])
    second.unlink()  # the code is rolled back, the database is not
    for call in (status(system, ["alpha"]), upgrade(system), downgrade(system, ["alpha"])):
        with pytest.raises(MigrationError) as caught:
            await call
        assert caught.value.service == "alpha" and "ahead of the code" in caught.value.problem
    assert first.exists()


async def test_failing_revision_rolls_back_only_its_service(tmp_path, sqlite_env):
    system = make_system(tmp_path, sqlite_env)
    await new_revision(system, "alpha", "initial")
    path = await new_revision(system, "beta", "initial")
    path.write_text(path.read_text().replace(
        "    op.create_index('idx_gadgets_widget_id'", "    op.execute('SELECT * FROM no_such_table')\n"
        "    op.create_index('idx_gadgets_widget_id'"))
    results = {r.service: r for r in await upgrade(system)}
    assert results["alpha"].ok
    assert not results["beta"].ok and "no_such_table" in results["beta"].error
    assert results["beta"].after is None and results["beta"].applied == []
    assert "gadgets" not in _tables(tmp_path / "data" / "beta.db")  # the table of the same revision too
    assert (await status(system, ["beta"]))[0].current is None


async def test_irreversible_revision_refuses_downgrade(tmp_path, sqlite_env):
    system = make_system(tmp_path, sqlite_env)
    path = await new_revision(system, "alpha", "initial")
    path.write_text(path.read_text().replace('# irreversible = "drops data that cannot be restored"',
                                             'irreversible = "the legacy import cannot be recreated"'))
    await upgrade(system, ["alpha"])
    with pytest.raises(MigrationError) as caught:
        await downgrade(system, ["alpha"])
    assert "legacy import" in caught.value.problem
    assert "widgets" in _tables(tmp_path / "data" / "alpha.db")


async def test_mes_migrations_match_the_models(tmp_path, env):
    from mes.system import system
    results = await upgrade(system)
    assert all(r.ok for r in results)
    rows = await status(system)
    assert all(r.pending == 0 and r.drift == [] for r in rows), rows


@pytest.mark.postgres
async def test_mes_migrations_on_postgres_schema_per_service(pg_database, env, monkeypatch):
    from mes.system import system
    url = await pg_database()
    monkeypatch.setenv("DATABASE_URL", url)
    assert all(r.ok for r in await upgrade(system))
    rows = await status(system)
    assert all(r.pending == 0 and r.drift == [] for r in rows), rows
    assert all(r.ok for r in await downgrade(system, to="base"))
    assert make_url(url).database


async def test_database_made_by_create_all_is_adopted_when_it_matches(tmp_path, sqlite_env):
    from isles.database import Database
    from isles.migrations import targets
    system = make_system(tmp_path, sqlite_env)
    await new_revision(system, "alpha", "initial")
    (target,) = targets(system, ["alpha"])
    database = Database(target.database)
    await database.create_all(target.service.metadata)  # what System.start(create_tables=True) did before
    await database.dispose()
    (result,) = await upgrade(system, ["alpha"])
    assert result.ok and result.adopted and result.applied == []
    assert (await status(system, ["alpha"]))[0].drift == []


async def test_unversioned_database_that_differs_is_refused(tmp_path, sqlite_env):
    (tmp_path / "data").mkdir()
    with sqlite3.connect(tmp_path / "data" / "alpha.db") as conn:
        conn.execute("CREATE TABLE widgets (id CHAR(32) PRIMARY KEY)")
    system = make_system(tmp_path, sqlite_env)
    path = tmp_path / "alpha_migrations"
    # write the revision against a clean database, then point alpha back at the odd one
    other = {**sqlite_env, "ALPHA_DATABASE_URL": f"sqlite:///{tmp_path / 'clean.db'}"}
    await new_revision(make_system(tmp_path, other), "alpha", "initial")
    assert any(path.glob("0001_*.py"))
    with pytest.raises(MigrationError) as caught:
        await upgrade(system, ["alpha"])
    assert "no migration history" in caught.value.problem and "widgets" in caught.value.problem


@pytest.mark.postgres
async def test_non_transactional_revision_builds_index_concurrently(pg_database, tmp_path):
    url = await pg_database()
    env = {"ALPHA_DATABASE_URL": url, "BETA_DATABASE_URL": url}
    system = make_system(tmp_path, env)
    await new_revision(system, "alpha", "initial")
    await upgrade(system, ["alpha"])
    path = await new_revision(system, "alpha", "concurrent index", autogenerate=False)
    source = path.read_text().replace("\nrevision =",
                                      "\ntransactional = False  # CREATE INDEX CONCURRENTLY\nrevision =")
    source = source.replace("    pass\n\n\ndef downgrade", "    with op.get_context().autocommit_block():\n"
                            "        op.create_index('idx_widgets_created_at', 'widgets', ['created_at'], "
                            "postgresql_concurrently=True)\n\n\ndef downgrade", 1)
    source = source.rstrip().removesuffix("pass") + "op.drop_index('idx_widgets_created_at', table_name='widgets')\n"
    path.write_text(source)
    (result,) = await upgrade(system, ["alpha"])
    assert result.ok and len(result.applied) == 1, result
    (result,) = await downgrade(system, ["alpha"])
    assert result.ok, result


@pytest.mark.postgres
async def test_autogenerate_in_a_shared_postgres_database_sees_only_its_schema(pg_database, tmp_path):
    env = {"DATABASE_URL": await pg_database()}  # schema-per-service: alpha and beta in one database
    system = make_system(tmp_path, env)
    for name in ("alpha", "beta"):
        await new_revision(system, name, "initial")
    assert all(r.ok for r in await upgrade(system))
    assert all(s.drift == [] for s in await status(system))
    grown = make_system(tmp_path, env, extra_column=True)
    source = (await new_revision(grown, "alpha", "add colour")).read_text()
    assert "add_column('widgets'" in source
    assert "drop_table" not in source and "gadgets" not in source and "schema=" not in source
    (result,) = await upgrade(grown, ["alpha"])
    assert result.ok and (await status(grown, ["alpha"]))[0].drift == []
