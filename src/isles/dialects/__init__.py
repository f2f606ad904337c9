"""The SQL that differs between the databases isles runs on: one module per dialect, one interface.

Everything above this package (unit of work, relay, consumer, replicas) asks its service's
:class:`Dialect` instead of branching on the database; a new backend is a new module here that
passes the same tests (``tests/isles/test_dialects.py``).
"""
from __future__ import annotations

from isles.database import Database
from isles.dialects.base import Dialect
from isles.dialects.postgres import PostgresDialect
from isles.dialects.sqlite import SqliteDialect

__all__ = ["Dialect", "PostgresDialect", "SqliteDialect", "dialect_for"]

_DIALECTS: dict[str, Dialect] = {"postgresql": PostgresDialect(), "sqlite": SqliteDialect()}


def dialect_for(database: Database) -> Dialect:
    """The dialect adapter of ``database`` (one shared, stateless instance per kind)."""
    return _DIALECTS[database.dialect]
