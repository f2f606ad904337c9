"""`isles migrate verify`: every revision's downgrade must restore the schema it started from."""
from __future__ import annotations

import pytest

from isles.migrations import MigrationError, new_revision, verify

from .conftest import make_system


async def _two_revisions(tmp_path, env):
    system = make_system(tmp_path, env)
    await new_revision(system, "alpha", "initial")
    from isles.migrations import upgrade
    await upgrade(system, ["alpha"])
    grown = make_system(tmp_path, env, extra_column=True)
    second = await new_revision(grown, "alpha", "add colour")
    return grown, second


async def test_good_revisions_round_trip(tmp_path, sqlite_env):
    system, _ = await _two_revisions(tmp_path, sqlite_env)
    (report,) = await verify(system, ["alpha"])
    assert report.ok and len(report.checked) == 2


async def test_downgrade_that_does_not_restore_is_caught(tmp_path, sqlite_env):
    system, second = await _two_revisions(tmp_path, sqlite_env)
    source = second.read_text()
    # the downgrade "forgets" to drop the column it should remove, and drops an index instead
    second.write_text(source.replace("op.drop_column('widgets', 'colour')",
                                     "op.drop_index('idx_widgets_name', table_name='widgets')"))
    (report,) = await verify(system, ["alpha"])
    assert not report.ok
    assert "does not restore" in report.problems[0] and "widgets" in report.problems[0]


async def test_empty_downgrade_fails_unless_marked_irreversible(tmp_path, sqlite_env):
    system, second = await _two_revisions(tmp_path, sqlite_env)
    source = second.read_text()
    lines = source.split("def downgrade() -> None:")[0] + 'def downgrade() -> None:\n    """Nothing."""\n    pass\n'
    second.write_text(lines)
    (report,) = await verify(system, ["alpha"])
    assert not report.ok and "downgrade() does nothing" in report.problems[0]

    second.write_text(lines.replace('# irreversible = "drops data that cannot be restored"',
                                    'irreversible = "colour values come from a one-off import"'))
    (report,) = await verify(system, ["alpha"])
    assert report.ok and list(report.skipped.values()) == ["colour values come from a one-off import"]


async def test_service_without_migrations(tmp_path, sqlite_env):
    with pytest.raises(MigrationError):
        await verify(make_system(tmp_path, sqlite_env), ["beta"])


async def test_mes_migrations_are_reversible(env):
    from mes.system import system
    reports = await verify(system)
    assert all(r.ok and r.checked for r in reports), reports


@pytest.mark.postgres
async def test_mes_migrations_are_reversible_on_postgres(pg_database, env, monkeypatch):
    from mes.system import system
    monkeypatch.setenv("DATABASE_URL", await pg_database())
    reports = await verify(system)
    assert all(r.ok and r.checked for r in reports), reports
