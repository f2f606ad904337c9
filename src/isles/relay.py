"""The relay: moves committed outbox rows to the transport, in per-key commit order.

It never remembers "the highest id sent": ids are assigned before commit, so a row with a
smaller id can commit after a larger one. Instead every pass asks for the rows that are still
unpublished, oldest first. A row that fails is retried with backoff and holds back only the
later rows of its own key; a transport that is down holds back everything and is retried with
exponential backoff plus jitter. Published rows stay for ``retention`` (the outbox doubles as the
service's replayable event log) and are then deleted.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, func, select, text, update

from isles.backoff import backoff_delay
from isles.relay_claims import BucketClaims, bucket_sql
from isles.unit_of_work import envelope_from_row, utcnow

if TYPE_CHECKING:
    from isles.runtime import ServiceRuntime
    from isles.transport.base import Transport

log = logging.getLogger("isles.relay")


class Relay:
    def __init__(self, runtime: "ServiceRuntime", transport: "Transport", *, batch_size: int = 256,
                 poll_interval: float = 1.0, retention: timedelta = timedelta(days=7),
                 purge_interval: float = 60.0, base_backoff: float = 0.05, max_backoff: float = 30.0,
                 rebalance_interval: float = 2.0):
        self.runtime = runtime
        self.transport = transport
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self.purge_interval = purge_interval
        self.base_backoff = base_backoff
        self.max_backoff = max_backoff
        self.published_total = 0
        self._wake = asyncio.Event()
        self._outage_attempts = 0
        # One pass at a time: a drain() beside the background loop must not send rows twice.
        self._pass = asyncio.Lock()
        # On PostgreSQL several relay instances may share the outbox: each owns some key buckets.
        self.claims = BucketClaims(runtime, self.wake) if runtime.database.is_postgres else None
        self.rebalance_interval = rebalance_interval
        self._last_rebalance = -1e9

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows, so latency does not wait for the poll."""
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled."""
        last_purge = time.monotonic()
        while True:
            self._wake.clear()
            try:
                sent = await self.publish_pending()
                self._outage_attempts = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # transport or database down: back off, keep every row
                self._outage_attempts += 1
                delay = backoff_delay(self._outage_attempts, base=self.base_backoff, cap=self.max_backoff)
                log.warning("service '%s': relay could not publish (attempt %d, retrying in %.2fs): %s",
                            self.runtime.name, self._outage_attempts, delay, _one_line(exc))
                await asyncio.sleep(delay)
                continue
            if time.monotonic() - last_purge >= self.purge_interval:
                last_purge = time.monotonic()
                try:
                    await self.purge_published()
                except Exception as exc:
                    log.warning("service '%s': outbox purge failed: %s", self.runtime.name, _one_line(exc))
            if sent >= self.batch_size:
                continue  # more is probably waiting
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval)
            except asyncio.TimeoutError:
                pass

    async def publish_pending(self) -> int:
        """One pass: publish up to ``batch_size`` ready rows; return how many were published."""
        async with self._pass:
            if self.claims is not None and time.monotonic() - self._last_rebalance >= self.rebalance_interval:
                try:
                    await self.claims.rebalance()
                except Exception:
                    await self.claims.close()  # a broken claim connection holds nothing any more
                    raise
                self._last_rebalance = time.monotonic()
            return await self._publish_pending()

    async def close(self) -> None:
        """Give back this instance's buckets (other instances take them on their next rebalance)."""
        if self.claims is not None:
            await self.claims.close()

    async def _publish_pending(self) -> int:
        outbox = self.runtime.tables.outbox
        now = utcnow()
        held_keys = (select(outbox.c.partition_key)
                     .where(outbox.c.published_at.is_(None), outbox.c.next_attempt_at > now))
        query = (select(outbox)
                 .where(outbox.c.published_at.is_(None), outbox.c.partition_key.not_in(held_keys))
                 .order_by(outbox.c.id).limit(self.batch_size))
        if self.claims is not None:
            if not self.claims.held:
                return 0  # other instances hold every bucket; we stand by
            query = query.where(text(f"{bucket_sql('partition_key')} = ANY(:buckets)")
                                .bindparams(buckets=sorted(self.claims.held)))
        engine = self.runtime.database.engine
        async with engine.connect() as conn:
            rows = (await conn.execute(query)).all()
            await conn.rollback()
        if not rows:
            return 0
        envelopes, sendable, failed = [], [], []
        for row in rows:
            try:
                envelopes.append(envelope_from_row(row))
                sendable.append(row)
            except Exception as exc:  # a row we cannot even read: retry it later, alone
                failed.append((row, exc))
        results = await self.transport.publish(self.runtime.topic, envelopes) if envelopes else []
        ok_ids = []
        failed_keys = {row.partition_key for row, _ in failed}
        for row, result in zip(sendable, results):
            if result is None:
                ok_ids.append(row.id)
            elif row.partition_key not in failed_keys:
                failed.append((row, result))
                failed_keys.add(row.partition_key)
            # else: held back behind its key's failed row, which alone carries the retry time
        async with engine.begin() as conn:
            if self.runtime.database.is_postgres:
                # Losing this mark in a crash only means publishing the rows again, which the
                # consumers' inboxes absorb: no need to wait for the WAL flush.
                await conn.execute(text("SET LOCAL synchronous_commit = off"))
            if ok_ids:
                await conn.execute(update(outbox).where(outbox.c.id.in_(ok_ids)).values(published_at=now))
            for row, exc in failed:
                attempts = row.attempts + 1
                delay = backoff_delay(attempts, base=self.base_backoff, cap=self.max_backoff)
                await conn.execute(update(outbox).where(outbox.c.id == row.id).values(
                    attempts=attempts, last_error=_one_line(exc)[:2000],
                    next_attempt_at=now + timedelta(seconds=delay)))
        if failed:
            log.warning("service '%s': %d outbox row(s) failed to publish and will be retried; first: %s",
                        self.runtime.name, len(failed), _one_line(failed[0][1]))
        self.published_total += len(ok_ids)
        return len(ok_ids)

    async def drain(self, timeout: float = 30.0) -> None:
        """Publish until nothing is ready (used by tests, demos and graceful shutdown)."""
        deadline = time.monotonic() + timeout
        while await self.publish_pending():
            if time.monotonic() > deadline:
                raise TimeoutError(f"service '{self.runtime.name}': outbox did not drain in {timeout}s")

    async def purge_published(self) -> int:
        """Delete rows published longer ago than the retention window."""
        outbox = self.runtime.tables.outbox
        cutoff = utcnow() - self.retention
        async with self.runtime.database.engine.begin() as conn:
            result = await conn.execute(delete(outbox).where(outbox.c.published_at < cutoff))
        return result.rowcount or 0


async def backlog(runtime: "ServiceRuntime") -> tuple[int, Any]:
    """(unpublished rows, oldest unpublished occurred_at) of a service's outbox."""
    outbox = runtime.tables.outbox
    async with runtime.database.engine.connect() as conn:
        count, oldest = (await conn.execute(
            select(func.count(), func.min(outbox.c.occurred_at)).where(outbox.c.published_at.is_(None)))).one()
    return count, oldest


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
