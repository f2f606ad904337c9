"""A saga crash-test subprocess: `python saga_crash_worker.py orders|targets`, settings in the environment.

orders:  runs the orders service (relay, consumer of replies, saga worker) and places orders
         o0..o{SAGA_ORDERS-1} (each order and its saga start in one transaction; one already
         placed is skipped), then keeps running until killed.
targets: runs inventory, payment and shipping (relays and command consumers) until killed.
"""
from __future__ import annotations

import asyncio
import os
import sys

import saga_shop as shop
from sqlalchemy import select


def numbers(k: int) -> tuple[int, int]:
    """(quantity, amount) of order k: every third refused by payment, some refused by shipping."""
    return (5 if k % 4 == 1 else 1), (9 if k % 3 == 0 else 10)


async def orders() -> None:
    system = shop.build_system(relay_options={"poll_interval": 0.02, "batch_size": 20},
                               saga_options={"poll_interval": 0.05})
    await system.start(services=["orders"])
    for k in range(int(os.environ["SAGA_ORDERS"])):
        async with shop.orders.unit_of_work() as uow:
            if await uow.scalar(select(shop.Order.id).where(shop.Order.id == f"o{k}")) is not None:
                continue
        quantity, amount = numbers(k)
        await shop.place(f"o{k}", quantity=quantity, amount=amount)
    await asyncio.Event().wait()


async def targets() -> None:
    system = shop.build_system(relay_options={"poll_interval": 0.02, "batch_size": 20})
    await system.start(services=["inventory", "payment", "shipping"])
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(orders() if sys.argv[1] == "orders" else targets())
