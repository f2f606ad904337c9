"""Inline ignores, severity settings, baselines and the four output formats."""
from __future__ import annotations

import json

import pytest

from isles.errors import ConfigurationError
from isles.lint import LintOptions, finalize, render
from isles.lint import baseline as baseline_file

from .conftest import FIXTURES, lint_model_file


def test_ignores_need_a_reason_and_must_be_used():
    path = FIXTURES / "models" / "ignores.py"
    report = lint_model_file(path)
    by_code = {f.code: f for f in report.findings}
    assert [f.code for f in report.suppressed] == ["ISL101"]  # "legacy", ignored with a reason
    assert "ISL105" in by_code  # the ignore without a reason does not suppress ...
    assert by_code["ISL001"].line == 10  # ... and is itself reported
    assert by_code["ISL002"].line == 12  # suppresses nothing
    assert by_code["ISL003"].line == 13 and "ISL999" in by_code["ISL003"].message


def test_severity_settings_and_off():
    path = FIXTURES / "models" / "ISL107_fail.py"
    report = lint_model_file(path, LintOptions(severity={"ISL107": "warning"}))
    assert [f.level for f in report.findings if f.code == "ISL107"] == ["warning"] and report.ok
    report = lint_model_file(path, LintOptions(severity={"ISL107": "off"}))
    assert report.findings == []
    with pytest.raises(ConfigurationError):
        lint_model_file(path, LintOptions(severity={"ISL107": "fatal"}))


def test_baseline_accepts_known_findings_only(tmp_path):
    from isles.lint import models

    from .conftest import load
    path = FIXTURES / "models" / "ISL106_fail.py"
    before = lint_model_file(path)
    assert before.findings
    baseline = tmp_path / "baseline.json"
    baseline_file.write(baseline, before.findings)
    after = lint_model_file(path, LintOptions(baseline=baseline))
    assert after.findings == [] and len(after.baselined) == len(before.findings) and after.ok
    # a new problem is still reported
    extra = models.check("widgets", load(FIXTURES / "models" / "ISL105_fail.py").metadata,
                         models.Locator([FIXTURES / "models" / "ISL105_fail.py"]))
    merged = finalize(before.findings + extra, {path}, LintOptions(baseline=baseline))
    assert {f.code for f in merged.findings} >= {"ISL105"}
    assert all(f.path.name == "ISL105_fail.py" for f in merged.findings)
    with pytest.raises(ConfigurationError):
        lint_model_file(path, LintOptions(baseline=tmp_path / "missing.json"))


def test_output_formats():
    report = lint_model_file(FIXTURES / "models" / "ISL102_fail.py")
    text = render(report, "text")
    assert "ISL102 [error]" in text and "column-name" in text and text.splitlines()[-1].startswith("1 error")

    data = json.loads(render(report, "json"))
    assert data["summary"]["errors"] == 1 and data["findings"][0]["code"] == "ISL102"
    assert data["findings"][0]["line"] and data["findings"][0]["fingerprint"]

    sarif = json.loads(render(report, "sarif"))
    assert sarif["version"] == "2.1.0" and "sarif-2.1.0" in sarif["$schema"]
    run = sarif["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    result = run["results"][0]
    assert rules[result["ruleIndex"]]["id"] == result["ruleId"] == "ISL102"
    assert result["level"] == "error" and result["message"]["text"]
    region = result["locations"][0]["physicalLocation"]
    assert region["artifactLocation"]["uri"].endswith("ISL102_fail.py") and region["region"]["startLine"] > 0

    annotation = render(report, "github")
    assert annotation.startswith("::error file=") and ",line=" in annotation
    assert "title=ISL102 column-name::" in annotation
