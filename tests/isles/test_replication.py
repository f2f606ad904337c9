"""Copies never go backwards: any order, any number of repeats, the newest version wins."""
from __future__ import annotations

import uuid

import toy_shop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deliveries=st.lists(st.integers(min_value=1, max_value=8), min_size=1, max_size=30))
async def test_final_copy_is_the_newest_version_whatever_the_delivery_order(shop, deliveries):
    replica = toy_shop.orders.replicas[0]
    item_id = uuid.uuid4()
    line_id = await toy_shop.add_order_line(item_id)
    for version in deliveries:  # duplicated, reordered, replayed
        async with toy_shop.orders.unit_of_work() as uow:
            await replica.apply(uow, str(item_id), version, {"name": f"name-v{version}"})
    async with toy_shop.orders.unit_of_work() as uow:
        line = await uow.get(toy_shop.OrderLine, line_id)
    newest = max(deliveries)
    assert (line.item_name, line.item_version) == (f"name-v{newest}", newest)


async def test_apply_reports_whether_the_copy_moved(shop):
    replica = toy_shop.orders.replicas[0]
    item_id = uuid.uuid4()
    await toy_shop.add_order_line(item_id)
    await toy_shop.add_order_line(item_id)
    async with toy_shop.orders.unit_of_work() as uow:
        assert await replica.apply(uow, str(item_id), 2, {"name": "b"}) == 2  # every referencing row
        assert await replica.apply(uow, str(item_id), 2, {"name": "c"}) == 0  # same version: no change
        assert await replica.apply(uow, str(item_id), 1, {"name": "a"}) == 0  # older: no change
