"""Every promise of DESIGN.md, on SQLite, PostgreSQL database-per-service and schema-per-service."""
from __future__ import annotations

import asyncio
import uuid
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
import toy_shop
from sqlalchemy import func, insert, select, update

from conftest import TOPOLOGIES
from isles.events import Envelope
from isles.outbox import outbox_row as _outbox_row
from isles.relay import Relay
from isles.tables import DEAD, RESOLVED, WAITING
from isles.transport import InMemoryTransport

pytestmark = pytest.mark.parametrize("shop_env", TOPOLOGIES, indirect=True)


async def outbox_rows(system):
    runtime = system.runtime("catalog")
    async with runtime.database.engine.connect() as conn:
        return (await conn.execute(select(runtime.tables.outbox).order_by(runtime.tables.outbox.c.id))).all()


async def test_state_and_event_commit_together(shop):
    item_id = await toy_shop.create_item("bolt")
    rows = await outbox_rows(shop)
    assert [r.type for r in rows] == ["shop.catalog.item.created"]
    assert rows[0].partition_key == str(item_id) and rows[0].entity_version == 1


async def test_nothing_is_published_unless_the_transaction_commits(shop):
    with pytest.raises(RuntimeError, match="boom"):
        async with toy_shop.catalog.unit_of_work() as uow:
            item = toy_shop.Item(name="ghost", price=1)
            uow.add(item)
            await uow.flush()
            uow.publish(toy_shop.ItemCreated(item_id=str(item.id), name="ghost", price=1), entity=item)
            raise RuntimeError("boom")
    await shop.drain()
    assert await outbox_rows(shop) == []
    assert await toy_shop.applied() == []
    async with toy_shop.catalog.unit_of_work() as uow:
        assert await uow.scalar(select(func.count()).select_from(toy_shop.Item)) == 0


async def test_replicated_field_follows_the_owner(shop):
    item_id = await toy_shop.create_item("bolt")
    line_id = await toy_shop.add_order_line(item_id, "bolt", 1)
    version = await toy_shop.rename(item_id, "hex bolt")
    await shop.drain()
    async with toy_shop.orders.unit_of_work() as uow:
        line = await uow.get(toy_shop.OrderLine, line_id)
    assert (line.item_name, line.item_version) == ("hex bolt", version)
    rows = await outbox_rows(shop)
    assert all(r.published_at is not None for r in rows)


async def test_redelivered_event_has_no_second_effect(shop):
    item_id = await toy_shop.create_item("nut")
    await shop.drain()
    envelope = Envelope.from_structured((await _dead_letter_envelope(shop, item_id)))
    consumer = shop.consumer("orders")
    for _ in range(3):
        await consumer.deliver([envelope])
    assert [a.event_id for a in await toy_shop.applied(item_id)] == [envelope.id]
    assert consumer.duplicates == 3


async def _dead_letter_envelope(shop, item_id) -> bytes:
    """The CloudEvents JSON of the item's first outbox row (what a broker would redeliver)."""
    from isles.outbox import envelope_from_row
    row = next(r for r in await outbox_rows(shop) if r.partition_key == str(item_id))
    return envelope_from_row(row).to_structured()


async def test_relay_does_not_skip_a_row_that_commits_after_a_larger_id(shop):
    """Ids are assigned before commit: a row with a smaller id can become visible later."""
    item_id = await toy_shop.create_item("washer")
    await shop.drain()
    runtime = shop.runtime("catalog")
    outbox = runtime.tables.outbox
    late = Envelope(id=str(uuid.uuid4()), source=runtime.source, type="shop.catalog.item.updated",
                    data=b'{"itemId": "%s", "name": "late", "price": 1}' % str(item_id).encode(),
                    partitionkey=str(item_id), entityversion=2)
    if runtime.database.is_postgres:
        # A transaction takes an id, then commits after a later transaction's row was published.
        async with runtime.database.engine.connect() as slow:
            await slow.begin()
            await slow.execute(insert(outbox).values(_outbox_row(late)))
            other = await toy_shop.create_item("spring")
            await shop.drain()
            assert [a.name for a in await toy_shop.applied(other)] == ["spring"]
            await slow.commit()
    else:
        # SQLite serialises writers, so recreate the situation directly: a smaller id appears later.
        smallest = min(r.id for r in await outbox_rows(shop))
        async with runtime.database.engine.begin() as conn:
            await conn.execute(update(outbox).where(outbox.c.id == smallest).values(id=smallest + 100_000))
            await conn.execute(insert(outbox).values(id=smallest, **_outbox_row(late)))
    await shop.drain()
    assert [a.name for a in await toy_shop.applied(item_id)][-1] == "late"


async def test_per_key_order_with_concurrent_writers(shop):
    items = [await toy_shop.create_item(f"item-{i}") for i in range(3)]

    async def writer(n: int) -> None:
        for step in range(4):
            await toy_shop.rename(items[(n + step) % 3], f"w{n}-s{step}")

    await asyncio.gather(*(writer(n) for n in range(5)))
    await shop.drain()
    for item_id in items:
        versions = [a.version for a in await toy_shop.applied(item_id)]
        async with toy_shop.catalog.unit_of_work() as uow:
            final = (await uow.get(toy_shop.Item, item_id)).version
        assert versions == list(range(1, final + 1)), f"{item_id}: {versions}"


async def test_a_failing_key_parks_only_itself_and_retry_replays_in_order(shop):
    bad, good = await toy_shop.create_item("bad"), await toy_shop.create_item("good")
    await shop.drain()
    toy_shop.FAIL_KEYS.add(str(bad))
    for name in ("bad-2", "bad-3"):
        await toy_shop.rename(bad, name)
    for name in ("good-2", "good-3"):
        await toy_shop.rename(good, name)
    await shop.drain()
    assert [a.name for a in await toy_shop.applied(good)] == ["good", "good-2", "good-3"]
    assert [a.name for a in await toy_shop.applied(bad)] == ["bad"]
    dead_letters = await _dead_letters(shop)
    assert [(d.status, d.partition_key) for d in dead_letters] == [(DEAD, str(bad)), (WAITING, str(bad))]
    assert "injected failure" in dead_letters[0].error and dead_letters[0].attempts == 3

    consumer = shop.consumer("orders")
    report = await consumer.retry(dead_letters[0].id)  # still failing: stays parked
    assert report.resolved == 0 and len(report.failed) == 1

    toy_shop.FAIL_KEYS.clear()
    report = await consumer.retry()
    assert report.resolved == 2 and not report.failed
    assert [a.name for a in await toy_shop.applied(bad)] == ["bad", "bad-2", "bad-3"]
    assert {d.status for d in await _dead_letters(shop)} == {RESOLVED}
    await toy_shop.rename(bad, "bad-4")  # the key flows again
    await shop.drain()
    assert [a.name for a in await toy_shop.applied(bad)][-1] == "bad-4"


async def _dead_letters(shop):
    runtime = shop.runtime("orders")
    dl = runtime.tables.dead_letters
    async with runtime.database.engine.connect() as conn:
        return (await conn.execute(select(dl).order_by(dl.c.id))).all()


async def test_invalid_payload_is_dead_lettered_with_a_clear_error(shop):
    bad = Envelope(id=str(uuid.uuid4()), source="/shop/catalog", type="shop.catalog.item.updated",
                   data=b'{"itemId": "x"}', partitionkey="x", entityversion=1)
    await shop.consumer("orders").deliver([bad])
    [dead] = await _dead_letters(shop)
    assert dead.status == DEAD and dead.event_id == bad.id
    assert "service 'orders'" in dead.error and "name" in dead.error and "fix:" in dead.error


async def test_unknown_event_type_is_dead_lettered(shop):
    odd = Envelope(id=str(uuid.uuid4()), source="/shop/catalog", type="shop.catalog.item.exploded",
                   data=b"{}", partitionkey="k", entityversion=1)
    await shop.consumer("orders").deliver([odd])
    [dead] = await _dead_letters(shop)
    assert "shop.catalog.item.exploded" in dead.error and dead.attempts == 1


class FlakyTransport(InMemoryTransport):
    """Fails whole publishes ``outages`` times, and every publish of ``bad_keys`` while set."""

    def __init__(self, outages: int = 0):
        super().__init__()
        self.outages = outages
        self.bad_keys: set[str] = set()
        self.sent: list[Envelope] = []  # what was accepted, in order

    async def publish(self, topic, envelopes):
        if self.outages > 0:
            self.outages -= 1
            raise ConnectionError("broker unavailable")
        good = [e for e in envelopes if e.partitionkey not in self.bad_keys]
        results = iter(await super().publish(topic, good))
        results = [ConnectionError("rejected") if e.partitionkey in self.bad_keys else next(results) for e in envelopes]
        self.sent += [e for e, result in zip(envelopes, results, strict=True) if result is None]
        return results

    def versions_sent(self, key: Any) -> list[int | None]:
        return [e.entityversion for e in self.sent if e.partitionkey == str(key)]


async def test_transport_outage_keeps_rows_and_drains_in_order(shop_env):
    transport = FlakyTransport(outages=4)
    system = toy_shop.build_system(env=shop_env, transport=transport,
                                   relay_options={"poll_interval": 0.01, "base_backoff": 0.001, "max_backoff": 0.01})
    async with system:
        item_id = await toy_shop.create_item("v1")
        for n in range(2, 6):
            await toy_shop.rename(item_id, f"v{n}")
        for _ in range(200):
            if len(await toy_shop.applied(item_id)) == 5:
                break
            await asyncio.sleep(0.02)
        assert [a.version for a in await toy_shop.applied(item_id)] == [1, 2, 3, 4, 5]
        assert transport.outages == 0


def flaky_shop(shop_env, *, base_backoff: float, max_backoff: float) -> tuple[Any, FlakyTransport]:
    transport = FlakyTransport()
    system = toy_shop.build_system(env=shop_env, transport=transport, relay_options={
        "poll_interval": 0.01, "base_backoff": base_backoff, "max_backoff": max_backoff})
    return system, transport


async def stuck_and_free(system, transport: FlakyTransport) -> tuple[Any, Any]:
    """Two published items; from now on the transport refuses every event of the first."""
    stuck, free = await toy_shop.create_item("stuck"), await toy_shop.create_item("free")
    await system.drain()
    transport.bad_keys.add(str(stuck))
    return stuck, free


async def test_one_bad_row_does_not_block_other_keys(shop_env):
    system, transport = flaky_shop(shop_env, base_backoff=0.01, max_backoff=0.02)
    async with system:
        stuck, free = await stuck_and_free(system, transport)
        await toy_shop.rename(stuck, "stuck-2")
        await toy_shop.rename(free, "free-2")
        await toy_shop.rename(stuck, "stuck-3")
        relay = system.relay("catalog")
        await relay.publish_pending()
        assert [a.name for a in await toy_shop.applied(free)] == ["free", "free-2"]
        assert [a.name for a in await toy_shop.applied(stuck)] == ["stuck"]
        rows = {r.entity_version: r for r in await outbox_rows(system) if r.partition_key == str(stuck)}
        assert rows[2].attempts >= 1 and rows[2].last_error and rows[3].attempts == 0  # v3 waits behind v2
        transport.bad_keys.clear()
        for _ in range(100):
            if len(await toy_shop.applied(stuck)) == 3:
                break
            await asyncio.sleep(0.02)
        assert [a.name for a in await toy_shop.applied(stuck)] == ["stuck", "stuck-2", "stuck-3"]


async def test_a_relay_that_restarts_still_holds_a_failed_key_back(shop_env):
    system, transport = flaky_shop(shop_env, base_backoff=30, max_backoff=60)
    async with system:
        stuck, free = await stuck_and_free(system, transport)
        await toy_shop.rename(stuck, "stuck-2")
        relay = system.relay("catalog")
        await relay.publish_pending()  # v2 fails: its key waits ~30 s for the retry
        transport.bad_keys.clear()
        await toy_shop.rename(stuck, "stuck-3")
        await toy_shop.rename(free, "free-2")
        relay._holds.clear()  # what a restarted process knows: nothing but the database
        relay._holds_for = None
        await relay.publish_pending()
        assert [a.name for a in await toy_shop.applied(stuck)] == ["stuck"]  # v3 still waits behind v2
        assert [a.name for a in await toy_shop.applied(free)] == ["free", "free-2"]
        assert str(stuck) in relay._holds


@asynccontextmanager
async def relay_of_two(shop_env, transport):
    """The shop with catalog's relay driven by hand, two rows a batch (a backlog of two rows is a
    full batch: on PostgreSQL the next one is read while it is sent)."""
    system = toy_shop.build_system(env=shop_env, transport=transport)
    await system.start(relays=False)
    relay = Relay(system.runtime("catalog"), transport, batch_size=2, base_backoff=30, max_backoff=60)
    try:
        yield system, relay
    finally:
        await relay.close()
        await system.stop()


async def test_the_batch_read_ahead_leaves_out_a_key_that_failed_meanwhile(shop_env):
    transport = FlakyTransport()
    async with relay_of_two(shop_env, transport) as (system, relay):
        stuck, free = await toy_shop.create_item("stuck"), await toy_shop.create_item("free")
        await relay.drain()
        transport.bad_keys.add(str(stuck))
        for n in (2, 3):  # rows: stuck v2, free v2 | stuck v3, free v3
            await toy_shop.rename(stuck, f"stuck-{n}")
            await toy_shop.rename(free, f"free-{n}")
        await relay.publish_pending()  # stuck v2 fails, while the next batch is read with stuck v3 in it
        if system.runtime("catalog").database.is_postgres:
            assert relay._prefetch is not None
        transport.bad_keys.clear()  # the broker would take v3 now; the retry of v2 is due in 30 s
        await relay.publish_pending()
        await relay.wait_for_marks()
        assert transport.versions_sent(stuck) == [1]  # v3 waits behind v2
        assert transport.versions_sent(free) == [1, 2, 3]


async def test_a_batch_that_was_not_sent_is_not_overtaken_by_the_one_read_ahead(shop_env):
    transport = FlakyTransport()
    async with relay_of_two(shop_env, transport) as (system, relay):
        a, b = await toy_shop.create_item("a"), await toy_shop.create_item("b")
        await relay.drain()
        for n in (2, 3):  # rows: a v2, b v2 | a v3, b v3
            await toy_shop.rename(a, f"a-{n}")
            await toy_shop.rename(b, f"b-{n}")
        transport.outages = 1
        with pytest.raises(ConnectionError):
            await relay.publish_pending()  # the first batch is not sent; the second was being read
        await relay.drain()
        assert transport.versions_sent(a) == transport.versions_sent(b) == [1, 2, 3]
        assert [x.name for x in await toy_shop.applied(a)] == ["a", "a-2", "a-3"]


async def test_a_row_that_cannot_be_read_holds_back_the_later_rows_of_its_key(shop_env, monkeypatch):
    import isles.relay
    transport = FlakyTransport()
    async with relay_of_two(shop_env, transport) as (system, relay):
        bad, good = await toy_shop.create_item("bad"), await toy_shop.create_item("good")
        await relay.drain()
        relay.batch_size = 10
        for n in (2, 3):
            await toy_shop.rename(bad, f"bad-{n}")
            await toy_shop.rename(good, f"good-{n}")
        real = isles.relay.envelope_from_row

        def unreadable_v2(row):
            if row.partition_key == str(bad) and row.entity_version == 2:
                raise ValueError("corrupt row")
            return real(row)

        monkeypatch.setattr(isles.relay, "envelope_from_row", unreadable_v2)
        await relay.drain()
        assert transport.versions_sent(bad) == [1]  # v3 waits behind the unreadable v2
        assert transport.versions_sent(good) == [1, 2, 3]
        rows = {r.entity_version: r for r in await outbox_rows(system) if r.partition_key == str(bad)}
        assert "corrupt row" in rows[2].last_error and rows[3].attempts == 0


class SlowAckTransport(InMemoryTransport):
    """Hands batches over at once but acknowledges them only when told (as a broker may, later)."""

    def __init__(self):
        super().__init__()
        self.handed: list[Envelope] = []
        self.unacknowledged: list[tuple[list[Envelope], asyncio.Future]] = []
        self.hold = False

    async def submit(self, topic, envelopes):
        self.handed += envelopes
        if not self.hold:
            return await super().submit(topic, envelopes)
        future = asyncio.get_running_loop().create_future()
        self.unacknowledged.append((list(envelopes), future))
        return future

    def acknowledge(self, refused_keys: set[str]) -> None:
        for envelopes, future in self.unacknowledged:
            future.set_result([ConnectionError("refused") if e.partitionkey in refused_keys else None
                               for e in envelopes])
        self.unacknowledged.clear()

    def versions_handed(self, key: Any) -> list[int | None]:
        return [e.entityversion for e in self.handed if e.partitionkey == str(key)]


async def test_a_key_waits_while_its_event_is_unacknowledged(shop_env):
    """The next batch goes out before the last is acknowledged, but without that batch's keys."""
    transport = SlowAckTransport()
    async with relay_of_two(shop_env, transport) as (system, relay):
        if not system.runtime("catalog").database.is_postgres:
            pytest.skip("SQLite waits for each batch's acknowledgement before the next")
        a, b, c = [await toy_shop.create_item(name) for name in "abc"]
        await relay.drain()
        transport.hold = True
        for item, name in ((a, "a-2"), (b, "b-2"), (a, "a-3"), (c, "c-2")):  # batches: a2 b2 | a3 c2
            await toy_shop.rename(item, name)
        try:
            assert await relay.publish_pending() == 2  # a2, b2: handed over, not acknowledged
            assert await relay.publish_pending() == 1  # c2 goes on; a3 waits behind a2
            assert transport.versions_handed(a) == [1, 2] and transport.versions_handed(c) == [1, 2]
        finally:
            transport.hold = False
            transport.acknowledge(refused_keys={str(a)})  # a2 fails: its retry is 30 s away
        await relay.wait_for_marks()
        assert await relay.publish_pending() == 0
        assert transport.versions_handed(a) == [1, 2]  # a3 never overtook a2
        assert str(a) in relay._holds and relay.published_total == 3 + 2  # a1 b1 c1, then b2 c2


async def test_published_rows_are_kept_for_the_retention_window(shop):
    item_id = await toy_shop.create_item("kept")
    await shop.drain()
    runtime = shop.runtime("catalog")
    keep = Relay(runtime, shop.transport, retention=timedelta(hours=1))
    assert await keep.purge_published() == 0
    await toy_shop.rename(item_id, "unpublished")  # not drained: must survive the purge
    purge = Relay(runtime, shop.transport, retention=timedelta(seconds=-1))
    assert await purge.purge_published() == 1
    assert [r.entity_version for r in await outbox_rows(shop)] == [2]


async def test_a_purge_keeps_the_newest_row_so_outbox_ids_keep_rising(shop):
    """SQLite reuses the highest id + 1 of what is left: were every row purged, the next event would
    take an id that positions (projection checkpoints, drain watermarks) already passed."""
    item_id = await toy_shop.create_item("first")
    await toy_shop.rename(item_id, "second")
    await shop.drain()
    before = max(r.id for r in await outbox_rows(shop))
    purge = Relay(shop.runtime("catalog"), shop.transport, retention=timedelta(seconds=-1))
    assert await purge.purge_published() == 1
    assert [r.id for r in await outbox_rows(shop)] == [before]  # the newest published row stays
    await toy_shop.rename(item_id, "third")
    assert max(r.id for r in await outbox_rows(shop)) > before


async def test_resync_backfills_copies_without_moving_them_backwards(shop_env):
    system = toy_shop.build_system(env=shop_env)
    await system.start(relays=False)  # no events flow: only the backfill can fix the copies
    try:
        a, b = await toy_shop.create_item("a"), await toy_shop.create_item("b")
        await toy_shop.rename(a, "a2")
        line_a = await toy_shop.add_order_line(a, "stale", 1)   # behind the owner
        line_b = await toy_shop.add_order_line(b, "newer", 99)  # claims a newer version: must not go back
        assert await system.resync("orders") == {"order_lines.item_id": 1}
        async with toy_shop.orders.unit_of_work() as uow:
            assert (await uow.get(toy_shop.OrderLine, line_a)).item_name == "a2"
            assert (await uow.get(toy_shop.OrderLine, line_b)).item_name == "newer"
        assert await system.resync("orders") == {"order_lines.item_id": 0}  # idempotent
    finally:
        await system.stop(drain_timeout=0.1)


async def test_health_reports_each_database(shop):
    checks = await shop.health()
    assert {h.service for h in checks} == {"catalog", "orders"} and all(h.ok for h in checks)


async def test_several_events_of_one_entity_in_one_transaction_each_reach_the_copies(shop):
    """A create and two renames in one transaction: three versions, all applied, the copy ends on the last."""
    line_for = uuid.uuid4()
    async with toy_shop.catalog.unit_of_work() as uow:
        item = toy_shop.Item(id=line_for, name="first", price=1)
        uow.add(item)
        uow.publish(toy_shop.ItemCreated(item_id=str(item.id), name="first", price=1), entity=item)
        item.name = "second"
        uow.publish(toy_shop.item_updated(item), entity=item)
        item.name = "third"
        uow.publish(toy_shop.item_updated(item), entity=item)
    await toy_shop.add_order_line(item.id)
    await shop.drain()
    applied = await toy_shop.applied(item.id)
    assert [(a.name, a.version) for a in applied] == [("first", 1), ("second", 2), ("third", 3)]
    assert item.version == 3  # the row's version is its last event's
    renamed = await toy_shop.rename(item.id, "fourth")  # and later transactions continue from it
    await shop.drain()
    assert renamed == 4 and [a.version for a in await toy_shop.applied(item.id)] == [1, 2, 3, 4]
    async with toy_shop.orders.unit_of_work() as uow:
        line = (await uow.scalars(select(toy_shop.OrderLine).where(toy_shop.OrderLine.item_id == item.id))).one()
    assert (line.item_name, line.item_version) == ("fourth", 4)
