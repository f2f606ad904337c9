"""Every command that changes a quantity, 20 times in parallel against one lot or order, on PostgreSQL.

The answers may be 2xx or 409 (the quantity is gone, the state moved on) - never a 500 - and the
database afterwards keeps the invariants: no lot below zero, sublots never hold more than their
lot, nothing issued twice, every unit received still accounted for (on hand or issued), an
operation never reports more than it was given, and generated numbers are never shared.
"""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from mes_helpers import M, Plant, W, make_crew, postgres_env, running_mes
from sqlalchemy import text

pytestmark = pytest.mark.postgres
N = 20


async def _parallel(requests) -> list[int]:
    answers = await asyncio.gather(*requests)
    codes = [a.status_code for a in answers]
    assert all(code < 300 or code == 409 for code in codes), [(a.status_code, a.text) for a in answers]
    return codes


async def _rows(api, service: str, sql: str) -> list:
    async with api.system.runtime(service).database.engine.connect() as conn:
        return list((await conn.execute(text(sql))).all())


async def _material_invariants(api) -> None:
    lots = await _rows(api, "material", "SELECT l.lot_number, l.quantity, coalesce(sum(s.quantity), 0), "
                                        "coalesce(min(s.quantity), 0) FROM material_lots l LEFT JOIN "
                                        "material_sublots s ON s.lot_id = l.id GROUP BY l.id")
    for number, quantity, in_sublots, smallest in lots:
        assert quantity >= 0 and smallest >= 0, (number, quantity, smallest)
        assert in_sublots <= quantity, f"lot {number}: sublots hold {in_sublots} of its {quantity}"
    ((received, on_hand, issued),) = await _rows(api, "material", """
        SELECT (SELECT coalesce(sum(initial_quantity), 0) FROM material_lots WHERE origin = 'received'),
               (SELECT coalesce(sum(quantity), 0) FROM material_lots),
               (SELECT coalesce(sum(quantity), 0) FROM consumptions)""")
    assert received == on_hand + issued, (received, on_hand, issued)


async def test_material_commands_in_parallel(mes_env, pg_database):
    async with running_mes(await postgres_env(mes_env, pg_database)) as api:
        plant = await Plant(api, await make_crew(api)).build()
        op, http, c1 = plant.crew.operator, api.http, plant.components[0]
        order = await plant.released(quantity=1000)

        def issue(lot, quantity, **extra):
            return http.post(f"{M}/consumptions", headers=op, json={
                "lotId": lot["id"], "workOrderId": order["id"], "quantity": quantity, **extra})

        def sublot(lot, quantity):
            return http.post(f"{M}/lots/{lot['id']}/sublots", headers=op, json={"quantity": quantity})

        # issue: 20 x 1 from a lot of 10
        lot = await plant.lot(c1, 10)
        assert sorted(await _parallel([issue(lot, 1) for _ in range(N)])) == [201] * 10 + [409] * 10
        # sublot: 20 x 1 from a lot of 10, numbers never shared
        lot = await plant.lot(c1, 10)
        assert (await _parallel([sublot(lot, 1) for _ in range(N)])).count(201) == 10
        numbers = await _rows(api, "material",
                              f"SELECT sublot_number FROM material_sublots WHERE lot_id = '{lot['id']}'")
        assert len({n for (n,) in numbers}) == 10
        # the reported defect: a 5-unit sublot and a 5-unit issue of one 5-unit lot, both at once
        for _ in range(3):
            lot = await plant.lot(c1, 5)
            codes = await _parallel([sublot(lot, 5) if i % 2 else issue(lot, 5) for i in range(N)])
            assert sorted(codes) == [201] + [409] * (N - 1), codes
        # two 3-unit sublots of a 5-unit lot: only one fits
        lot = await plant.lot(c1, 5)
        assert sorted(await _parallel([sublot(lot, 3) for _ in range(N)])) == [201] + [409] * (N - 1)
        # issue from one sublot of 5: 20 x 1
        lot = await plant.lot(c1, 8)
        box = (await sublot(lot, 5)).json()
        assert (await _parallel([issue(lot, 1, sublotId=box["id"]) for _ in range(N)])).count(201) == 5
        # split: 20 x 1 from a lot of 10 (a split leaves something behind): 9, with distinct numbers
        lot = await plant.lot(c1, 10)
        codes = await _parallel([http.post(f"{M}/lots/{lot['id']}/split", headers=op, json={"quantity": 1})
                                 for _ in range(N)])
        assert codes.count(201) == 9
        # merge: the same two lots 20 times, and overlapping pairs of five lots (no deadlock)
        pair = [(await plant.lot(c1, 2))["id"] for _ in range(2)]
        codes = await _parallel([http.post(f"{M}/lots/merge", headers=op, json={"lotIds": pair[::1 - 2 * (i % 2)]})
                                 for i in range(N)])
        assert codes.count(201) == 1
        five = [(await plant.lot(c1, 1))["id"] for _ in range(5)]
        await _parallel([http.post(f"{M}/lots/merge", headers=op, json={"lotIds": [five[i % 5], five[(i + 1) % 5]]})
                         for i in range(N)])
        merged = await _rows(api, "material", "SELECT id FROM material_lots WHERE status = 'consumed' "
                                              "AND status_reason LIKE 'merged into %%'")
        assert len(merged) == 2 + 4 or len(merged) == 2 + 2, merged  # each source merged at most once
        # issue and sublot and split and merge, all against one lot at once
        lot, other = await plant.lot(c1, 12), await plant.lot(c1, 3)

        def split():
            return http.post(f"{M}/lots/{lot['id']}/split", headers=op, json={"quantity": 2})

        def merge():
            return http.post(f"{M}/lots/merge", headers=op, json={"lotIds": [lot["id"], other["id"]]})

        commands = (lambda: issue(lot, 2), lambda: sublot(lot, 2), split, merge)
        await _parallel([commands[i % 4]() for i in range(N)])
        await _material_invariants(api)


async def test_work_order_commands_in_parallel(mes_env, pg_database):
    async with running_mes(await postgres_env(mes_env, pg_database)) as api:
        plant = await Plant(api, await make_crew(api)).build()
        sup, http = plant.crew.supervisor, api.http
        # creates without a number: every one gets its own
        answers = await asyncio.gather(*(http.post(f"{W}/work-orders", headers=sup, json={
            "partId": plant.part["id"], "quantity": 10}) for _ in range(N)))
        assert [a.status_code for a in answers] == [201] * N, [a.text for a in answers if a.status_code != 201]
        assert len({a.json()["workOrderNumber"] for a in answers}) == N
        # report: 20 x 1 good into an operation given 10
        order = await plant.released(quantity=10)
        assert (await plant.step(order, 10, "start")).status_code == 200
        codes = await _parallel([plant.step(order, 10, "report", quantityGood=1) for _ in range(N)])
        assert codes.count(200) == 10
        # complete: 20 at once, one wins
        codes = await _parallel([plant.step(order, 10, "complete") for _ in range(N)])
        assert codes.count(200) == 1
        rows = await _rows(api, "work_order", f"""
            SELECT o.quantity_good, o.quantity_scrap, o.status,
                   (SELECT coalesce(sum(r.quantity_good), 0) FROM performance_reports r WHERE r.operation_id = o.id)
            FROM work_order_operations o WHERE o.work_order_id = '{order["id"]}' AND o.sequence = 10""")
        ((good, scrap, state, reported),) = rows
        assert (good, scrap, state, reported) == (Decimal(10), Decimal(0), "Completed", Decimal(10))
