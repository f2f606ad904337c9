"""Rules on each revision's SQL as PostgreSQL will run it (rendered offline per revision).

Changes to tables created in the same revision are exempt from the locking rules: nobody else
can be waiting on a table that did not exist before the transaction.
"""
from __future__ import annotations

import re
from pathlib import Path

from isles.lint.findings import Finding
from isles.migrations.render import RenderedRevision
from isles.migrations.scripts import VERSION_TABLE

_IDENT = r'(?:"[^"]+"|[\w]+)(?:\.(?:"[^"]+"|[\w]+))?'
_CREATE_TABLE = re.compile(rf"^CREATE TABLE (?:IF NOT EXISTS )?({_IDENT})", re.I)
_DROP_TABLE = re.compile(rf"^DROP TABLE (?:IF EXISTS )?({_IDENT})", re.I)
_TRUNCATE = re.compile(rf"^TRUNCATE (?:TABLE )?({_IDENT})", re.I)
_ALTER = re.compile(rf"^ALTER TABLE (?:ONLY )?(?:IF EXISTS )?({_IDENT})\s+(.*)$", re.I | re.S)
_CREATE_INDEX = re.compile(rf"^CREATE (?:UNIQUE )?INDEX (CONCURRENTLY )?(?:IF NOT EXISTS )?({_IDENT})? ?"
                           rf"ON (?:ONLY )?({_IDENT})", re.I)


def _bare(name: str) -> str:
    return name.split(".")[-1].strip('"').lower()


def statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _line_of(path: Path, *needles: str) -> int | None:
    """The first line of ``upgrade()`` mentioning all needles (where an ignore comment can go)."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return None
    start = next((i for i, line in enumerate(lines) if line.startswith("def upgrade")), 0)
    end = next((i for i, line in enumerate(lines) if line.startswith("def downgrade")), len(lines))
    for number in range(start, end):
        if all(n in lines[number] for n in needles):
            return number + 1
    return start + 1 if lines else None


def check(rendered: RenderedRevision) -> list[Finding]:
    found: list[Finding] = []
    new_tables: set[str] = set()
    timeouts = {"lock_timeout": False, "statement_timeout": False}
    has_ddl = False
    path, rev = rendered.path, rendered.revision

    def add(code: str, message: str, symbol: str, *needles: str) -> None:
        found.append(Finding(code, f"{rev}: {message}", rendered.service, path, _line_of(path, *needles),
                             f"{rev}:{symbol}"))

    if rendered.error is not None:
        add("ISL004", f"cannot be rendered to SQL ({rendered.error}); fix the revision, then lint again",
            "render", "def upgrade")
        return found

    for statement in statements(rendered.upgrade_sql):
        flat = " ".join(statement.split())
        upper = flat.upper()
        if VERSION_TABLE.upper() in upper and not upper.startswith(("DROP", "ALTER")):
            continue
        if upper.startswith("SET "):
            for key in timeouts:
                if key.upper() in upper:
                    timeouts[key] = True
            continue
        if re.match(r"^(CREATE|ALTER|DROP|TRUNCATE|COMMENT|GRANT|REVOKE)\b", upper):
            has_ddl = True
        if m := _CREATE_TABLE.match(flat):
            new_tables.add(_bare(m.group(1)))
            continue
        if m := _DROP_TABLE.match(flat):
            table = _bare(m.group(1))
            add("ISL201", f"drops table {table} and all its rows", f"drop:{table}", "drop_table", table)
            continue
        if m := _TRUNCATE.match(flat):
            table = _bare(m.group(1))
            add("ISL201", f"truncates {table}", f"truncate:{table}", table)
            continue
        if m := _CREATE_INDEX.match(flat):
            concurrently, index, table = m.group(1), _bare(m.group(2) or ""), _bare(m.group(3))
            if not concurrently and table not in new_tables:
                add("ISL204", f"CREATE INDEX {index} on existing table {table} blocks writes while it builds; "
                              f"build it in a revision declaring transactional = False, "
                              f"with postgresql_concurrently=True "
                              f"inside op.get_context().autocommit_block()",
                    f"index:{index}", index or table)
            continue
        if m := _ALTER.match(flat):
            table, action = _bare(m.group(1)), m.group(2)
            action_upper = action.upper()
            if table in new_tables:
                continue
            if re.search(r"\bRENAME\b", action_upper):
                add("ISL202", f"renames in {table} ({action[:60]}); running code still uses the old name - "
                              f"add the new one, copy, switch, then drop", f"rename:{table}", table)
            if col := re.search(r"\bDROP COLUMN (?:IF EXISTS )?(\"[^\"]+\"|\w+)", action, re.I):
                column = col.group(1).strip('"')
                add("ISL201", f"drops column {table}.{column} and its data", f"drop:{table}.{column}",
                    "drop_column", column)
            if add_col := re.search(r"\bADD (?:COLUMN )?(?:IF NOT EXISTS )?(\"[^\"]+\"|\w+) (.*)", action, re.I):
                column, spec = add_col.group(1).strip('"'), add_col.group(2).upper()
                is_constraint = re.match(r"^(CONSTRAINT|PRIMARY|UNIQUE|FOREIGN|CHECK)$", column.upper())
                if "NOT NULL" in spec and "DEFAULT" not in spec and not is_constraint:
                    add("ISL203", f"adds NOT NULL column {table}.{column} without a default: fails on a table "
                                  f"with rows (add it nullable, backfill, then set NOT NULL)",
                        f"notnull:{table}.{column}", "add_column", column)
            if re.search(r"\bALTER (?:COLUMN )?\S+ (SET DATA )?TYPE\b", action_upper):
                add("ISL205", f"changes a column type of {table}: rewrites the table under an exclusive lock",
                    f"type:{table}", "alter_column", table)
            if re.search(r"\bSET NOT NULL\b", action_upper):
                add("ISL205", f"SET NOT NULL on {table} scans the whole table under an exclusive lock; add a "
                              f"CHECK (...) NOT VALID constraint and VALIDATE it first", f"setnotnull:{table}",
                    "alter_column", table)
            if (re.search(r"\bADD CONSTRAINT\b.*\b(FOREIGN KEY|CHECK)\b", action_upper)
                    and "NOT VALID" not in action_upper):
                add("ISL205", f"adds a constraint to {table} that is validated under lock; add it NOT VALID "
                              f"and VALIDATE CONSTRAINT in a later step", f"constraint:{table}", table)
            if (re.search(r"\bADD (CONSTRAINT \S+ )?(UNIQUE|PRIMARY KEY)\b", action_upper)
                    and "USING INDEX" not in action_upper):
                add("ISL205", f"adds a unique/primary key constraint to {table}, building its index under lock; "
                              f"build the index CONCURRENTLY and add the constraint USING INDEX",
                    f"unique:{table}", table)
    if has_ddl:
        missing = [k for k, present in timeouts.items() if not present]
        if missing:
            add("ISL206", f"runs DDL without {' and '.join(missing)}: a blocked lock queues every query of the "
                          f"service behind it; start upgrade() with timeouts.apply(lock='5s', statement='60s')",
                "timeouts", "def upgrade")
    return found
