"""The example data's copies agree with their owners: every work order material holds has the
status work_order holds (WO-1002 is created and released in one transaction: two events of one
entity, each with its own version)."""
from __future__ import annotations

import pytest
from mes_helpers import postgres_env, running_mes
from sqlalchemy import select


@pytest.mark.parametrize("database", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_material_copies_every_work_order_status_of_the_example_data(env, pg_database, database):
    from mes import example_data, material, work_order
    if database == "postgres":
        env = await postgres_env(env, pg_database)
    async with running_mes(env) as api:
        await example_data.seed(api.system)
        await api.system.drain()
        async with work_order.service.unit_of_work() as uow:
            owned = {(str(o.id), o.status, o.version) for o in await uow.scalars(select(work_order.models.WorkOrder))}
        async with material.service.unit_of_work() as uow:
            copied = {(str(c.id), c.status, c.version)
                      for c in await uow.scalars(select(material.models.ReplicatedWorkOrder))}
    assert len(owned) >= 4
    assert copied == owned
