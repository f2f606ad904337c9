"""SQLite's WAL is checkpointed by a worker thread, not inside a commit on the event loop."""
from __future__ import annotations

import asyncio
import threading

from sqlalchemy import text

from isles.config import resolve_database
from isles.database import Database, _WalCheckpoints


async def test_wal_is_checkpointed_off_the_event_loop_and_nothing_is_lost(tmp_path, monkeypatch):
    threads: list[str] = []
    checkpoint = _WalCheckpoints._checkpoint

    def spy(self: _WalCheckpoints) -> None:
        threads.append(threading.current_thread().name)
        checkpoint(self)

    monkeypatch.setattr(_WalCheckpoints, "_checkpoint", spy)
    monkeypatch.setattr(_WalCheckpoints, "interval", 0.02)
    database = Database(resolve_database("ledger", {"ISLES_DATA_DIR": str(tmp_path)}))
    async with database.engine.begin() as conn:
        assert (await conn.execute(text("PRAGMA wal_autocheckpoint"))).scalar() == 0  # commits never checkpoint
        await conn.execute(text("CREATE TABLE entries (id INTEGER PRIMARY KEY, note TEXT)"))
    for n in range(200):
        async with database.engine.begin() as conn:
            await conn.execute(text("INSERT INTO entries (note) VALUES (:note)"), {"note": "x" * 2000 + str(n)})
    for _ in range(100):
        if threads:
            break
        await asyncio.sleep(0.02)
    assert threads and threading.main_thread().name not in threads
    await database.dispose()

    reopened = Database(resolve_database("ledger", {"ISLES_DATA_DIR": str(tmp_path)}))
    async with reopened.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM entries"))).scalar() == 200
    await reopened.dispose()
    assert not (tmp_path / "ledger.db-wal").exists() or (tmp_path / "ledger.db-wal").stat().st_size == 0
