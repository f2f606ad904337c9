"""Findings as text for people, JSON for scripts, SARIF 2.1.0 for code scanning, and GitHub
workflow annotations."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from isles import __version__
from isles.lint.findings import Finding
from isles.lint.rules import RULES
from isles.lint.runner import LintReport

Format = Literal["text", "json", "sarif", "github"]
FORMATS = ("text", "json", "sarif", "github")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _where(f: Finding, root: Path | None) -> str:
    path = f.relpath(root)
    if path is None:
        return f"<service {f.service}>"
    return f"{path}:{f.line}" if f.line else path


def text(report: LintReport, root: Path | None = None) -> str:
    lines = [f"{_where(f, root)}: {f.code} [{f.level}] {f.message} ({f.name})" for f in report.findings]
    counts = {level: sum(1 for f in report.findings if f.level == level) for level in ("error", "warning", "note")}
    summary = ", ".join(f"{n} {level}{'s' if n != 1 else ''}" for level, n in counts.items())
    extra = []
    if report.suppressed:
        extra.append(f"{len(report.suppressed)} ignored inline")
    if report.baselined:
        extra.append(f"{len(report.baselined)} in baseline")
    lines.append(("clean: " if not report.findings else "") + summary + (f" ({', '.join(extra)})" if extra else ""))
    return "\n".join(lines)


def as_json(report: LintReport, root: Path | None = None) -> str:
    return json.dumps({
        "findings": [{"code": f.code, "name": f.name, "severity": f.level, "message": f.message,
                      "service": f.service, "path": f.relpath(root), "line": f.line, "symbol": f.symbol,
                      "fingerprint": f.fingerprint(root)} for f in report.findings],
        "summary": {"errors": len(report.errors), "total": len(report.findings),
                    "ignored": len(report.suppressed), "baselined": len(report.baselined)},
    }, indent=2)


def sarif(report: LintReport, root: Path | None = None) -> str:
    codes = sorted(RULES)
    results = []
    for f in report.findings:
        result = {"ruleId": f.code, "ruleIndex": codes.index(f.code), "level": f.level,
                  "message": {"text": f.message},
                  "partialFingerprints": {"islesFingerprint/v1": f.fingerprint(root)}}
        path = f.relpath(root)
        if path is not None:
            location: dict[str, Any] = {
                "physicalLocation": {"artifactLocation": {"uri": path, "uriBaseId": "%SRCROOT%"}}}
            if f.line:
                location["physicalLocation"]["region"] = {"startLine": f.line}
            result["locations"] = [location]
        results.append(result)
    return json.dumps({
        "$schema": SARIF_SCHEMA, "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "isles", "semanticVersion": __version__,
                "rules": [{"id": code, "name": RULES[code].name,
                           "shortDescription": {"text": RULES[code].summary},
                           "defaultConfiguration": {"level": RULES[code].severity}} for code in codes],
            }},
            "results": results,
        }],
    }, indent=2)


def _escape(value: str, *, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def github(report: LintReport, root: Path | None = None) -> str:
    kinds = {"error": "error", "warning": "warning", "note": "notice"}
    lines = []
    for f in report.findings:
        props = []
        path = f.relpath(root)
        if path:
            props.append(f"file={_escape(path, prop=True)}")
            if f.line:
                props.append(f"line={f.line}")
        props.append(f"title={_escape(f'{f.code} {f.name}', prop=True)}")
        lines.append(f"::{kinds[f.level]} {','.join(props)}::{_escape(f.message)}")
    return "\n".join(lines)


def render(report: LintReport, fmt: Format = "text", root: Path | None = None) -> str:
    return {"text": text, "json": as_json, "sarif": sarif, "github": github}[fmt](report, root)
