"""Shadow copies of a projection's tables and the swap that puts them live.

A shadow has the live table's columns and primary key under a suffixed name, created on the
fly; its indexes get suffixed names too (index names are per schema on PostgreSQL, per database
on SQLite). The swap, in the caller's transaction: drop the live table, rename the shadow to the
live name, and give its primary key and indexes the live names (PostgreSQL renames them; SQLite
cannot rename an index, so it drops and re-creates them). Both databases do this in a transaction.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Column, Index, MetaData, Table, text

from isles.errors import ConfigurationError

SUFFIX = "__rebuild"


def shadow_of(table: Table) -> Table:
    metadata = MetaData(schema=table.schema)
    columns = [Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable,
                      server_default=c.server_default._copy() if c.server_default is not None else None,
                      autoincrement=False)
               for c in table.columns]
    shadow = Table(table.name + SUFFIX, metadata, *columns)
    for index in table.indexes:
        Index(_name(index) + SUFFIX, *(shadow.c[c.name] for c in index.columns), unique=index.unique)
    return shadow


def _name(index: Index) -> str:
    """``index``'s name: the swap renames indexes by it (isles lint ISL103 requires one)."""
    if index.name is None:
        raise ConfigurationError(f"an index on {index.table} has no name, so its shadow cannot be swapped in",
                                 fix="name it: Index('idx_<table>_<columns>', ...)")
    return index.name


def _q(table: Table, name: str | None = None) -> str:
    name = f'"{name or table.name}"'
    return f'"{table.schema}".{name}' if table.schema else name


async def create(uow: Any, live: Table, shadow: Table) -> None:
    """(Re)create the empty shadow, without its secondary indexes (built after the bulk load)."""
    await uow.execute(text(f"DROP TABLE IF EXISTS {_q(shadow)}"))
    connection = await uow.session.connection()
    await connection.run_sync(lambda sync: shadow.create(sync, checkfirst=False))
    for index in list(shadow.indexes):
        await uow.execute(text(f'DROP INDEX IF EXISTS {_q(shadow, index.name)}'))


async def build_indexes(uow: Any, shadow: Table) -> None:
    connection = await uow.session.connection()
    for index in shadow.indexes:
        await connection.run_sync(lambda sync, index=index: index.create(sync, checkfirst=False))


async def drop(uow: Any, shadow: Table) -> None:
    await uow.execute(text(f"DROP TABLE IF EXISTS {_q(shadow)}"))


async def swap(uow: Any, live: Table, shadow: Table) -> None:
    """Put ``shadow`` in ``live``'s place, in the caller's transaction."""
    postgres = uow.runtime.dialect.name == "postgresql"
    await uow.execute(text(f"DROP TABLE {_q(live)}"))
    await uow.execute(text(f'ALTER TABLE {_q(shadow)} RENAME TO "{live.name}"'))
    if postgres:
        pk = live.primary_key.name or f"{live.name}_pkey"
        await uow.execute(text(f'ALTER TABLE {_q(live)} RENAME CONSTRAINT "{shadow.name}_pkey" TO "{pk}"'))
        for index in live.indexes:
            await uow.execute(text(f'ALTER INDEX {_q(live, _name(index) + SUFFIX)} RENAME TO "{index.name}"'))
    else:
        connection = await uow.session.connection()
        for index in live.indexes:
            await uow.execute(text(f'DROP INDEX IF EXISTS {_q(live, _name(index) + SUFFIX)}'))
            await connection.run_sync(lambda sync, index=index: index.create(sync, checkfirst=False))
