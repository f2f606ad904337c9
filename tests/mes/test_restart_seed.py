"""`isles run` restarts cleanly whatever people changed: the example data decides "already seeded"
from its own services' records, not from part number P-12345 (renamed to anything but P-99999, the
second start re-seeded, hit a 409 and exited with a long traceback)."""
from __future__ import annotations

from mes_helpers import running_mes
from sqlalchemy import func, select


async def _counts() -> dict[str, int]:
    from mes import material, resource, work_order
    from mes.material.models import MaterialLot, Part
    from mes.resource.models import Enterprise
    from mes.work_order.models import WorkOrder
    counts = {}
    for service, model in ((material.service, Part), (material.service, MaterialLot),
                           (resource.service, Enterprise), (work_order.service, WorkOrder)):
        async with service.unit_of_work() as uow:
            counts[model.__name__] = await uow.scalar(select(func.count()).select_from(model))
    return counts


async def test_seed_after_the_seeded_part_was_renamed_changes_nothing(mes_env, capsys):
    from mes import example_data, material
    from mes.material.models import Part
    from mes.material.parts import PartPatch, update_part
    async with running_mes(mes_env) as api:
        await example_data.seed(api.system)
        first = await _counts()
        assert first["Part"] == 5 and first["WorkOrder"] == 5  # WO-1001..1005
        async with material.service.unit_of_work() as uow:
            strut = await uow.scalar(select(Part).where(Part.part_number == "P-12345"))
            await update_part(uow, strut.id, PartPatch(part_number="P-55555"))
        await api.system.drain()

        await example_data.seed(api.system)  # the restart: no exception, nothing new
        await api.system.drain()
        assert await _counts() == first
        async with material.service.unit_of_work() as uow:
            numbers = set(await uow.scalars(select(Part.part_number)))
        assert "P-55555" in numbers and "P-12345" not in numbers
    assert "not loaded" not in capsys.readouterr().err  # it knew it was seeded; no conflict to report


async def test_a_conflict_is_one_line_not_a_failed_start(mes_env, capsys):
    """Material set up by people (no P-12345) while resource and work_order are empty: the seed
    plans no orders, and a start never stops on the example data."""
    from mes import example_data, material
    from mes.material.parts import PartIn, create_part
    async with running_mes(mes_env) as api:
        async with material.service.unit_of_work() as uow:
            await create_part(uow, PartIn(part_number="X-1", name="Someone's own part"))
        await api.system.drain()
        await example_data.seed(api.system)
        counts = await _counts()
    assert counts["Part"] == 1 and counts["WorkOrder"] == 0
