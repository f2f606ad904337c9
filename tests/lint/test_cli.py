"""`isles lint` as a command: exit codes, formats, severities and the baseline workflow."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from isles.commands.lint import app

from .conftest import FIXTURES

runner = CliRunner()


def test_lint_command_baseline_workflow(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(FIXTURES / "systems"))
    monkeypatch.chdir(tmp_path)  # no pyproject.toml settings here
    system = ["--system", "gadgetshop:system"]
    result = runner.invoke(app, system)
    assert result.exit_code == 1 and "ISL105" in result.output

    result = runner.invoke(app, [*system, "--severity", "ISL105=warning"])
    assert result.exit_code == 0 and "[warning]" in result.output

    result = runner.invoke(app, [*system, "--format", "github"])
    assert result.output.startswith("::error file=") and "ISL105" in result.output

    baseline = tmp_path / "lint-baseline.json"
    result = runner.invoke(app, [*system, "--baseline", str(baseline), "--update-baseline"])
    assert result.exit_code == 0 and json.loads(baseline.read_text())["findings"][0]["code"] == "ISL105"
    result = runner.invoke(app, [*system, "--baseline", str(baseline)])
    assert result.exit_code == 0 and "1 in baseline" in result.output

    sarif = tmp_path / "lint.sarif"
    result = runner.invoke(app, [*system, "--format", "sarif", "--output", str(sarif)])
    assert result.exit_code == 1 and json.loads(sarif.read_text())["runs"][0]["results"][0]["ruleId"] == "ISL105"
