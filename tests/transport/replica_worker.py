"""A consumer replica subprocess: the shop's orders consumer over the broker in the environment, until killed.

Settings come from the environment (SHOP_SYSTEM, the databases, KAFKA_BROKERS or ISLES_TRANSPORT/REDIS_URL)
and the transport from isles.transport.factory, exactly as a deployed replica would get them.
"""
from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "isles"))

import toy_shop  # noqa: E402 - importable only after the sys.path line above

from isles import System  # noqa: E402 - after sys.path, as the import above
from isles.transport.factory import transport_from_env  # noqa: E402 - after sys.path, as above


async def main() -> None:
    system = System(os.environ["SHOP_SYSTEM"], [toy_shop.catalog, toy_shop.orders],
                    transport=transport_from_env(os.environ),
                    consumer_options={"max_attempts": 3, "base_backoff": 0.001})
    await system.start(services=["orders"], relays=False, consumers=["orders"], create_tables=False)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
