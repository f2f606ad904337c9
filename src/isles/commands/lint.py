"""`isles lint`: models, migrations and service boundaries against the database-per-service rules."""
from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, List, Optional

import typer

from isles.commands.common import SYSTEM_HELP, console, fail, load_system
from isles.errors import IslesError

app = typer.Typer(add_completion=False)


def _project_settings() -> dict[str, Any]:
    """``[tool.isles.lint]`` of ./pyproject.toml: ``severity = {ISL204 = "error"}``, ``baseline = "..."``."""
    path = Path("pyproject.toml")
    if not path.exists():
        return {}
    settings: dict[str, Any] = tomllib.loads(path.read_text()).get("tool", {}).get("isles", {}).get("lint", {})
    return settings


@app.command("lint")
def lint_command(
    system_path: Optional[str] = typer.Option(None, "--system", "-s", help=SYSTEM_HELP),
    service: Optional[List[str]] = typer.Option(None, "--service", help="Only these services (repeatable)."),
    output_format: str = typer.Option("text", "--format", "-f", help="text, json, sarif or github."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write the report to this file."),
    baseline: Optional[Path] = typer.Option(None, "--baseline", help="Accept the findings recorded in this file."),
    update_baseline: bool = typer.Option(False, "--update-baseline",
                                         help="Record the current findings in --baseline and exit 0."),
    severity: Optional[List[str]] = typer.Option(None, "--severity",
                                                 help="CODE=error|warning|note|off (repeatable)."),
    migrations: bool = typer.Option(True, "--migrations/--no-migrations", help="Lint each revision's SQL."),
    list_rules: bool = typer.Option(False, "--list-rules", help="Print the rules and exit."),
) -> None:
    """Check every service's models, migrations and code against the database-per-service rules.

    Models: naming, UUID keys, timestamps, indexed *_id columns, no cross-service keys. Migrations:
    each revision's SQL (drops, renames, locks, timeouts). Code: imports, engines and raw SQL that
    reach another service. Silence one finding with `# ignore[CODE] reason`; adopt on an
    existing code base with --baseline. Exits 1 when an error-level finding remains.
    Settings: [tool.isles.lint] severity = {ISL204 = "error"}, baseline = "FILE" in pyproject.toml.
    """
    from isles.lint import FORMATS, RULES, LintOptions, collect, finalize, render
    from isles.lint import baseline as baseline_file
    from isles.lint.runner import active_codes

    if list_rules:
        for rule in RULES.values():
            console.print(f"{rule.code}  {rule.name:<30} {rule.severity:<8} {rule.summary}", highlight=False)
        return
    if output_format not in FORMATS:
        fail(f"--format {output_format!r} is not one of {', '.join(FORMATS)}")
    settings = _project_settings()
    levels = dict(settings.get("severity", {}))
    for item in severity or []:
        code, _, level = item.partition("=")
        levels[code.strip().upper()] = level.strip().lower()
    baseline = baseline or (Path(settings["baseline"]) if settings.get("baseline") else None)
    try:
        system = load_system(system_path)
        found, files = collect(system, service or None, migrations=migrations)
        if update_baseline:
            if baseline is None:
                fail("--update-baseline needs --baseline FILE (or [tool.isles.lint] baseline)")
            report = finalize(found, files, LintOptions(severity=levels), active_codes(migrations))
            baseline_file.write(baseline, report.findings)
            console.print(f"recorded {len(report.findings)} finding(s) in {baseline}")
            return
        report = finalize(found, files, LintOptions(severity=levels, baseline=baseline), active_codes(migrations))
    except IslesError as exc:
        fail(str(exc), code=2)
    text = render(report, output_format)  # type: ignore[arg-type]
    if output is not None:
        output.write_text(text + "\n")
    elif output_format == "text":
        console.print(text, highlight=False, markup=False)
    else:
        print(text)
    raise typer.Exit(0 if report.ok else 1)
