"""A connection of its own, in autocommit, for statements that each stand alone (PostgreSQL).

The relay reads and marks on one: in a pooled transaction a read or a mark is four round trips
(BEGIN, the settings, the statement, COMMIT/ROLLBACK), and with one writer the relay reads and
marks about once per event. On a connection of its own, in autocommit, with the settings made
once for the session, each is one round trip: a lone SELECT sees one snapshot like the
transaction did, and a lone UPDATE commits all its rows or none. A consumer sends its
one-statement deliveries on one (see :mod:`isles.consumer`), which also spares it the pool's
checkout and return for each event.

One statement at a time runs on it (reads and background marks take turns). Any error - the
server restarted, the statement was cancelled - drops the connection, and the next statement
opens a fresh one: the caller's own retry then runs on it.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Sequence

from sqlalchemy import Result
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

log = logging.getLogger("isles.database")


class HeldConnection:
    """A connection held by one relay or consumer, in autocommit, with ``settings`` run once per session."""

    def __init__(self, engine: AsyncEngine, settings: Sequence[str] = ()):
        self.engine = engine
        self.settings = tuple(settings)
        self._conn: AsyncConnection | None = None
        self._turn = asyncio.Lock()

    @property
    def busy(self) -> bool:
        """A statement is running on it (the next one would wait for it)."""
        return self._turn.locked()

    async def execute(self, statement: Any, params: Any = None) -> Result[Any]:
        """Run ``statement`` alone (it commits by itself); the result is buffered."""
        async with self._turn:
            conn = self._conn or await self._open()
            try:
                result: Result[Any] = await conn.execute(statement, params)
                return result
            except BaseException:
                await self._drop()
                raise

    async def close(self) -> None:
        async with self._turn:
            await self._drop()

    async def _open(self) -> AsyncConnection:
        conn = await self.engine.connect()
        try:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for setting in self.settings:
                await conn.exec_driver_sql(setting)
        except BaseException:
            await asyncio.shield(_discard(conn))
            raise
        self._conn = conn
        return conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            # Shielded: a caller cancelled mid-statement still gives the connection back.
            await asyncio.shield(_discard(conn))


async def _discard(conn: AsyncConnection) -> None:
    """Close ``conn`` for good: its session state (settings, a statement cut short) is not reused."""
    try:
        await conn.invalidate()
    except Exception as exc:  # already broken
        log.debug("dropping a held connection: %s", exc)
    try:
        await conn.close()
    except Exception as exc:
        log.debug("closing a held connection: %s", exc)


__all__ = ["HeldConnection"]
