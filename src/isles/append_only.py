"""Rules the database itself enforces on a table: no UPDATE, no DELETE (and no TRUNCATE).

An audit trail that the application merely promises not to change is not an audit trail (21 CFR
Part 11 11.10(e): "UPDATE/DELETE of audit entries fails even for admins"). So the refusal lives in
the database, as triggers, and holds for every connection - the service's own role, the table's
owner, an operator with psql - not only for isles' code. On PostgreSQL the trigger function
raises ``insufficient_privilege`` (SQLSTATE 42501); on SQLite ``RAISE(ABORT, ...)`` fails the
statement. Both roll back nothing else: the caller's transaction decides.

The statements are plain strings, per dialect, so both ``create_all`` (through ``after_create``
DDL events: :func:`listen`) and a migration (``op.execute``) run the very same SQL. Table names
are unqualified: a service's connection (and its migrations) find its schema by ``search_path``.

This module imports nothing from isles, so the migration steps in
:mod:`isles.migrations.framework_tables` and any service's models may use it.
"""
from __future__ import annotations

from sqlalchemy import Table, event
from sqlalchemy.schema import DDL

__all__ = ["DIALECTS", "drop_sql", "listen", "refuse_sql", "refuse_statements"]

#: the dialects that get triggers (another dialect would silently enforce nothing: refuse it)
DIALECTS = ("sqlite", "postgresql")


def _sqlite_refuse(table: str, operation: str, message: str) -> str:
    return (f"CREATE TRIGGER IF NOT EXISTS trg_{table}_no_{operation.lower()} BEFORE {operation} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END")


def _postgres_refuse(table: str, function: str, operations: str, message: str) -> list[str]:
    return [
        f"CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS "
        f"$fn$ BEGIN RAISE EXCEPTION '{message}' USING ERRCODE = 'insufficient_privilege'; END $fn$",
        f"CREATE TRIGGER trg_{table}_refuse BEFORE {operations} ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()",
    ]


def refuse_statements(table: str, *, message: str, function: str, delete_only: bool = False) -> dict[str, list[str]]:
    """Per dialect, the statements that make ``table`` refuse UPDATE and DELETE (``delete_only``:
    DELETE only, for rows that may change but never disappear). ``function`` names the PostgreSQL
    trigger function; append-only tables also refuse TRUNCATE there."""
    if "'" in message:
        raise ValueError("the refusal message is SQL text: it must not contain a quote")
    if delete_only:
        return {"sqlite": [_sqlite_refuse(table, "DELETE", message)],
                "postgresql": _postgres_refuse(table, function, "DELETE", message)}
    return {
        "sqlite": [_sqlite_refuse(table, "UPDATE", message), _sqlite_refuse(table, "DELETE", message)],
        "postgresql": [*_postgres_refuse(table, function, "UPDATE OR DELETE", message),
                       f"CREATE TRIGGER trg_{table}_no_truncate BEFORE TRUNCATE ON {table} "
                       f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()"],
    }


def refuse_sql(table: str, dialect: str, *, message: str, function: str, delete_only: bool = False) -> list[str]:
    """The statements of :func:`refuse_statements` for one dialect (``op.get_context().dialect.name``)."""
    if dialect not in DIALECTS:
        raise ValueError(f"{table}: no append-only triggers for the {dialect} dialect (known: {', '.join(DIALECTS)})")
    return refuse_statements(table, message=message, function=function, delete_only=delete_only)[dialect]


def drop_sql(dialect: str, function: str) -> list[str]:
    """What a downgrade runs besides dropping the table: the table's triggers go with it, but a
    PostgreSQL trigger function does not."""
    return [f"DROP FUNCTION IF EXISTS {function}() CASCADE"] if dialect == "postgresql" else []


def listen(table: Table, statements: dict[str, list[str]]) -> None:
    """Run ``statements`` (per dialect) right after ``create_all`` creates ``table``."""
    for dialect, sqls in statements.items():
        for sql in sqls:
            ddl = DDL(sql)  # type: ignore[no-untyped-call]  # third-party: SQLAlchemy's DDL.__init__ is unannotated
            event.listen(table, "after_create", ddl.execute_if(dialect=dialect))
