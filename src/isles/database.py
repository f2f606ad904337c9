"""One engine and pool per service, on SQLite or PostgreSQL.

A :class:`Database` is the only way a service reaches storage. For schema-per-service it
maps unqualified table names to the service's schema (``schema_translate_map``) and sets the
connection's ``search_path`` so raw SQL lands in the same place.
"""
from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Any

import aiosqlite
from sqlalchemy import MetaData, event, text
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from isles.config import DatabaseConfig
from isles.errors import DatabaseUnavailable
from isles.tasks import cancel_and_wait

log = logging.getLogger("isles.database")


@dataclass(frozen=True)
class Health:
    service: str
    ok: bool
    latency_ms: float
    detail: str


class _InlineSqliteConnection(aiosqlite.Connection):
    """aiosqlite, minus the thread hop on every call.

    aiosqlite sends each call to a worker thread; on a small VM that round trip (~0.1 ms) costs
    far more than the SQLite call itself (a few microseconds in WAL mode with synchronous=NORMAL;
    one fsync with the default synchronous=FULL). We run calls inline on the event loop instead.
    That is safe because each SQLite database gets exactly one pooled connection: transactions
    queue on the pool asynchronously instead of blocking the loop on SQLite's lock. (Another
    *process* holding the write lock still makes us wait in SQLite's busy handler, briefly.)
    """

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return fn(*args, **kwargs)

    @property
    def sqlite3_connection(self) -> sqlite3.Connection:
        """The ``sqlite3`` connection itself, for callers that run statements inline on their own
        (see :mod:`isles.dialects.sqlite_gate`)."""
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        return self._connection


class _WalCheckpoints:
    """Checkpoints a SQLite file's write-ahead log from a worker thread, every ``interval`` seconds.

    SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages - and our
    commits run on the event loop (see :class:`_InlineSqliteConnection`), so every service in the
    process stalled for the checkpoint's writes and fsyncs. The engine's connection turns the
    automatic checkpoint off (``wal_autocheckpoint=0``) and this does it instead, on its own
    connection, in PASSIVE mode: it never waits for, or blocks, readers and the writer.
    """

    interval = 0.5

    def __init__(self, path: str):
        self.path = path
        self._task: asyncio.Task[Any] | None = None
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # the worker threads share one connection, one at a time

    def start(self) -> None:
        """Called when the engine opens its connection (on the event loop's thread)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"isles-wal-checkpoint:{self.path}")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self._checkpoint)
            except sqlite3.Error as exc:  # the next round tries again; the WAL only grows meanwhile
                log.warning("WAL checkpoint of %s failed: %s", self.path, exc)

    def _checkpoint(self) -> None:
        with self._lock:
            if self._connection is None:
                self._connection = sqlite3.connect(self.path, timeout=5, check_same_thread=False,
                                                   isolation_level=None)
            self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait([task])
        await asyncio.to_thread(self._close)


def _sqlite_engine(config: DatabaseConfig, checkpoints: _WalCheckpoints | None) -> AsyncEngine:
    path = config.sqlite_path
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    database = str(path) if path is not None else ":memory:"

    async def connect() -> aiosqlite.Connection:
        # isolation_level=None: we issue BEGIN ourselves (see _on_begin).
        connection = _InlineSqliteConnection(
            lambda: sqlite3.connect(database, timeout=30, check_same_thread=False, isolation_level=None), 64)
        return await connection

    engine = create_async_engine(config.url, async_creator=connect, pool_size=1, max_overflow=0,
                                 pool_timeout=60)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
        # FULL (the default) fsyncs each commit: with NORMAL a power loss can undo a commit other
        # services already acted on, e.g. a consumer's inbox row for an event the relay marked sent.
        cursor.execute(f"PRAGMA synchronous={config.sqlite_synchronous}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        if checkpoints is not None:
            cursor.execute("PRAGMA wal_autocheckpoint=0")
            checkpoints.start()
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock at BEGIN: a deferred transaction that upgrades later can fail
        # with "database is locked" instead of waiting its turn.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgres_engine(config: DatabaseConfig) -> AsyncEngine:
    server_settings = {"application_name": f"isles-{config.service}"}
    if config.schema:
        server_settings["search_path"] = config.schema
    options: dict[str, Any] = {}
    if config.schema:
        options["schema_translate_map"] = {None: config.schema}
    engine = create_async_engine(
        config.url,
        # The pool's min is the connections kept open, its max - min those opened under load
        # (SQLAlchemy has no pool minimum that it opens up front; see isles.config.PoolSettings).
        pool_size=max(config.pool.min, 1),
        max_overflow=config.pool.max - max(config.pool.min, 1),
        pool_timeout=config.pool.timeout,
        connect_args={"server_settings": server_settings, "timeout": 10},
        execution_options=options,
    )
    _ping_when_idle(engine, config.ping_after)
    return engine


def _ping_when_idle(engine: AsyncEngine, after: float) -> None:
    """Check a pooled connection before reuse only if it sat idle for ``after`` seconds or more.

    SQLAlchemy's ``pool_pre_ping`` pings on every checkout, and on asyncpg a ping is three round
    trips (BEGIN, a query, ROLLBACK). A unit of work, a relay read, its mark and a consumer's
    transaction each check out a connection: twelve extra round trips an event, which halved
    PostgreSQL throughput and doubled latency. A connection used a moment ago is trusted; should
    the server have restarted in that moment, the first statement fails, SQLAlchemy discards the
    whole pool, and the caller's retry (relay, consumer) or the next request gets a fresh one.
    """

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["isles_idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("isles_idle_since")
        if since is None or time.monotonic() - since < after:
            return  # new, or used a moment ago
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the pool replaces it with a fresh connection and tries again
            raise DisconnectionError(f"pooled connection is gone: {exc}") from exc


class Database:
    """A service's engine, its pool and what it takes to create, check and close it."""

    def __init__(self, config: DatabaseConfig):
        self.config = config
        self.service = config.service
        path = config.sqlite_path  # None on PostgreSQL and for in-memory SQLite: nothing to checkpoint
        self._checkpoints = _WalCheckpoints(str(path)) if path is not None else None
        self.engine = (_sqlite_engine(config, self._checkpoints) if config.dialect == "sqlite"
                       else _postgres_engine(config))

    @property
    def dialect(self) -> str:
        return self.config.dialect

    @property
    def is_postgres(self) -> bool:
        return self.config.dialect == "postgresql"

    def unavailable(self, exc: BaseException) -> DatabaseUnavailable:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(exc) else type(exc).__name__
        return DatabaseUnavailable(
            f"cannot reach its database {self.config.display} ({self.config.source}): {reason}",
            service=self.service,
            fix="start the database server, or correct the URL in "
                f"{self.config.source if self.config.source != 'default' else 'the environment'}",
        )

    async def create_all(self, metadata: MetaData) -> None:
        """Create the schema (if any) and every table of ``metadata`` that is missing."""
        try:
            async with self.engine.begin() as conn:
                if self.config.schema:
                    await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.config.schema}"'))
                await conn.run_sync(metadata.create_all)
        except (OSError, asyncio.TimeoutError) as exc:
            raise self.unavailable(exc) from exc
        except Exception as exc:
            if is_connection_error(exc):
                raise self.unavailable(exc) from exc
            raise

    async def drop_all(self, metadata: MetaData) -> None:
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.drop_all)

    async def health(self) -> Health:
        """Round-trip ``SELECT 1``; never raises."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(5):
                async with self.engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:  # health checks report, they do not raise
            return Health(self.service, False, (time.perf_counter() - started) * 1000,
                          str(self.unavailable(exc)).splitlines()[0])
        return Health(self.service, True, (time.perf_counter() - started) * 1000, "ok")

    async def dispose(self) -> None:
        if self._checkpoints is not None:
            await self._checkpoints.stop()
        await self.engine.dispose()  # closing the last connection checkpoints what is left


#: Exceptions (by class name, so no driver needs importing) that mean the database cannot be used
#: at all right now - it is down, restarting, gone, full, or refused this connection - as opposed
#: to one statement that failed. asyncpg's names, and SQLAlchemy's for an exhausted pool.
_OUTAGES = frozenset({
    "InvalidCatalogNameError",          # the database does not exist (dropped)
    "CannotConnectNowError",            # starting up / shutting down / in recovery
    "AdminShutdownError", "CrashShutdownError",
    "ConnectionDoesNotExistError",      # the server ended the session (pg_terminate_backend, restart)
    "ConnectionFailureError", "ClientCannotConnectError", "ConnectionRejectionError",
    "TooManyConnectionsError",
    "InvalidPasswordError", "InvalidAuthorizationSpecificationError",
    "DisconnectionError", "DatabaseUnavailable",
})
#: Messages that mean the same when the class alone does not: a permission error is an outage
#: only when it is about connecting (CONNECT revoked), never about a table; an InterfaceError only
#: when the connection it used is gone.
_OUTAGE_MESSAGES = {
    "InsufficientPrivilegeError": ("permission denied for database",),
    "InterfaceError": ("connection is closed", "connection was closed", "underlying connection is closed"),
    "TimeoutError": ("queuepool limit",),  # sqlalchemy.exc.TimeoutError: no pooled connection came free
}


def _says_outage(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, ConnectionError, asyncio.TimeoutError)):
        return True
    if getattr(exc, "connection_invalidated", False):  # SQLAlchemy judged it a disconnect
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    if names & _OUTAGES:
        return True
    text = str(exc).lower()
    return any(name in names and any(m in text for m in messages) for name, messages in _OUTAGE_MESSAGES.items())


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or anything in its chain) says the database cannot be used at all right now.

    Such errors are answered 503 (try again later) and retried by relays and consumers; any other
    database error is a fault of the statement, and retrying it unchanged would not help."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if _says_outage(link):
            return True
        link = link.__cause__ or link.__context__ or getattr(link, "orig", None)
    return False


def outage_reason(exc: BaseException) -> str:
    """The first line of the innermost cause (the driver's own words), for a log line."""
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = exc.__cause__ or getattr(exc, "orig", None)
        if inner is None:
            break
        exc = inner
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
