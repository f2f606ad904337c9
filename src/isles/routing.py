"""Which topic an outbox row goes to: its service's events topic, or a command's target channel.

The relay hands a batch to the transport per topic. Most batches hold only events (one topic, the
fast path: one ``submit``). A batch with commands is cut into runs of consecutive rows with the
same topic, handed over in order; before each run the keys that failed in an earlier run are
held back (their later rows fail with the same error), so per-key order holds across topics too.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence

from isles.events import Envelope
from isles.runtime import ServiceRuntime
from isles.transport.base import Transport, settled


class HeldBack(RuntimeError):
    """A row not handed over because an earlier row of its key failed on another topic."""


async def submit_routed(transport: Transport, runtime: ServiceRuntime,
                        envelopes: Sequence[Envelope]) -> Awaitable[list[BaseException | None]]:
    """``transport.submit`` of ``envelopes``, each to the topic of its type."""
    routes = runtime.routes
    if not routes or not any(e.type in routes for e in envelopes):
        return await transport.submit(runtime.topic, envelopes)
    runs: list[tuple[str, list[int]]] = []
    for index, envelope in enumerate(envelopes):
        topic = routes.get(envelope.type, runtime.topic)
        if runs and runs[-1][0] == topic:
            runs[-1][1].append(index)
        else:
            runs.append((topic, [index]))
    results: list[BaseException | None] = [None] * len(envelopes)
    failed: dict[str, BaseException] = {}
    last: tuple[list[int], Awaitable[list[BaseException | None]]] | None = None
    for topic, indexes in runs:
        if last is not None:  # the runs before must be settled before a key may go on
            _settle(envelopes, results, failed, last[0], await last[1])
        sendable = [i for i in indexes if envelopes[i].partitionkey not in failed]
        for i in indexes:
            if envelopes[i].partitionkey in failed:
                results[i] = HeldBack(f"held back: an earlier row of key {envelopes[i].partitionkey} failed: "
                                      f"{failed[envelopes[i].partitionkey]}")
        last = (sendable, await transport.submit(topic, [envelopes[i] for i in sendable]) if sendable
                else settled([]))
    assert last is not None
    pending_indexes, pending = last

    async def outcome() -> list[BaseException | None]:
        _settle(envelopes, results, failed, pending_indexes, await pending)
        return results
    return asyncio.ensure_future(outcome())


def _settle(envelopes: Sequence[Envelope], results: list[BaseException | None], failed: dict[str, BaseException],
            indexes: list[int], outcome: list[BaseException | None]) -> None:
    for i, result in zip(indexes, outcome, strict=True):
        results[i] = result
        if result is not None:
            failed.setdefault(envelopes[i].partitionkey, result)
