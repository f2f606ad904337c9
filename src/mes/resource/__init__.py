"""The resource service: the ISA-95 equipment hierarchy (enterprise > site > area > work center >
work unit) with equipment, personnel with skills and certifications, products, routings with
ordered operations, and tools."""
from __future__ import annotations

from mes.resource.service_def import service

__all__ = ["seed", "service"]


async def seed(user_ids: dict[str, str] | None = None, part_ids: dict[str, str] | None = None) -> dict[str, str]:
    """Realistic demo data (idempotent): one enterprise, a plant with two areas and lines, work
    cells, equipment, personnel with skills and certifications (one expired, one expiring), a
    product with a released routing, tools. Returns the ids of the main records by code."""
    from mes.resource.demo import seed_demo
    return await seed_demo(service, user_ids or {}, part_ids or {})
