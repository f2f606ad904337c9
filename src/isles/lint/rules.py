"""The rules ``isles lint`` knows: a stable code, a short name, a default severity, a summary.

Codes never change meaning once published (baselines and ignore comments refer to them):
ISL0xx are about the lint itself, ISL1xx about models, ISL2xx about migration SQL, ISL3xx about
service boundaries in code.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "note"]
SEVERITIES: tuple[Severity, ...] = ("error", "warning", "note")


@dataclass(frozen=True)
class Rule:
    code: str
    name: str
    severity: Severity
    summary: str


_ALL = [
    Rule("ISL001", "ignore-without-reason", "error", "an ignore comment must say why the rule does not apply"),
    Rule("ISL002", "unused-ignore", "warning", "an ignore comment that suppresses nothing"),
    Rule("ISL003", "unknown-rule", "error", "an ignore comment names a code isles does not have"),
    Rule("ISL004", "unrenderable-migration", "error", "a revision cannot be rendered to PostgreSQL SQL"),
    Rule("ISL101", "table-name", "error", "table names are snake_case and plural"),
    Rule("ISL102", "column-name", "error", "column names are snake_case"),
    Rule("ISL103", "index-name", "error", "index names are idx_<table>_<columns>"),
    Rule("ISL104", "identifier-length", "error", "identifiers fit PostgreSQL's 63-byte limit"),
    Rule("ISL105", "uuid-primary-key", "error", "primary keys are a single UUID column"),
    Rule("ISL106", "timestamps", "error",
         "tables have created_at and updated_at with time zone (isles.ReadModel copies are exempt)"),
    Rule("ISL107", "unindexed-reference", "error", "every *_id column leads an index"),
    Rule("ISL108", "cross-service-foreign-key", "error", "no foreign key to a table the service does not own"),
    Rule("ISL109", "cross-service-relationship", "error", "no ORM relationship to another service's model"),
    Rule("ISL201", "destructive-change", "error", "a migration drops or truncates data"),
    Rule("ISL202", "rename", "error", "a migration renames a table or column (breaks running code)"),
    Rule("ISL203", "not-null-without-default", "error", "a NOT NULL column added to an existing table has no default"),
    Rule("ISL204", "non-concurrent-index", "warning", "an index on an existing table is built without CONCURRENTLY"),
    Rule("ISL205", "long-locking-ddl", "warning", "DDL that rewrites or scans an existing table under a strong lock"),
    Rule("ISL206", "missing-timeouts", "error", "a migration sets no lock_timeout / statement_timeout"),
    Rule("ISL301", "cross-service-import", "error", "a service imports another service's modules"),
    Rule("ISL302", "cross-service-dynamic-import", "error", "a service imports another service's modules dynamically"),
    Rule("ISL303", "cross-service-engine", "error", "a service opens another service's database, URL or SQLite file"),
    Rule("ISL304", "cross-service-raw-sql", "error", "raw SQL names another service's schema"),
]
RULES: dict[str, Rule] = {rule.code: rule for rule in _ALL}


def rule(code: str) -> Rule:
    return RULES[code]
