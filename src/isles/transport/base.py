"""The transport interface every event transport implements (in-process, Kafka, Redis Streams).

The contract, which the shared contract test suite checks for every transport:

* ``publish(topic, envelopes)`` returns one result per envelope, in order: ``None`` once the
  envelope is durably accepted, or the exception that stopped it. If an envelope of key K fails,
  no later envelope of key K in the same call may be delivered (per-key order).
* ``submit(topic, envelopes)`` is ``publish`` in two steps: it returns once the envelopes are
  handed over, in order, with an awaitable of the same results. A relay hands over its next batch
  meanwhile (leaving out the keys still waiting). By default it publishes and returns the results
  at once; a transport overrides it when a batch can be on its way while the next is handed over.
* ``subscribe(group, topics, deliver)`` registers a consumer group before ``start()``. Each
  envelope reaches exactly one member of each group, envelopes of one key in publish order.
  ``deliver(envelopes)`` takes one or more envelopes of one shard (partition, stream), in order:
  when it returns, all of them are acknowledged; when it raises, none is, and they (and the
  later envelopes of their keys) will be delivered again. Handing over what is at hand in one
  call lets the consumer commit them in one transaction.
"""
from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Awaitable, Callable, Sequence

from isles.events import Envelope

Deliver = Callable[[Sequence[Envelope]], Awaitable[None]]


class Transport(ABC):
    """Moves envelopes from relays to consumer groups."""

    name: str = "transport"
    #: True when the transport's ``publish`` does not return until every group has handled the
    #: envelope (the in-process transport): the outbox is then the only durable copy.
    delivers_synchronously: bool = False

    async def start(self) -> None:
        """Connect; called once after every ``subscribe``. Optional: by default there is nothing to connect."""
        return None

    async def stop(self) -> None:
        """Stop delivering and disconnect; in-flight deliveries finish or are not acknowledged.
        Optional: by default there is nothing to stop."""
        return None

    @abstractmethod
    async def publish(self, topic: str, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        """Hand envelopes to the transport; see the module docstring for the contract."""

    async def submit(self, topic: str, envelopes: Sequence[Envelope]) -> Awaitable[list[BaseException | None]]:
        """Hand envelopes over in order; the awaitable returned gives ``publish``'s results."""
        return settled(await self.publish(topic, envelopes))

    @abstractmethod
    def subscribe(self, group: str, topics: Sequence[str], deliver: Deliver) -> None:
        """Register consumer group ``group`` for ``topics``."""

    def describe(self) -> str:
        return self.name


def settled(results: list[BaseException | None]) -> "asyncio.Future[list[BaseException | None]]":
    """An awaitable of results already known (``submit`` with nothing left on its way)."""
    future: asyncio.Future[list[BaseException | None]] = asyncio.get_running_loop().create_future()
    future.set_result(results)
    return future
