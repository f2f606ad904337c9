"""One event's inbox row and its handlers' writes in one statement (PostgreSQL).

A consumer handling a lone event would otherwise send BEGIN, the inbox insert, one statement per
write and COMMIT. When every write can be made conditional, one statement does it all::

    WITH new AS (INSERT INTO isles_inbox ... ON CONFLICT DO NOTHING RETURNING event_id),
         w0 AS (UPDATE work_orders SET ... WHERE ... AND EXISTS (SELECT event_id FROM new)),
         w1 AS (INSERT INTO parts ... SELECT ... WHERE EXISTS (SELECT event_id FROM new) ON CONFLICT ...)
    SELECT event_id FROM new

Sent alone (in autocommit) it commits all of it or none. The writes apply only if the inbox row
was inserted, so a duplicate, or an event of a parked key (which the insert skips), changes
nothing and returns no row; the consumer then delivers it the usual way, which tells the two
apart.
"""
from __future__ import annotations

from typing import Any, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from isles.events import Envelope
from isles.held_connection import HeldConnection
from isles.orm import utcnow


def inbox_params(envelopes: Sequence[Envelope]) -> dict[str, Any]:
    """The parameters of the inbox insert (one array per column) for ``envelopes``."""
    return {"ids": [e.id for e in envelopes], "types": [e.type for e in envelopes],
            "sources": [e.source for e in envelopes], "keys": [e.partitionkey for e in envelopes],
            "now": utcnow()}


class InboxGate:
    """The inbox insert of ``ids``/``types``/``sources``/``keys``/``now`` as a CTE, the condition
    "it inserted a row" (``condition``) for the writes, and the statements that join them."""

    def __init__(self, inbox_insert: Any):
        self.new = inbox_insert.cte("isles_new")
        self.condition = select(self.new.c.event_id).exists()
        #: built statements by their writes' ids (the writes themselves kept, to check identity)
        self._statements: dict[tuple[int, ...], tuple[tuple[Any, ...], Any]] = {}
        self._autocommit: tuple[AsyncEngine, AsyncEngine] | None = None  # (the engine, the same in autocommit)

    async def deliver(self, envelope: Envelope, writes: Sequence[tuple[Any, dict[str, Any]]],
                      engine: AsyncEngine, held: HeldConnection | None = None) -> bool:
        """Send ``envelope``'s inbox row and ``writes`` (gated on ``condition``) as one statement, on
        ``held`` unless it is busy with another, else on a pooled connection in autocommit; False
        if the insert added no row (nothing was changed)."""
        params = inbox_params([envelope])
        for _, values in writes:
            params.update(values)
        statement = self.statement([write for write, _ in writes])
        if held is not None and not held.busy:
            return (await held.execute(statement, params)).first() is not None
        async with self._in_autocommit(engine).connect() as conn:  # another lone event is on it: don't wait
            return (await conn.execute(statement, params)).first() is not None

    def _in_autocommit(self, engine: AsyncEngine) -> AsyncEngine:
        """``engine`` with its connections in autocommit (the same pool), made once."""
        if self._autocommit is None or self._autocommit[0] is not engine:
            self._autocommit = (engine, engine.execution_options(isolation_level="AUTOCOMMIT"))
        return self._autocommit[1]

    def statement(self, writes: Sequence[Any]) -> Any:
        """``SELECT event_id FROM new`` with ``writes`` (each gated on ``condition``) as CTEs.

        Built once per set of writes: a handler's statements are themselves built once, so the
        same few sets come back for every event.
        """
        key = tuple(id(w) for w in writes)
        cached = self._statements.get(key)
        if cached is not None and all(a is b for a, b in zip(cached[0], writes, strict=True)):
            return cached[1]
        statement = select(self.new.c.event_id).add_cte(*(w.cte(f"isles_w{i}") for i, w in enumerate(writes)))
        self._statements[key] = (tuple(writes), statement)
        return statement
