"""The MES as one isles System, plus the example data `make run` starts with."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select

from isles import System
from mes import auth, material, resource, traceability, work_order
from mes.example_data import seed
from mes.material.api import PartPatch, update_part
from mes.material.models import Part
from mes.work_order.models import WorkOrder

system = System("mes", [auth.service, resource.service, material.service, work_order.service, traceability.service])

__all__ = ["system", "seed", "demo"]


async def demo(system: System, console: Any, timeout: float = 10.0) -> bool:
    """Seed 000's scenario: rename P-12345 to P-99999 and time the work order's copy following it."""
    owner, copier = system.service("material"), system.service("work_order")
    await system.start()
    try:
        await seed(system)
        async with owner.unit_of_work() as uow:
            part = await uow.scalar(select(Part).where(Part.part_number == "P-12345"))
        async with copier.unit_of_work() as uow:
            order = await uow.scalar(select(WorkOrder).where(WorkOrder.part_id == part.id)
                                     .order_by(WorkOrder.work_order_number).limit(1))
        console.print(f"material:   part [bold]{part.part_number}[/] \"{part.name}\" rev {part.revision} "
                      f"(version {part.version})")
        console.print(f"work_order: {order.work_order_number} caches part number [bold]{order.part_number}[/] "
                      f"(copy of version {order.part_version})")
        console.print("\nrenaming P-12345 -> P-99999 in material ...")
        started = time.perf_counter()
        async with owner.unit_of_work() as uow:
            await update_part(uow, part.id, PartPatch(part_number="P-99999"))
            envelopes = await uow.commit()
        committed = time.perf_counter()
        event = envelopes[0]
        console.print(f"  [green]committed[/] part + outbox row in one transaction   "
                      f"{(committed - started) * 1000:7.2f} ms")
        console.print(f"  event {event.type} id={event.id[:8]} partitionkey={event.partitionkey[:8]} "
                      f"entityversion={event.entityversion}")
        outbox = system.runtime("material").tables.outbox
        published_at = seen_at = None
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline and seen_at is None:
            if published_at is None:
                async with system.runtime("material").database.engine.connect() as conn:
                    if await conn.scalar(select(outbox.c.published_at).where(outbox.c.event_id == event.id)):
                        published_at = time.perf_counter()
            async with copier.unit_of_work() as uow:
                current = await uow.scalar(select(WorkOrder.part_number).where(WorkOrder.id == order.id))
            if current == "P-99999":
                seen_at = time.perf_counter()
            else:
                await asyncio.sleep(0.001)
        if seen_at is None:
            console.print(f"  [red]the work order still shows {current} after {timeout}s[/] - see `isles status`")
            return False
        if published_at is not None:
            console.print(f"  [green]relayed[/] outbox -> transport, acknowledged          "
                          f"{(published_at - started) * 1000:7.2f} ms")
        console.print(f"  [green]applied[/] in work_order (inbox + update, one tx)     "
                      f"{(seen_at - started) * 1000:7.2f} ms")
        async with copier.unit_of_work() as uow:
            order = await uow.get(WorkOrder, order.id)
        console.print(f"\nwork_order: {order.work_order_number} now caches part number [bold]{order.part_number}[/] "
                      f"(copy of version {order.part_version})")
        console.print("[bold green]demo passed[/]: the copy followed the owner, exactly once, "
                      "without a cross-database query")
        return True
    finally:
        await system.stop()
