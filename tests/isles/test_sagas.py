"""Commands between services and sagas, on SQLite and both PostgreSQL topologies."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import saga_shop as shop
from sqlalchemy import select
from typer.testing import CliRunner

from conftest import TOPOLOGIES
from isles import Envelope, EventError, System
from isles.errors import ConfigurationError
from isles.messaging import Command, command_topic
from isles.orm import utcnow
from isles.sagas import (
    COMPENSATED,
    COMPLETED,
    FAILED,
    Saga,
    SagaWorker,
    Step,
    instances,
)
from isles.tables import DEAD, RESOLVED

SERVICES = ("orders", "inventory", "payment", "shipping")


@pytest.fixture
async def saga_env(request, env, pg_database) -> dict[str, str]:
    topology = getattr(request, "param", "sqlite")
    values = dict(env)
    if topology == "pg-database":
        for name in SERVICES:
            values[f"{name.upper()}_DATABASE_URL"] = await pg_database()
    elif topology == "pg-schema":
        values["DATABASE_URL"] = await pg_database()
    return values


@pytest.fixture(autouse=True)
def _reset():
    shop.FAIL_RELEASE.clear()
    yield
    shop.FAIL_RELEASE.clear()


def build(saga_env, **options) -> System:
    options.setdefault("relay_options", {"poll_interval": 0.02})
    options.setdefault("consumer_options", {"max_attempts": 2, "base_backoff": 0.001})
    options.setdefault("saga_options", {"poll_interval": 0.02})
    return shop.build_system(env=saga_env, **options)


async def settle(system: System, saga_ids: list[str], timeout: float = 20.0) -> dict[str, object]:
    """Wait until every saga is final (or failed); return id -> instance."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        await system.drain()
        found = {st.id: st for st in await instances(system.runtime("orders"))}
        if all(found.get(i) is not None and found[i].status in (COMPLETED, COMPENSATED, FAILED) for i in saga_ids):
            return found
        assert asyncio.get_running_loop().time() < deadline, {i: found.get(i) for i in saga_ids}
        await asyncio.sleep(0.02)


async def order_status(order_id: str) -> str:
    async with shop.orders.unit_of_work() as uow:
        return (await uow.get(shop.Order, order_id)).status


@pytest.mark.parametrize("saga_env", TOPOLOGIES, indirect=True)
async def test_saga_completes_or_compensates_in_reverse(saga_env):
    system = build(saga_env)
    async with system.running():
        cases = {"ok": (1, 10), "refused": (1, 9), "no-carrier": (5, 10)}
        ids = {o: await shop.place(o, quantity=q, amount=a) for o, (q, a) in cases.items()}
        found = await settle(system, list(ids.values()))
        effects = await shop.effects()
        for order, (quantity, amount) in cases.items():
            status, expected = shop.expected_outcome(quantity, amount)
            st = found[ids[order]]
            assert st.status == status, st.history
            assert {k: n for (o, k), n in effects.items() if o == order} == expected
            assert await order_status(order) == ("confirmed" if status == COMPLETED else "cancelled")
        # compensation ran in reverse order: void (authorize's) before release (reserve's)
        sent = [h["type"] for h in found[ids["no-carrier"]].history if h["event"] == "compensating"]
        assert sent == ["sagashop.payment.void", "sagashop.inventory.release"]
        # the reply carried the result into the saga's data, and every reply is correlated by command id
        assert found[ids["ok"]].data["reservation"] == "r-ok"
        history = found[ids["ok"]].history
        sent_ids = [h["id"] for h in history if h["event"] == "sent"]
        assert len(sent_ids) == 3
        # on the target's channel, not its events topic
        assert system.runtime("orders").routes["sagashop.inventory.reserve"] == command_topic("sagashop", "inventory")


async def test_redelivered_reply_changes_nothing(saga_env):
    """A reply delivered again (a crash after the consumer's commit) neither repeats nor skips a step."""
    system = build(saga_env)
    async with system.running():
        saga_id = await shop.place("o1")
        await settle(system, [saga_id])
        inventory = system.runtime("inventory")
        outbox = inventory.tables.outbox
        async with inventory.database.engine.connect() as conn:
            rows = (await conn.execute(select(outbox).where(outbox.c.type.like("%.replied")))).all()
        from isles.outbox import envelope_from_row
        replies = [envelope_from_row(row) for row in rows]
        before = await instances(system.runtime("orders"), saga_id=saga_id)
        await system.consumer("orders").deliver(replies)
        await system.consumer("inventory").deliver([])  # nothing
        after = await instances(system.runtime("orders"), saga_id=saga_id)
        assert after[0].history == before[0].history and after[0].revision == before[0].revision
        assert (await shop.effects())[("o1", "reserve")] == 1


async def test_unknown_command_and_invalid_payload_are_dead_lettered(saga_env):
    system = build(saga_env)
    async with system.running():
        consumer = system.consumer("inventory")
        unknown = Envelope(id="u-1", source="/sagashop/orders", type="sagashop.inventory.explode", data=b"{}",
                           partitionkey="k1", entityversion=1)
        invalid = Envelope(id="u-2", source="/sagashop/orders", type="sagashop.inventory.reserve",
                           data=b'{"orderId": "o9"}', partitionkey="k2", entityversion=1)
        await consumer.deliver([unknown, invalid])
        dl = system.runtime("inventory").tables.dead_letters
        async with system.runtime("inventory").database.engine.connect() as conn:
            rows = {r.event_id: r for r in (await conn.execute(select(dl))).all()}
        assert rows["u-1"].status == DEAD and "explode" in rows["u-1"].error
        assert rows["u-2"].status == DEAD and "quantity" in rows["u-2"].error
        assert (await shop.effects()) == {}


async def test_send_refuses_a_command_nobody_handles(saga_env):
    class Explode(Command, type="sagashop.inventory.explode", target="inventory"):
        order_id: str

    system = build(saga_env)
    async with system.running(), shop.orders.unit_of_work() as uow:
        with pytest.raises(EventError, match="no service of the system handles"):
            uow.send(Explode(order_id="x"))


def test_handler_in_the_wrong_service_is_refused():
    from sqlalchemy import MetaData

    from isles import Service
    from isles.messaging import CommandHandlers
    handlers = CommandHandlers()

    @handlers.handle(shop.ReserveInventory)
    async def reserve(cmd, uow):
        return None

    wrong = Service("payments", metadata=MetaData(), commands=handlers)
    with pytest.raises(ConfigurationError, match="whose target is 'inventory'"):
        System("x", [wrong])


@pytest.mark.parametrize("saga_env", TOPOLOGIES, indirect=True)
async def test_timed_out_step_compensates_and_late_reply_is_ignored(saga_env):
    # Only the payment step is meant to time out: on a loaded machine a 0.2 s limit on the inventory
    # step before it made the saga compensate from there, and authorize was never reached.
    saga = shop.order_saga(timeout=0.2, timeouts={"reserve": 30}, max_compensation_attempts=100,
                           retry_backoff=0.05, max_retry_backoff=0.1)
    system = build(saga_env)
    engine = shop.orders.saga_engine
    old = dict(engine.definitions)
    engine.definitions[("order", 1)] = saga
    saga._engine = engine
    try:
        gate = asyncio.Event()
        shop.PAYMENT_GATE.append(gate)  # payment is slow: it holds the authorization
        await system.start()
        async with shop.orders.unit_of_work() as uow:
            uow.add(shop.Order(id="slow", status="new"))
            saga_id = await saga.start(uow, order_id="slow", quantity=1, amount=10)
        # wait (not a fixed sleep: a loaded machine stretches every step) until the void was retried
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            st = (await instances(system.runtime("orders"), saga_id=saga_id))[0]
            if any(h["event"] == "will retry" for h in st.history) or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert st.status == "compensating" and "timed out" in (st.error or ""), st
        assert ("timeout", "authorize") in [(h["event"], h.get("step")) for h in st.history]
        # the timed-out step compensates first (its command may still run): void, retried while payment is down
        assert {h["type"] for h in st.history if h["event"] == "compensating"} == {"sagashop.payment.void"}
        assert any(h["event"] == "will retry" for h in st.history)
        # payment answers at last: it authorizes late, then voids (same key, same channel, in order)
        gate.set()
        st = (await settle(system, [saga_id]))[saga_id]
        assert st.status == COMPENSATED
        compensations = [h["type"] for h in st.history if h["event"] == "compensating"]
        first_release = compensations.index("sagashop.inventory.release")  # in reverse order: voids, then release
        assert set(compensations[:first_release]) == {"sagashop.payment.void"}
        assert set(compensations[first_release:]) == {"sagashop.inventory.release"}
        await asyncio.sleep(0.2)
        await system.drain()
        effects = await shop.effects()
        # every void attempt reached payment after the late authorization: why compensations are idempotent
        assert effects[("slow", "authorize")] == 1 and effects[("slow", "void")] >= 1
        assert effects[("slow", "release")] >= 1  # (retried if it too took longer than the 0.2 s timeout)
        st = (await instances(system.runtime("orders"), saga_id=saga_id))[0]
        assert [h for h in st.history if h["event"] == "ignored"]  # the late replies changed nothing
        assert await order_status("slow") == "cancelled"
    finally:
        for gate in shop.PAYMENT_GATE:
            gate.set()
        shop.PAYMENT_GATE.clear()
        await system.stop()
        engine.definitions.clear()
        engine.definitions.update(old)
        shop.SAGA._engine = engine


@pytest.mark.parametrize("saga_env", TOPOLOGIES, indirect=True)
async def test_failing_compensation_retries_then_dead_letters_then_cli_retry(saga_env, monkeypatch):
    saga = shop.order_saga(max_compensation_attempts=3, retry_backoff=0.01, max_retry_backoff=0.05)
    engine = shop.orders.saga_engine
    old = dict(engine.definitions)
    engine.definitions[("order", 1)] = saga
    saga._engine = engine
    system = build(saga_env)
    try:
        shop.FAIL_RELEASE.add("stuck")
        await system.start()
        async with shop.orders.unit_of_work() as uow:
            uow.add(shop.Order(id="stuck", status="new"))
            saga_id = await saga.start(uow, saga_id="saga-stuck", order_id="stuck", quantity=1, amount=9)
        st = (await settle(system, [saga_id]))[saga_id]
        assert st.status == FAILED and st.attempts == 3
        assert sum(1 for h in st.history if h["event"] == "will retry") == 2
        orders = system.runtime("orders")
        dl = orders.tables.dead_letters
        async with orders.database.engine.connect() as conn:
            rows = (await conn.execute(select(dl).where(dl.c.partition_key == saga_id))).all()
        assert [r.status for r in rows] == [DEAD] and "isles sagas retry" in rows[0].error
        assert (await system.status())[0].dead_letters == 1 or any(s.dead_letters for s in await system.status())
        await system.stop()

        runner = CliRunner()
        monkeypatch.setenv("COLUMNS", "200")
        for key, value in saga_env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setattr("isles.commands.common.load_system", lambda spec=None: build(saga_env))
        monkeypatch.setattr("isles.commands.sagas.load_system", lambda spec=None: build(saga_env))
        from isles.cli import app
        def cli(*args: str):  # the CLI runs its own event loop
            return asyncio.to_thread(runner.invoke, app, list(args))
        listed = await cli("sagas", "list")
        assert listed.exit_code == 0, listed.output
        assert saga_id in listed.output and "failed" in listed.output
        shown = await cli("sagas", "show", saga_id)
        assert shown.exit_code == 0 and "sagashop.inventory.release" in shown.output and "warehouse" in shown.output
        shop.FAIL_RELEASE.clear()  # the warehouse reopens
        retried = await cli("sagas", "retry", saga_id)
        assert retried.exit_code == 0, retried.output
        again = await cli("sagas", "retry", saga_id)
        assert again.exit_code == 1 and "not failed" in again.output

        await system.start()
        st = (await settle(system, [saga_id]))[saga_id]
        assert st.status == COMPENSATED
        async with orders.database.engine.connect() as conn:
            rows = (await conn.execute(select(dl.c.status).where(dl.c.partition_key == saga_id))).all()
        assert [r.status for r in rows] == [RESOLVED]
        assert (await shop.effects())[("stuck", "release")] == 1
    finally:
        await system.stop()
        engine.definitions.clear()
        engine.definitions.update(old)
        shop.SAGA._engine = engine


async def test_dlq_retry_resumes_a_failed_saga_too(saga_env):
    saga = shop.order_saga(max_compensation_attempts=1)
    engine = shop.orders.saga_engine
    old = dict(engine.definitions)
    engine.definitions[("order", 1)] = saga
    saga._engine = engine
    system = build(saga_env)
    try:
        shop.FAIL_RELEASE.add("x")
        await system.start()
        async with shop.orders.unit_of_work() as uow:
            uow.add(shop.Order(id="x", status="new"))
            saga_id = await saga.start(uow, order_id="x", quantity=1, amount=9)
        assert (await settle(system, [saga_id]))[saga_id].status == FAILED
        shop.FAIL_RELEASE.clear()
        report = await system.consumer("orders").retry()
        assert report.resolved == 1 and not report.failed
        assert (await settle(system, [saga_id]))[saga_id].status == COMPENSATED
    finally:
        await system.stop()
        engine.definitions.clear()
        engine.definitions.update(old)
        shop.SAGA._engine = engine


async def test_running_instance_finishes_on_its_version_or_is_migrated(saga_env):
    system = build(saga_env)
    engine = shop.orders.saga_engine
    old = dict(engine.definitions)
    try:
        await system.start(relays=False)  # its first command waits in the outbox
        v1_id = await shop.place("v1")
        # version 2 renames a step and is declared next to version 1: the v1 instance stays on v1
        v2 = Saga("order", version=2, steps=[Step("place", local=shop.mark_placed, undo=shop.cancel_order),
                                              Step("reserve", send=shop.ReserveInventory,
                                                   compensate=shop.ReleaseInventory),
                                              Step("confirm", local=shop.confirm_order)],
                  migrations={1: lambda st: st.data.update(migrated=True)})
        engine.definitions[("order", 2)] = v2
        v2._engine = engine
        await system.stop()
        await system.start()
        async with shop.orders.unit_of_work() as uow:
            uow.add(shop.Order(id="v2", status="new"))
            v2_id = await v2.start(uow, order_id="v2", quantity=1, amount=10)
        found = await settle(system, [v1_id, v2_id])
        assert found[v1_id].version == 1 and found[v1_id].status == COMPLETED
        assert [h["step"] for h in found[v1_id].history if h["event"] == "sent"] == ["reserve", "authorize", "ship"]
        assert found[v2_id].version == 2 and [h["step"] for h in found[v2_id].history if h["event"] == "sent"] == [
            "reserve"]
        # version 1 is withdrawn while an instance still runs on it: the declared migration moves it
        await system.stop()
        await system.start(relays=False)
        v1b = await shop.place("v1b")
        del engine.definitions[("order", 1)]
        await system.stop()
        await system.start()
        found = await settle(system, [v1b])
        assert found[v1b].version == 2 and found[v1b].data["migrated"] is True
        assert any(h["event"] == "migrated" for h in found[v1b].history)
        # without a migration it is refused with a clear error, never run on the wrong definition
        v2.migrations.clear()
        st = found[v1b]
        st.version = 1
        with pytest.raises(ConfigurationError, match="no longer declares"):
            engine.definition(st)
    finally:
        await system.stop()
        engine.definitions.clear()
        engine.definitions.update(old)
        shop.SAGA._engine = engine


async def test_timer_is_fired_once_by_two_workers(saga_env):
    saga = shop.order_saga(timeout=60)
    engine = shop.orders.saga_engine
    old = dict(engine.definitions)
    engine.definitions[("order", 1)] = saga
    saga._engine = engine
    system = build(saga_env, saga_options={"poll_interval": 3600})
    try:
        await system.start(consumers=["orders"])
        async with shop.orders.unit_of_work() as uow:
            uow.add(shop.Order(id="t", status="new"))
            saga_id = await saga.start(uow, order_id="t", quantity=1, amount=10)
        runtime = system.runtime("orders")
        workers = [SagaWorker(runtime, engine), SagaWorker(runtime, engine)]
        later = utcnow() + timedelta(seconds=120)
        await asyncio.gather(*(w.fire_due(later) for w in workers))
        st = (await instances(runtime, saga_id=saga_id))[0]
        reserve_id = next(h["id"] for h in st.history if h["event"] == "sent")
        assert [(h["event"], h.get("id")) for h in st.history].count(("timeout", reserve_id)) == 1
        assert [h["type"] for h in st.history if h["event"] == "compensating"][0] == "sagashop.inventory.release"
    finally:
        await system.stop()
        engine.definitions.clear()
        engine.definitions.update(old)
        shop.SAGA._engine = engine
