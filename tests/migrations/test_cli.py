"""The Typer apps the lead registers in isles.cli: migrate, db, lint, audit-isolation."""
from __future__ import annotations

import json
import shutil

from typer.testing import CliRunner

runner = CliRunner()


def test_migrate_commands_on_the_mes(env, tmp_path, monkeypatch):
    from isles.commands.migrate import app
    from isles.migrations import migrations_dir
    from mes.system import system
    for service in system.services.values():  # work on copies: `new` must never write into src/ from a test
        copy = tmp_path / f"{service.name}_migrations"
        shutil.copytree(migrations_dir(service), copy)
        monkeypatch.setattr(service, "migrations_dir", copy, raising=False)
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 1 and "pending" in result.output  # behind: exit 1 (usable in CI)
    result = runner.invoke(app, ["up"])
    assert result.exit_code == 0, result.output
    assert "upgraded" in result.output
    result = runner.invoke(app, ["status"])
    assert result.exit_code == 0 and "none" in result.output, result.output
    result = runner.invoke(app, ["new", "--service", "material", "-m", "nothing to do"])
    assert result.exit_code == 0 and "no revision written" in result.output
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0 and "round-trip" in result.output, result.output
    result = runner.invoke(app, ["up", "--service", "nope"])
    assert result.exit_code == 2 and "no service 'nope'" in result.output


def test_db_provision_print_sql_masks_passwords(env, monkeypatch):
    from isles.commands.db import app
    monkeypatch.setenv("DATABASE_URL", "postgresql://admin:topsecret@db.example/mes")
    monkeypatch.setenv("MATERIAL_APP_PASSWORD", "app-secret")
    result = runner.invoke(app, ["provision", "--print-sql", "--role-prefix", "acme"])
    assert result.exit_code == 0, result.output
    assert "acme_material_app" in result.output and "PASSWORD '***'" in result.output
    assert "app-secret" not in result.output and "topsecret" not in result.output


def test_lint_command_on_the_mes(env):
    from isles.commands.lint import app
    result = runner.invoke(app, ["--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["summary"]["errors"] == 0
    result = runner.invoke(app, ["--format", "yaml"])
    assert result.exit_code == 1 and "not one of" in result.output
