"""The in-process transport: the embedded default, no server needed.

It is durable without storing anything: ``publish`` returns only after every subscribed group
has handled (committed to its inbox, or dead-lettered) each envelope, so the relay marks an
outbox row published only once its effects are committed. A crash before that leaves the row
unpublished, to be delivered again and de-duplicated by the consumer's inbox.

Each group runs ``concurrency`` workers; an envelope goes to the worker its key hashes to, so
one key's envelopes are handled in order while other keys proceed in parallel. A worker hands
the envelopes waiting in its queue to the consumer in one call (up to ``batch``).
"""
from __future__ import annotations

import asyncio
import zlib
from dataclasses import dataclass, field
from typing import Any, Sequence

from isles.events import Envelope
from isles.tasks import cancel_and_wait
from isles.transport.base import Deliver, Transport


class TransportClosed(RuntimeError):
    pass


@dataclass
class _Worker:
    deliver: Deliver
    batch: int  # at most this many envelopes per deliver() call
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    # Keys whose envelope failed while this queue was non-empty: their later envelopes are
    # refused rather than delivered out of order.
    failed_keys: set[str] = field(default_factory=set)
    task: asyncio.Task[Any] | None = None

    async def run(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < self.batch:  # hand over what is at hand, in one call
                batch.append(self.queue.get_nowait())
            try:
                ready = []
                for envelope, done in batch:
                    if envelope.partitionkey in self.failed_keys:
                        done.set_exception(RuntimeError(
                            f"held back: an earlier event of key {envelope.partitionkey} failed"))
                    else:
                        ready.append((envelope, done))
                if not ready:
                    continue
                try:
                    await self.deliver([envelope for envelope, _ in ready])
                except asyncio.CancelledError:
                    for _, done in ready:
                        if not done.done():
                            done.set_exception(TransportClosed("transport stopped during delivery"))
                    raise
                except BaseException as exc:  # none acknowledged: report it to the relay
                    for envelope, done in ready:
                        self.failed_keys.add(envelope.partitionkey)
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in ready:
                        if not done.done():
                            done.set_result(None)
            finally:
                if self.queue.empty():
                    self.failed_keys.clear()


class InMemoryTransport(Transport):
    """Delivers within the process; see the module docstring."""

    name = "memory"
    delivers_synchronously = True

    def __init__(self, concurrency: int = 8, batch: int = 100):
        self.concurrency = concurrency
        self.batch = batch
        self._groups: dict[str, list[_Worker]] = {}
        self._topics: dict[str, list[str]] = {}
        self._running = False

    def subscribe(self, group: str, topics: Sequence[str], deliver: Deliver) -> None:
        if group in self._groups:
            raise ValueError(f"consumer group {group!r} is already subscribed")
        self._groups[group] = [_Worker(deliver, self.batch) for _ in range(self.concurrency)]
        for topic in topics:
            self._topics.setdefault(topic, []).append(group)
        if self._running:
            self._start_group(group)

    def _start_group(self, group: str) -> None:
        for worker in self._groups[group]:
            worker.task = asyncio.create_task(worker.run(), name=f"isles-memory-{group}")

    async def start(self) -> None:
        if not self._running:
            self._running = True
            for group in self._groups:
                self._start_group(group)

    async def stop(self) -> None:
        self._running = False
        tasks = [w.task for workers in self._groups.values() for w in workers if w.task]
        await cancel_and_wait(tasks)
        for workers in self._groups.values():
            for worker in workers:
                worker.task = None
                while not worker.queue.empty():
                    _, done = worker.queue.get_nowait()
                    if not done.done():
                        done.set_exception(TransportClosed("transport stopped"))

    async def publish(self, topic: str, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        if not self._running:
            raise TransportClosed("the in-process transport is not running")
        loop = asyncio.get_running_loop()
        pending: list[list[asyncio.Future[Any]]] = []
        groups = self._topics.get(topic, ())
        for envelope in envelopes:
            futures = []
            shard = zlib.crc32(envelope.partitionkey.encode()) % self.concurrency
            for group in groups:
                done = loop.create_future()
                self._groups[group][shard].queue.put_nowait((envelope, done))
                futures.append(done)
            pending.append(futures)
        results: list[BaseException | None] = []
        for futures in pending:
            outcome = await asyncio.gather(*futures, return_exceptions=True)
            results.append(next((r for r in outcome if isinstance(r, BaseException)), None))
        return results
