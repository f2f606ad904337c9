"""Sequences: business numbers (WO-000042, lot L-000017) that concurrent requests never share.

"Count the rows and add one" hands the same number to every request that counts before the
first one commits (20 parallel creates gave four successes and sixteen 409s). A sequence is
gap-tolerant instead: a number taken by a transaction that rolls back is simply never used.

* PostgreSQL: a real ``CREATE SEQUENCE`` (a SQLAlchemy :class:`sqlalchemy.Sequence` in the
  service's metadata, so ``create_all`` and the service's migrations make it); ``nextval`` never
  waits for other transactions.
* SQLite: one row per sequence in the service's ``isles_sequences`` table, advanced with
  ``UPDATE ... SET value = value + 1 RETURNING value`` in the caller's transaction. SQLite has one
  writer at a time (isles keeps one connection per file), so no two transactions read one value.

Declare one per number, next to the models, and take values inside a unit of work::

    WORK_ORDER_NUMBER = Sequence("work_order_number", Base.metadata)
    number = f"WO-{await WORK_ORDER_NUMBER.next_value(uow):06d}"

Migrations: a revision calls :func:`create` (and :func:`drop` in its downgrade); ``start_after``
lets it continue after numbers generated before the sequence existed.
"""
from __future__ import annotations

import re
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import BigInteger, Column, MetaData, String, Table

from isles.errors import ConfigurationError

#: the counter table (used on SQLite; present, empty, on PostgreSQL so both schemas match the models)
TABLE = "isles_sequences"
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class _Executes(Protocol):
    """A unit of work (or anything with its ``scalar`` and ``runtime``)."""

    runtime: Any

    async def scalar(self, statement: Any, params: Any = None) -> Any: ...

    async def execute(self, statement: Any, params: Any = None) -> Any: ...


def counter_table(metadata: MetaData) -> Table:
    """The ``isles_sequences`` table of ``metadata`` (added once)."""
    if TABLE in metadata.tables:
        return metadata.tables[TABLE]
    return Table(TABLE, metadata,
                 Column("name", String(63), primary_key=True),
                 Column("value", BigInteger, nullable=False))


class Sequence:
    """A named, gap-tolerant counter in one service's database (see the module docstring)."""

    def __init__(self, name: str, metadata: MetaData, *, start: int = 1):
        if not _NAME.match(name):
            raise ConfigurationError(f"sequence name {name!r} is not a lower-case SQL identifier",
                                     fix="use lower_snake_case, at most 63 characters, e.g. 'work_order_number'")
        self.name = name
        self.start = start
        self.table = counter_table(metadata)
        #: the PostgreSQL sequence (SQLite ignores it in create_all)
        self.sql = sa.Sequence(name, metadata=metadata, start=start)

    def __repr__(self) -> str:
        return f"Sequence({self.name!r})"

    async def next_value(self, uow: _Executes) -> int:
        """The next number; never the same one twice, possibly with gaps (rollbacks, retries)."""
        if uow.runtime.dialect.name != "sqlite":
            return int(await uow.scalar(sa.select(self.sql.next_value())))
        table = self.table
        advance = (sa.update(table).where(table.c.name == self.name)
                   .values(value=table.c.value + 1).returning(table.c.value))
        value = await uow.scalar(advance)
        if value is None:  # first use on a database made by create_all: the row does not exist yet
            await uow.execute(sa.insert(table).values(name=self.name, value=self.start))
            return self.start
        return int(value)


# -- migrations ----------------------------------------------------------------------------------------
def create_table(op: Any) -> None:
    """Create ``isles_sequences`` (a revision's upgrade, once per service, before :func:`create`)."""
    op.create_table(TABLE, sa.Column("name", sa.String(length=63), nullable=False),
                    sa.Column("value", sa.BigInteger(), nullable=False), sa.PrimaryKeyConstraint("name"))


def drop_table(op: Any) -> None:
    op.drop_table(TABLE)


def create(op: Any, name: str, *, start_after: str | None = None) -> None:
    """Create sequence ``name``; ``start_after`` is a SQL expression (a scalar subquery) whose value
    the first number follows, e.g. ``"SELECT count(*) FROM work_orders"`` for numbers that were
    generated as row count + 1 before."""
    after = f"({start_after})" if start_after else "0"
    if op.get_bind().dialect.name == "sqlite":
        op.execute(sa.text(f"INSERT INTO {TABLE} (name, value) SELECT '{name}', {after}"))
        return
    op.execute(sa.schema.CreateSequence(sa.Sequence(name, start=1)))
    if start_after:
        op.execute(sa.text(f"SELECT setval('{name}', {after} + 1, false)"))


def drop(op: Any, name: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(sa.text(f"DELETE FROM {TABLE} WHERE name = '{name}'"))
        return
    op.execute(sa.schema.DropSequence(sa.Sequence(name)))
