"""Run every rule over a System: its services' models, migrations and code, then apply ignores,
severity settings and the baseline."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Literal, Mapping

from isles.config import resolve_database
from isles.errors import ConfigurationError
from isles.lint import baseline as baseline_file
from isles.lint import boundaries, ignores, migration_sql, models
from isles.lint.boundaries import ServiceCode
from isles.lint.findings import Finding
from isles.lint.rules import RULES, SEVERITIES, Severity
from isles.system import System

Setting = Severity | Literal["off"]


@dataclass
class LintOptions:
    #: per-code severity overrides; "off" disables the rule
    severity: dict[str, Setting] = field(default_factory=dict)
    baseline: Path | None = None
    root: Path | None = None  # paths in output and baselines are relative to it (default: cwd)

    def validate(self) -> None:
        for code, level in self.severity.items():
            if code not in RULES:
                raise ConfigurationError(f"lint setting names unknown rule {code!r}",
                                         fix=f"use one of {', '.join(RULES)}")
            if level not in (*SEVERITIES, "off"):
                raise ConfigurationError(f"lint severity {level!r} for {code} is not one of "
                                         f"error, warning, note, off", fix="correct the setting")


@dataclass
class LintReport:
    findings: list[Finding]  # what remains, after ignores and the baseline
    suppressed: list[Finding] = field(default_factory=list)
    baselined: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def package_dir(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def finalize(found: list[Finding], files: Iterable[Path], options: LintOptions | None = None,
             active: set[str] | None = None) -> LintReport:
    """Ignores first (they need the raw findings), then severities, then the baseline.

    ``active``: codes of the rules that ran (default: all) - ignores of other rules are not unused.
    """
    options = options or LintOptions()
    options.validate()
    active = set(RULES) if active is None else active
    active -= {code for code, level in options.severity.items() if level == "off"}
    kept, suppressed = ignores.apply(found, set(files), active)
    result = []
    for f in kept:
        setting = options.severity.get(f.code)
        if setting == "off":
            continue
        result.append(replace(f, severity=setting) if setting else f)
    result.sort(key=lambda f: (f.relpath(options.root) or "", f.line or 0, f.code))
    known: list[Finding] = []
    if options.baseline is not None:
        result, known = baseline_file.split(result, baseline_file.load(options.baseline), options.root)
    return LintReport(result, suppressed, known)


def collect(system: System, services: Iterable[str] | None = None, env: Mapping[str, str] | None = None,
            *, migrations: bool = True) -> tuple[list[Finding], set[Path]]:
    """All raw findings of a System and the files that were read (where ignores may live)."""
    from isles.migrations.render import render_all
    from isles.migrations.runner import targets
    from isles.migrations.scripts import has_revisions

    env = system.env if env is None else env
    names = list(services) if services else list(system.services)
    found: list[Finding] = []
    files: set[Path] = set()
    codes = []
    for name in system.services:
        service = system.services[name]
        directory = package_dir(service.package)
        if directory is None:
            continue
        schema = resolve_database(name, env).schema
        codes.append(ServiceCode(name, service.package, directory, schema))
    for name in names:
        service = system.service(name)
        code = next((c for c in codes if c.name == name), None)
        source_files = sorted(code.directory.rglob("*.py")) if code else []
        files.update(source_files)
        found += models.check(name, service.metadata, models.Locator(source_files))
    if migrations:
        for target in targets(system, names, env):
            if not has_revisions(target.directory):
                continue
            for rendered in render_all(target):
                files.add(rendered.path)
                found += migration_sql.check(rendered)
    code_found, code_files = boundaries.check(codes)  # all services: each must know the others
    selected_dirs = [c.directory for c in codes if c.name in names]
    files.update(p for p in code_files if any(p.is_relative_to(d) for d in selected_dirs))
    found += [f for f in code_found if f.service in names]
    # model findings in files outside the service packages (e.g. mixins in a shared module)
    files.update(f.path for f in found if f.path is not None)
    return found, files


def lint_system(system: System, services: Iterable[str] | None = None, options: LintOptions | None = None,
                env: Mapping[str, str] | None = None, *, migrations: bool = True) -> LintReport:
    """Lint a whole System (what ``isles lint`` runs)."""
    found, files = collect(system, services, env, migrations=migrations)
    return finalize(found, files, options, active_codes(migrations))


def active_codes(migrations: bool = True) -> set[str]:
    return {code for code in RULES if migrations or not code.startswith("ISL2")}
