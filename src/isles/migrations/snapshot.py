"""A comparable description of a live schema: what ``migrate verify`` checks round trips against."""
from __future__ import annotations

from typing import Any

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from isles.migrations.scripts import VERSION_TABLE

Snapshot = dict[str, dict[str, Any]]


def take(conn: Connection, schema: str | None = None) -> Snapshot:
    """Tables of ``schema`` (default: the connection's) with columns, keys, indexes and constraints."""
    inspector = inspect(conn)
    if schema and not inspector.has_schema(schema):
        return {}
    tables: Snapshot = {}
    for name in sorted(inspector.get_table_names(schema=schema)):
        if name == VERSION_TABLE:
            continue
        columns = [(c["name"], str(c["type"]), bool(c["nullable"]), str(c.get("default"))) for c in
                   inspector.get_columns(name, schema=schema)]
        pk = inspector.get_pk_constraint(name, schema=schema)
        tables[name] = {
            "columns": columns,
            "primary_key": tuple(pk.get("constrained_columns") or ()),
            "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                              for i in inspector.get_indexes(name, schema=schema)),
            "unique": sorted((u["name"] or "", tuple(u["column_names"]))
                             for u in inspector.get_unique_constraints(name, schema=schema)),
            "foreign_keys": sorted((f["name"] or "", tuple(f["constrained_columns"]), f["referred_table"],
                                    tuple(f["referred_columns"]))
                                   for f in inspector.get_foreign_keys(name, schema=schema)),
            "checks": sorted((c["name"] or "", c["sqltext"])
                             for c in inspector.get_check_constraints(name, schema=schema)),
        }
    return tables


def differences(expected: Snapshot, actual: Snapshot) -> list[str]:
    """Human-readable differences, empty when the schemas match."""
    found = []
    for name in sorted(set(expected) | set(actual)):
        if name not in actual:
            found.append(f"table {name} is missing")
        elif name not in expected:
            found.append(f"table {name} is left over")
        else:
            for key in expected[name]:
                if expected[name][key] != actual[name][key]:
                    found.append(f"table {name}: {key} differ: expected {expected[name][key]}, "
                                 f"got {actual[name][key]}")
    return found
