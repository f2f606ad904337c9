"""A crash-test subprocess: `python crash_worker.py producer|consumer` with the shop's settings in the environment.

producer: makes CRASH_ITEMS items, then renames random items until their versions add up to
          CRASH_TARGET, then exits 0. Every rename commits the item and its event together.
consumer: runs the catalog relay and the orders consumer until killed.
"""
from __future__ import annotations

import asyncio
import os
import random
import sys

import toy_shop
from sqlalchemy import func, select


async def produce() -> None:
    system = toy_shop.build_system()
    await system.start(services=["catalog"], relays=False, consumers=False)
    items, target = int(os.environ["CRASH_ITEMS"]), int(os.environ["CRASH_TARGET"])
    rng = random.Random()
    while True:
        async with toy_shop.catalog.unit_of_work() as uow:
            ids = list(await uow.scalars(select(toy_shop.Item.id)))
            total = await uow.scalar(select(func.coalesce(func.sum(toy_shop.Item.version), 0)))
        if len(ids) < items:
            await toy_shop.create_item(f"item-{len(ids)}")
            continue
        if total >= target:
            break
        item = rng.choice(ids)
        await toy_shop.rename(item, f"name-{rng.random():.6f}")
    await system.stop()


async def consume() -> None:
    system = toy_shop.build_system(relay_options={"poll_interval": 0.02, "batch_size": 50})
    await system.start(relays=["catalog"], consumers=["orders"])
    print("consumer ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(produce() if sys.argv[1] == "producer" else consume())
