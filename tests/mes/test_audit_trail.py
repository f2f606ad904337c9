"""The audit trail of material, work_order and resource (21 CFR Part 11 11.10(e)), on SQLite and
PostgreSQL: each audited action (disposition, hold, release, rename, correction) writes who, what,
which record and field, old and new value, the reason and the server's UTC time; the database
refuses UPDATE and DELETE of audit rows in every service that declares the trail."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from mes_helpers import Plant, make_crew, postgres_env, running_mes

from isles import System
from isles.audit_trail import AUDIT_TRAIL, history
from isles.migrations import ensure_head

M, R, W = "/api/material", "/api/resource", "/api/work-order"
AUDITED = ("material", "work_order", "resource")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def plant(request, mes_env, pg_database):
    env = await postgres_env(mes_env, pg_database) if request.param == "postgres" else mes_env
    async with running_mes(env) as api:
        plant = await Plant(api, await make_crew(api)).build()
        plant.started = datetime.now(timezone.utc) - timedelta(minutes=5)
        yield plant


async def trail(plant: Plant, service: str, entity: str, entity_id: str, action: str | None = None) -> list[tuple]:
    """(actor, action, field, old, new, reason) of a record's history, oldest first; times checked here."""
    async with plant.api.system.services[service].unit_of_work() as uow:
        entries = await history(uow, entity, entity_id, action=action)
    now = datetime.now(timezone.utc)
    for e in entries:
        assert e.occurred_at.utcoffset() == timedelta(0) and plant.started <= e.occurred_at <= now, e.occurred_at
    return [(e.actor_name, e.action, e.field, e.old_value, e.new_value, e.reason) for e in entries]


async def test_lot_dispositions_are_audited_with_reason(plant):
    crew = plant.crew
    lot = await plant.lot(plant.components[0], 5, release=False)
    await plant.ok("POST", f"{M}/lots/{lot['id']}/status", crew.quality,
                   json={"status": "quarantine", "reason": "CoA missing"})
    await plant.ok("POST", f"{M}/lots/{lot['id']}/status", crew.quality,
                   json={"status": "released", "reason": "CoA received", "expiresAt": "2099-01-01T00:00:00Z"})
    assert await trail(plant, "material", "lot", lot["id"]) == [
        ("quality1", "lot.status_changed", "status", "received", "quarantine", "CoA missing"),
        ("quality1", "lot.status_changed", "status", "quarantine", "released", "CoA received"),
        ("quality1", "lot.status_changed", "expires_at", None, "2099-01-01T00:00:00+00:00", "CoA received")]


async def test_renames_in_material_and_resource_keep_the_old_value(plant):
    crew = plant.crew
    await plant.ok("PATCH", f"{M}/parts/{plant.part['id']}", crew.engineer, json={"partNumber": "P-101"})
    await plant.ok("PATCH", f"{R}/products/{plant.product['id']}", crew.engineer, json={"name": "Strut, long"})
    assert await trail(plant, "material", "part", plant.part["id"]) == [
        ("engineer1", "part.updated", "part_number", "P-100", "P-101", None)]
    assert await trail(plant, "resource", "product", plant.product["id"]) == [
        ("engineer1", "product.updated", "name", "Strut", "Strut, long", None)]


async def test_releases_of_boms_routings_orders_and_instructions_are_audited(plant):
    crew = plant.crew
    assert await trail(plant, "material", "bom", plant.bom["id"]) == [
        ("engineer1", "bom.released", "status", "draft", "released", None)]
    assert await trail(plant, "resource", "routing", plant.routing["id"]) == [
        ("engineer1", "routing.released", "status", "draft", "released", None)]
    order = await plant.released(quantity=2, dispatch=False)
    assert await trail(plant, "work_order", "work_order", order["id"]) == [
        ("supervisor1", "work_order.released", "status", "Forecast", "Released", None)]
    instruction = await plant.ok("POST", f"{W}/work-instructions", crew.engineer, json={
        "partId": plant.part["id"], "operationCode": "OP10", "title": "Machine", "body": "1. Clamp."})
    await plant.ok("POST", f"{W}/work-instructions/{instruction['id']}/release", crew.engineer)
    assert await trail(plant, "work_order", "work_instruction", instruction["id"]) == [
        ("engineer1", "work_instruction.released", "status", "draft", "released", None)]


async def test_holds_and_unholds_of_a_work_order_are_audited(plant):
    crew = plant.crew
    order = await plant.released(quantity=2)
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/hold", crew.supervisor, json={"reason": "gauge broken"})
    await plant.ok("POST", f"{W}/work-orders/{order['id']}/unhold", crew.supervisor)
    assert (await trail(plant, "work_order", "work_order", order["id"]))[1:] == [
        ("supervisor1", "work_order.held", "status", "Ready", "Held", "gauge broken"),
        ("supervisor1", "work_order.unheld", "status", "Held", "Ready", None)]


async def test_corrections_are_audited_with_their_reason(plant):
    crew = plant.crew
    order = await plant.released(quantity=4)
    forging = await plant.lot(plant.components[0], 4)
    issue = await plant.ok("POST", f"{M}/consumptions", crew.operator, json={
        "lotId": forging["id"], "workOrderId": order["id"], "quantity": 3, "operationCode": "OP10"})
    await plant.ok("POST", f"{M}/consumptions/{issue['id']}/reverse", crew.operator,
                   json={"reason": "wrong lot scanned", "quantity": 1})
    assert await trail(plant, "material", "consumption", issue["id"]) == [
        ("operator1", "consumption.reversed", "net_quantity", "3", "2", "wrong lot scanned"),
        ("operator1", "consumption.reversed", "lot_quantity", "1", "2", "wrong lot scanned")]

    for sequence in (10, 20, 30):
        assert (await plant.step(order, sequence, "start")).status_code == 200
        assert (await plant.step(order, sequence, "complete", quantityGood=4)).status_code == 200
    reports = (await plant.ok("GET", f"{W}/work-orders/{order['id']}/reports", crew.viewer))["items"]
    detail = await plant.ok("GET", f"{W}/work-orders/{order['id']}", crew.viewer)
    [last] = [r for r in reports if r["operationId"] == detail["operations"][-1]["id"]]
    counter = await plant.ok("POST", f"{W}/work-orders/{order['id']}/reports/{last['id']}/counter-entry",
                             crew.supervisor, json={"reason": "one unit counted twice", "quantityGood": 1})
    assert await trail(plant, "work_order", "report", last["id"]) == [
        ("supervisor1", "report.corrected", "quantity_good", "4", "3", "one unit counted twice"),
        ("supervisor1", "report.corrected", "counter_entry_id", None, counter["id"], "one unit counted twice")]


async def _refusals(system: System) -> dict[str, list[str]]:
    """For each audited service: UPDATE and DELETE of its audit rows as raw SQL through its own engine."""
    found: dict[str, list[str]] = {}
    for service in AUDITED:
        engine = system.runtime(service).database.engine
        async with engine.connect() as conn:
            assert await conn.scalar(sa.text(f"SELECT count(*) FROM {AUDIT_TRAIL}")) > 0, service
        for statement in (f"UPDATE {AUDIT_TRAIL} SET new_value = 'forged', actor_name = 'nobody'",
                          f"DELETE FROM {AUDIT_TRAIL}"):
            try:
                async with engine.begin() as conn:
                    await conn.execute(sa.text(statement))
            except sa.exc.DBAPIError as exc:
                found.setdefault(service, []).append("append-only" if "append-only" in str(exc.orig) else str(exc))
            else:
                found.setdefault(service, []).append(f"accepted: {statement}")
    return found


async def test_every_audited_service_refuses_update_and_delete_at_the_database(plant):
    await plant.ok("PATCH", f"{M}/parts/{plant.part['id']}", plant.crew.engineer, json={"name": "Strut 2"})
    await plant.released(quantity=1)  # material, resource and work_order all have audit rows now
    assert await _refusals(plant.api.system) == {s: ["append-only", "append-only"] for s in AUDITED}
    assert (await trail(plant, "material", "part", plant.part["id"]))[0][3:5] == ("Strut", "Strut 2")


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_databases_built_by_migrations_refuse_too(backend, mes_env, pg_database):
    """What `make run` does: `isles migrate up`, then start without create_all."""
    env = await postgres_env(mes_env, pg_database) if backend == "postgres" else mes_env
    from mes_helpers import build_system
    await ensure_head(build_system(env))
    async with running_mes(env) as api:
        plant = await Plant(api, await make_crew(api)).build()
        await plant.released(quantity=1)
        assert await _refusals(api.system) == {s: ["append-only", "append-only"] for s in AUDITED}
