"""What the contract tests need from each transport: fresh instances on one broker, a mini relay, a recorder."""
from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Sequence

import orjson

from isles.events import Envelope
from isles.transport.base import Transport
from isles.transport.memory import InMemoryTransport


@dataclass
class Backend:
    kind: str
    make: Callable[[], Transport]
    uid: str = field(default_factory=lambda: uuid.uuid4().hex[:10])

    @property
    def is_broker(self) -> bool:
        return self.kind != "memory"

    def producer(self) -> Transport | None:
        """A publishing-only instance on the same broker (None for memory: publishing needs the consumers)."""
        return self.make() if self.is_broker else None


def memory_backend() -> Backend:
    return Backend("memory", InMemoryTransport)


def envelope(topic_system: str, key: str, version: int) -> Envelope:
    return Envelope(id=str(uuid.uuid4()), source=f"/{topic_system}/svc", type=f"{topic_system}.svc.thing.changed",
                    data=orjson.dumps({"key": key, "n": version}), partitionkey=key, entityversion=version, subject=key)


class MiniRelay:
    """Publishes like isles' relay: a failed envelope (and the later ones of its key) is sent again later."""

    def __init__(self, topic: str):
        self.topic = topic
        self.pending: list[Envelope] = []

    def add(self, envelopes: list[Envelope]) -> None:
        self.pending.extend(envelopes)

    async def flush(self, transport: Callable[[], Transport], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.pending)} envelopes not accepted in {timeout}s")
            try:
                results = await transport().publish(self.topic, list(self.pending))
            except Exception:
                await asyncio.sleep(0.05)
                continue
            failed_keys: set[str] = set()
            keep = []
            for env, result in zip(self.pending, results, strict=True):
                if result is not None or env.partitionkey in failed_keys:
                    failed_keys.add(env.partitionkey)
                    keep.append(env)
            self.pending = keep
            if keep:
                await asyncio.sleep(0.05)


class Recorder:
    """A consumer's deliver(): records successful deliveries; can fail or block chosen envelopes."""

    def __init__(self) -> None:
        self.seen: list[Envelope] = []
        self.calls: list[int] = []  # envelopes per successful deliver() call
        self.attempts: dict[str, int] = {}
        self.fail_once: set[str] = set()
        self.block_id: str | None = None
        self.blocked = asyncio.Event()
        self._never = asyncio.Event()

    async def deliver(self, envelopes: Sequence[Envelope]) -> None:
        """All or nothing, like a consumer's transaction: a failure records none of the call's envelopes."""
        accepted = []
        for env in envelopes:
            self.attempts[env.id] = self.attempts.get(env.id, 0) + 1
            if env.id in self.fail_once:
                self.fail_once.discard(env.id)
                raise RuntimeError(f"injected failure for {env.id}")
            if env.id == self.block_id:
                self.blocked.set()
                await self._never.wait()
            accepted.append(env)
        self.seen.extend(accepted)
        self.calls.append(len(envelopes))

    def versions(self, key: str) -> list[int]:
        return [e.entityversion for e in self.seen if e.partitionkey == key]

    def ids(self) -> set[str]:
        return {e.id for e in self.seen}


async def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)
