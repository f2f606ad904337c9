"""A relay subprocess: the shop's catalog relay over the broker in the environment, until killed.

Two of these share one PostgreSQL outbox (bucket claims); the test SIGKILLs them at random.
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
                    relay_options={"poll_interval": 0.05, "rebalance_interval": 0.2, "batch_size": 20})
    await system.start(services=["catalog"], relays=["catalog"], consumers=False, create_tables=False)
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
