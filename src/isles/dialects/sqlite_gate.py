"""One event's inbox row and its handlers' writes in one transaction on SQLite's own connection.

SQLite has no writes inside ``WITH``, so PostgreSQL's one statement (:mod:`isles.dialects.inbox_gate`)
is not available. What costs on SQLite is not the round trip (there is none: it runs in this
process) but SQLAlchemy's work around each statement: the session, the unit of work, the execution
context, the result. For a lone event whose handlers are all replicas, the consumer sends the
same statements SQLAlchemy would send - BEGIN IMMEDIATE, the inbox insert, the writes, COMMIT -
straight to the ``sqlite3`` connection of the service's pool, each compiled once with
SQLAlchemy's SQLite dialect and its parameters converted by the columns' own bind processors.

The writes are the replicas' gated writes with a gate that always holds (``true()``): they run only
after the inbox insert returned its row. No row (a duplicate, or an event of a parked key) rolls
back and the consumer delivers the event the usual way, which tells the two apart; so does any
error, with its retries and dead letters.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import orjson
from sqlalchemy import true
from sqlalchemy.ext.asyncio import AsyncEngine

from isles.events import Envelope
from isles.orm import utcnow


def inbox_params(envelopes: Sequence[Envelope]) -> dict[str, Any]:
    """The parameters of SQLite's inbox insert: the envelopes as one JSON array (read with
    ``json_each``), and the time they are recorded."""
    rows = orjson.dumps([(e.id, e.type, e.source, e.partitionkey) for e in envelopes]).decode()
    return {"rows": rows, "now": utcnow()}


@dataclass(frozen=True)
class _Compiled:
    """A statement as SQLite takes it: its SQL, and how to turn named values into its arguments."""

    sql: str
    compiled: Any
    names: tuple[str, ...]  # the positional parameters' names, in order (a name may come twice)
    processors: tuple[Callable[[Any], Any] | None, ...]

    def arguments(self, values: dict[str, Any]) -> list[Any]:
        params = self.compiled.construct_params(values)
        return [value if process is None else process(value)
                for value, process in zip((params[name] for name in self.names), self.processors, strict=True)]


class SqliteInboxGate:
    """The inbox insert of one envelope, run with its writes in one transaction on the raw connection."""

    def __init__(self, inbox_insert: Any):
        self.inbox_insert = inbox_insert
        #: what the writes are gated on: here they run only after the inbox row was inserted
        self.condition = true()
        #: compiled statements by id (the statement kept, to check identity)
        self._compiled: dict[int, tuple[Any, _Compiled]] = {}

    def _compile(self, statement: Any, engine: AsyncEngine) -> _Compiled:
        cached = self._compiled.get(id(statement))
        if cached is not None and cached[0] is statement:
            return cached[1]
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        processors = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
        built = _Compiled(str(compiled), compiled, names, processors)
        self._compiled[id(statement)] = (statement, built)
        return built

    async def deliver(self, envelope: Envelope, writes: Sequence[tuple[Any, dict[str, Any]]],
                      engine: AsyncEngine, held: Any = None) -> bool:
        """Insert ``envelope``'s inbox row and apply ``writes``, all or nothing; False if the
        insert added no row (nothing was changed)."""
        inbox = self._compile(self.inbox_insert, engine)
        inbox_arguments = inbox.arguments(inbox_params([envelope]))
        statements = [(built.sql, built.arguments(values))
                      for built, values in ((self._compile(s, engine), v) for s, v in writes)]
        async with engine.connect() as conn:  # the database's one connection, in its turn
            raw: Any = (await conn.get_raw_connection()).driver_connection
            db = raw.sqlite3_connection  # isles.database._InlineSqliteConnection
            db.execute("BEGIN IMMEDIATE")
            try:
                if not db.execute(inbox.sql, inbox_arguments).fetchall():
                    db.execute("ROLLBACK")
                    return False
                for sql, arguments in statements:
                    db.execute(sql, arguments)
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        return True
