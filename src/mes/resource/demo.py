"""Demo data for `make run`: what a small aerospace machining plant would enter on day one."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from isles import Service
from mes.resource.models import (
    Area,
    Certification,
    Enterprise,
    Equipment,
    Operation,
    Personnel,
    PersonnelSkill,
    Product,
    Routing,
    Site,
    Skill,
    Tool,
    WorkCenter,
    WorkUnit,
)


async def seed_demo(service: Service, user_ids: dict[str, str], part_ids: dict[str, str]) -> dict[str, str]:
    """``part_ids``: material's parts by part number, so products name the part they make."""
    from mes.resource import api
    ids: dict[str, str] = {}
    async with service.unit_of_work() as uow:
        if await uow.scalar(select(Enterprise.id).where(Enterprise.code == "ACME")):
            for model, key in ((Site, "code"), (WorkCenter, "code"), (Product, "product_number"), (Routing, "code")):
                for row in await uow.scalars(select(model)):
                    ids[getattr(row, key)] = str(row.id)
            return ids
        enterprise = Enterprise(code="ACME", name="Acme Aerostructures")
        uow.add(enterprise)
        await uow.flush()
        site = Site(enterprise_id=enterprise.id, code="PLT1", name="Wichita Plant 1", timezone="America/Chicago",
                    address="1 Hangar Rd, Wichita KS")
        uow.add(site)
        await uow.flush()
        await api.publish_site(uow, site, {}, {})
        machining = Area(site_id=site.id, code="MACH", name="Machining")
        assembly = Area(site_id=site.id, code="ASSY", name="Final Assembly")
        for area in (machining, assembly):
            uow.add(area)
        await uow.flush()
        centers = {
            "CNC-LINE-1": WorkCenter(area_id=machining.id, code="CNC-LINE-1", name="5-axis CNC line 1",
                                     kind="ProductionLine", capacity_per_hour=6),
            "HEAT-1": WorkCenter(area_id=machining.id, code="HEAT-1", name="Heat treatment", kind="ProcessCell"),
            "ASSY-LINE-1": WorkCenter(area_id=assembly.id, code="ASSY-LINE-1", name="Landing gear assembly",
                                      kind="ProductionLine", capacity_per_hour=2),
            "STORES": WorkCenter(area_id=assembly.id, code="STORES", name="Kitting stores", kind="StorageZone"),
        }
        for center in centers.values():
            uow.add(center)
        await uow.flush()
        for center in centers.values():
            await api.publish_work_center(uow, center, {}, {})
            ids[center.code] = str(center.id)
        cells = [WorkUnit(work_center_id=centers["CNC-LINE-1"].id, code=f"CNC-{n}", name=f"DMG Mori cell {n}",
                          kind="WorkCell") for n in (1, 2)]
        cells.append(WorkUnit(work_center_id=centers["ASSY-LINE-1"].id, code="ASSY-ST-1", name="Strut station",
                              kind="Unit"))
        for cell in cells:
            uow.add(cell)
        await uow.flush()
        for n, cell in enumerate(cells[:2], start=1):
            uow.add(Equipment(work_center_id=centers["CNC-LINE-1"].id, work_unit_id=cell.id, code=f"EQ-CNC-{n}",
                              name=f"DMU 65 monoBLOCK #{n}", equipment_class="5-axis mill", manufacturer="DMG Mori",
                              model="DMU 65", serial_number=f"DM65-2024-{n:04d}"))
        uow.add(Equipment(work_center_id=centers["HEAT-1"].id, code="EQ-FURN-1", name="Vacuum furnace",
                          equipment_class="furnace", manufacturer="Ipsen", model="TITAN H2", status="maintenance"))
        skills = {code: Skill(code=code, name=name) for code, name in (
            ("CNC-5AX", "5-axis CNC operation"), ("NDT-PT", "Penetrant testing"), ("ASSY-HYD", "Hydraulic assembly"))}
        for skill in skills.values():
            uow.add(skill)
        await uow.flush()
        today = datetime.now(timezone.utc).date()
        people = [
            ("E-1001", "Lee", "Chen", "operator1", "CNC-LINE-1", [("CNC-5AX", 4)],
             [("CNC-5AX", "5-axis CNC operator", 3, today - timedelta(days=700), today + timedelta(days=20))]),
            ("E-1002", "Priya", "Patel", "qinspector", None, [("NDT-PT", 5)],
             [("NDT-PT", "NAS 410 Level 2 PT", 2, today - timedelta(days=1100), today - timedelta(days=5))]),
            ("E-1003", "John", "Smith", "jsmith", "ASSY-LINE-1", [("ASSY-HYD", 3)],
             [("ASSY-HYD", "Hydraulic fitting", 2, today - timedelta(days=100), today + timedelta(days=265))]),
        ]
        for number, first, last, username, center_code, skill_levels, certs in people:
            person = Personnel(employee_number=number, first_name=first, last_name=last,
                               email=f"{username}@example.com", site_id=site.id,
                               user_id=_uuid(user_ids.get(username)),
                               work_center_id=centers[center_code].id if center_code else None, shift="A")
            uow.add(person)
            await uow.flush()
            for code, level in skill_levels:
                uow.add(PersonnelSkill(personnel_id=person.id, skill_id=skills[code].id, level=level))
            for code, name, level, valid_from, valid_until in certs:
                uow.add(Certification(personnel_id=person.id, skill_id=skills[code].id, name=name, level=level,
                                      valid_from=valid_from, valid_until=valid_until, issuer="Acme training"))
            await uow.flush()
            await api.publish_personnel(uow, person, {}, {})
        product = Product(product_number="P-12345", name="Landing Gear Strut", revision="C", unit_of_measure="EA",
                          part_id=_uuid(part_ids.get("P-12345")))
        uow.add(product)
        await uow.flush()
        await api.publish_product(uow, product, {}, {})
        ids[product.product_number] = str(product.id)
        routing = Routing(product_id=product.id, site_id=site.id, code="RT-12345", name="Strut machining + assembly",
                          revision="C", status="released")
        uow.add(routing)
        await uow.flush()
        for seq, code, name, center_code, setup, run in ((10, "OP10", "Rough machining", "CNC-LINE-1", 45, 38),
                                                         (20, "OP20", "Heat treat", "HEAT-1", 30, 240),
                                                         (30, "OP30", "Finish machining", "CNC-LINE-1", 30, 52),
                                                         (40, "OP40", "Penetrant inspection", "HEAT-1", 10, 20),
                                                         (50, "OP50", "Assemble strut", "ASSY-LINE-1", 15, 90)):
            uow.add(Operation(routing_id=routing.id, sequence=seq, code=code, name=name,
                              work_center_id=centers[center_code].id, setup_minutes=setup,
                              run_minutes_per_unit=run))
        await uow.flush()
        await api.publish_routing(uow, routing)
        ids[routing.code] = str(routing.id)
        uow.add(Tool(tool_number="T-0451", name="12 mm carbide end mill", tool_type="end mill",
                     work_center_id=centers["CNC-LINE-1"].id, max_usage=400, usage_count=120))
        uow.add(Tool(tool_number="G-0007", name="Strut bore plug gauge", tool_type="gauge",
                     work_center_id=centers["ASSY-LINE-1"].id, calibration_due=today + timedelta(days=45)))
        ids[site.code] = str(site.id)
    return ids


def _uuid(value: Any) -> Any:
    import uuid
    return uuid.UUID(value) if value else None


