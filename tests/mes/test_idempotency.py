"""Idempotent commands in the MES: a retried material issue or production report with the same
``Idempotency-Key`` does nothing twice and answers the first response byte for byte."""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from mes_helpers import M, Plant, W, make_crew, postgres_env, running_mes
from sqlalchemy import func, select

from isles.idempotency import HEADER, REPLAYED, keys_table, purge_all_expired

DATABASES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


async def _plant(api):
    plant = await Plant(api, await make_crew(api)).build()
    order = await plant.released(quantity=4)
    lot = await plant.lot(plant.components[0], 10)
    return plant, order, lot


async def _count(service, model, **where) -> int:
    async with service.unit_of_work() as uow:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return await uow.scalar(query)


def _same_answer(first, second) -> None:
    assert second.status_code == first.status_code
    assert second.content == first.content  # byte for byte
    assert second.headers["content-type"] == first.headers["content-type"]
    assert second.headers.get(REPLAYED) == "true" and first.headers.get(REPLAYED) is None


@pytest.mark.parametrize("database", DATABASES)
async def test_a_retried_issue_and_report_happen_once_and_answer_the_first_response(mes_env, pg_database, database):
    from mes import material, work_order
    from mes.material.models import Consumption, MaterialLot
    from mes.work_order.models import PerformanceReport
    env = await postgres_env(mes_env, pg_database) if database == "postgres" else mes_env
    async with running_mes(env) as api:
        plant, order, lot = await _plant(api)
        http, op = plant.http, plant.crew.operator
        body = {"lotId": lot["id"], "workOrderId": order["id"], "quantity": 2, "operationCode": "OP10",
                "reason": "issued past the BOM on purpose"}  # four issues of 2 exceed the requirement
        keyed = {**op, HEADER: "issue-2-of-C1-to-WO"}

        first = await http.post(f"{M}/consumptions", headers=keyed, json=body)
        assert first.status_code == 201, first.text
        retry = await http.post(f"{M}/consumptions", headers=keyed, json=body)
        _same_answer(first, retry)
        assert await _count(material.service, Consumption, lot_id=lot_id(lot)) == 1
        async with material.service.unit_of_work() as uow:
            assert (await uow.get(MaterialLot, lot_id(lot))).quantity == 8

        # the same key for another request is refused and names the first one
        other = await http.post(f"{M}/consumptions", headers=keyed, json={**body, "quantity": 3})
        assert other.status_code == 422
        assert "already used for a different request" in other.json()["detail"]
        assert "POST /api/material/consumptions" in other.json()["detail"]
        # another caller's identical key is another key
        mine = await http.post(f"{M}/consumptions", headers={**plant.crew.supervisor, HEADER: keyed[HEADER]},
                               json=body)
        assert mine.status_code == 201 and REPLAYED not in mine.headers and mine.json()["id"] != first.json()["id"]
        # without the header nothing changed: two posts, two issues
        for _ in range(2):
            assert (await http.post(f"{M}/consumptions", headers=op, json=body)).status_code == 201
        assert await _count(material.service, Consumption, lot_id=lot_id(lot)) == 4

        # the production report of an operation
        assert (await plant.step(order, 10, "start")).status_code == 200
        url = f"{W}/work-orders/{order['id']}/operations/10/report"
        report = {"quantityGood": 1, "quantityScrap": 0}
        headers = {**op, HEADER: "report-op10-1"}
        reported = await http.post(url, headers=headers, json=report)
        assert reported.status_code == 200, reported.text
        again = await http.post(url, headers=headers, json=report)
        _same_answer(reported, again)
        assert again.json()["quantityGood"] == 1
        assert await _count(work_order.service, PerformanceReport) == 1
        detail = await plant.ok("GET", f"{W}/work-orders/{order['id']}", plant.crew.viewer)
        assert [o["quantityGood"] for o in detail["operations"] if o["sequence"] == 10] == [1]

        # a command that failed and rolled back kept no key: its retry runs again, and the key is free
        scrap = {"quantityGood": 0, "quantityScrap": 1}
        failed = [await http.post(url, headers={**op, HEADER: "scrap-1"}, json=scrap) for _ in range(2)]
        assert [f.status_code for f in failed] == [422, 422] and REPLAYED not in failed[1].headers
        fixed = await http.post(url, headers={**op, HEADER: "scrap-1"}, json={**scrap, "scrapReason": "burr"})
        assert fixed.status_code == 200 and fixed.json()["quantityScrap"] == 1

        # expiry: purged keys are forgotten, and the same key then makes a new issue
        table = keys_table(material.service)
        later = datetime.now(timezone.utc) + timedelta(hours=25)
        assert await purge_all_expired(material.service.runtime, table, batch=1, now=later) == 2
        async with material.service.unit_of_work() as uow:
            assert await uow.scalar(select(func.count()).select_from(table)) == 0
        fresh = await http.post(f"{M}/consumptions", headers=keyed, json=body)
        assert fresh.status_code == 201 and fresh.json()["id"] != first.json()["id"]

        # the effect and the key are committed before the first byte of the answer goes out
        seen: list[tuple[int, int, int]] = []
        spare = await plant.lot(plant.components[0], 10)  # the first lot is used up
        before = await _count(material.service, Consumption)

        async def send(message):
            if message["type"] == "http.response.start":
                async with material.service.unit_of_work() as uow:  # another transaction
                    seen.append((message["status"], await uow.scalar(select(func.count()).select_from(Consumption)),
                                 await uow.scalar(select(func.count()).select_from(table))))
        raw = httpx.Request("POST", f"http://mes.test{M}/consumptions", json={**body, "lotId": spare["id"]},
                            headers={**op, HEADER: "watched"})
        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": f"{M}/consumptions", "raw_path": f"{M}/consumptions".encode(),
                 "query_string": b"", "root_path": "", "server": ("mes.test", 80), "client": ("127.0.0.1", 1),
                 "headers": [(k.lower().encode(), v.encode()) for k, v in raw.headers.items()]}
        chunks = [{"type": "http.request", "body": raw.content, "more_body": False}]

        async def receive():
            return chunks.pop(0) if chunks else {"type": "http.disconnect"}
        await http._transport.app(scope, receive, send)
        assert seen == [(201, before + 1, 2)]


def lot_id(lot: dict):
    import uuid
    return uuid.UUID(lot["id"])


@pytest.mark.postgres
async def test_twenty_concurrent_requests_with_one_key_make_one_issue(mes_env, pg_database):
    from mes import material
    from mes.material.models import Consumption
    env = await postgres_env(mes_env, pg_database)
    async with running_mes(env) as api:
        plant, order, lot = await _plant(api)
        body = {"lotId": lot["id"], "workOrderId": order["id"], "quantity": 1}
        headers = {**plant.crew.operator, HEADER: "one-issue-many-tries"}
        answers = await asyncio.gather(*(plant.http.post(f"{M}/consumptions", headers=headers, json=body)
                                         for _ in range(20)))
        assert {a.status_code for a in answers} == {201}, [a.text for a in answers if a.status_code != 201]
        assert len({a.content for a in answers}) == 1
        assert sum(REPLAYED not in a.headers for a in answers) == 1
        assert await _count(material.service, Consumption, lot_id=lot_id(lot)) == 1
        lot_now = await plant.ok("GET", f"{M}/lots/{lot['id']}", plant.crew.viewer)
        assert lot_now["quantity"] == 9


async def test_the_header_is_documented_on_every_command_of_the_plant_services(mes_env):
    async with running_mes(mes_env) as api:
        spec = (await api.http.get("/openapi.json")).json()
    commands = documented = 0
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
            plant_service = path.startswith(("/api/material/", "/api/work-order/", "/api/resource/"))
            if method.upper() in ("POST", "PUT", "PATCH", "DELETE") and plant_service:
                commands += 1
                documented += HEADER in names
            else:
                assert HEADER not in names, f"{method} {path}"
    assert commands > 30 and documented == commands
