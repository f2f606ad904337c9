"""Every dialect adapter keeps the same contract: the same calls, the same answers, on its database.

The relay, consumer, unit of work and replicas reach the SQL that differs between databases only
through :class:`isles.dialects.Dialect`; these tests hold SQLite and PostgreSQL (a database per
service and a schema per service) to one behaviour.
"""
from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select

from conftest import TOPOLOGIES
from isles.dialects import PostgresDialect, SqliteDialect, dialect_for
from isles.events import Envelope
from isles.orm import as_utc, utcnow
from isles.relay_claims import BucketClaims
from isles.tables import DEAD, RESOLVED

pytestmark = pytest.mark.parametrize("shop_env", TOPOLOGIES, indirect=True)


def _envelope(key: str) -> Envelope:
    return Envelope(id=str(uuid.uuid4()), source="/shop/catalog", type="shop.catalog.item.updated",
                    data=b"{}", partitionkey=key, entityversion=1)


async def _inbox_ids(runtime) -> set[str]:
    async with runtime.database.engine.connect() as conn:
        return set((await conn.scalars(select(runtime.tables.inbox.c.event_id))).all())


async def test_the_dialect_matches_the_database(shop):
    runtime = shop.runtime("orders")
    dialect = dialect_for(runtime.database)
    assert runtime.dialect is dialect
    expected = PostgresDialect if runtime.database.is_postgres else SqliteDialect
    assert isinstance(dialect, expected) and dialect.name == runtime.database.dialect
    assert dialect.concurrent_connections is runtime.database.is_postgres
    assert 1 <= dialect.consumer_lanes(runtime.database.config.pool_size) <= max(1, runtime.database.config.pool_size)


async def test_record_in_inbox_inserts_new_ids_once_and_skips_parked_keys(shop):
    runtime = shop.runtime("orders")
    tables, dialect = runtime.tables, runtime.dialect
    seen, fresh, parked, resolved = _envelope("a"), _envelope("b"), _envelope("c"), _envelope("d")
    async with shop.service("orders").unit_of_work() as uow:
        await uow.execute(tables.inbox.insert().values(dialect.inbox_row(seen)))
        for key, status in (("c", DEAD), ("d", RESOLVED)):  # a resolved dead letter parks nothing
            await uow.execute(tables.dead_letters.insert().values(
                event_id=str(uuid.uuid4()), type="t", source="/shop/catalog", partition_key=key, envelope="{}",
                status=status, attempts=1, failed_at=utcnow()))
    async with shop.service("orders").unit_of_work() as uow:
        new, parked_keys = await dialect.record_in_inbox(uow, tables, [seen, fresh, parked, resolved, fresh])
    assert new == {fresh.id, resolved.id}
    assert parked_keys == {("/shop/catalog", "c")}
    assert await _inbox_ids(runtime) == {seen.id, fresh.id, resolved.id}


async def test_record_in_inbox_with_nothing_parked_reports_no_parked_keys(shop):
    runtime = shop.runtime("orders")
    envelopes = [_envelope(f"k{n}") for n in range(5)]
    async with shop.service("orders").unit_of_work() as uow:
        new, parked_keys = await runtime.dialect.record_in_inbox(uow, runtime.tables, envelopes)
    assert new == {e.id for e in envelopes} and parked_keys == set()


async def test_insert_offers_on_conflict(shop):
    runtime = shop.runtime("orders")
    row = runtime.dialect.inbox_row(_envelope("x"))
    statement = runtime.dialect.insert(runtime.tables.inbox).on_conflict_do_nothing(index_elements=["event_id"])
    for _ in range(2):
        async with shop.service("orders").unit_of_work() as uow:
            await uow.execute(statement, row)
    assert await _inbox_ids(runtime) == {row["event_id"]}


async def test_id_among_selects_exactly_those_ids(shop):
    runtime = shop.runtime("catalog")
    outbox = runtime.tables.outbox
    from toy_shop import create_item
    for n in range(6):
        await create_item(f"item-{n}")
    async with runtime.database.engine.connect() as conn:
        ids = sorted((await conn.scalars(select(outbox.c.id))).all())
        chosen = ids[1::2]
        await runtime.dialect.begin_pending_read(conn)
        got = (await conn.scalars(select(outbox.c.id).where(runtime.dialect.id_among(outbox.c.id, chosen)))).all()
        await conn.rollback()
    assert sorted(got) == chosen


async def test_mark_settings_leave_a_working_transaction(shop):
    runtime = shop.runtime("catalog")
    outbox = runtime.tables.outbox
    async with runtime.database.engine.begin() as conn:
        await runtime.dialect.begin_mark(conn)
        await conn.execute(outbox.update().where(outbox.c.id < 0).values(attempts=1))


async def test_order_outbox_keys_and_lock_key_serialise_one_key(shop):
    """Two transactions that lock one key run one after the other (on SQLite: always serial)."""
    runtime = shop.runtime("orders")
    dialect = runtime.dialect
    order: list[str] = []

    async def hold(name: str, delay: float) -> None:
        async with shop.service("orders").unit_of_work() as uow:
            await dialect.order_outbox_keys(uow, ["k2", "k1", "k1"], runtime.topic)
            await dialect.lock_key(uow, "/shop/catalog|k1")
            order.append(f"{name}-in")
            await asyncio.sleep(delay)
            order.append(f"{name}-out")

    if not dialect.concurrent_connections:
        await hold("a", 0)
        await hold("b", 0)
    else:
        first = asyncio.create_task(hold("a", 0.2))
        await asyncio.sleep(0.05)
        await hold("b", 0)
        await first
    assert order == ["a-in", "a-out", "b-in", "b-out"]


async def test_relay_claims_exist_only_where_relays_can_share_an_outbox(shop):
    runtime = shop.runtime("catalog")
    topic = f"test.{uuid.uuid4().hex}.events"  # buckets nobody else claims
    make = runtime.dialect.relay_claims
    first = make(runtime.database.engine, topic, lambda: None)
    if not runtime.dialect.concurrent_connections:
        assert first is None
        return
    second = make(runtime.database.engine, topic, lambda: None)
    assert isinstance(first, BucketClaims) and isinstance(second, BucketClaims)
    outbox = runtime.tables.outbox
    from toy_shop import create_item
    for n in range(20):
        await create_item(f"item-{n}")

    async def ids(claims: BucketClaims) -> set[int]:
        async with runtime.database.engine.connect() as conn:
            owned = claims.owned("partition_key")
            query = select(outbox.c.id) if owned is None else select(outbox.c.id).where(owned)
            return set((await conn.scalars(query)).all())
    try:
        await first.open()
        await second.open()  # both present before either takes buckets
        assert len(await first.rebalance()) == 16  # two relays: a fair half each
        assert len(await second.rebalance()) == 16
        assert not first.held & second.held
        mine, theirs = await ids(first), await ids(second)
        assert mine and theirs and not mine & theirs and len(mine | theirs) == 20
        await second.close()
        assert len(await first.rebalance()) == 32 and first.owned("partition_key") is None  # alone again
    finally:
        await first.close()
        await second.close()


def _outbox_rows(keys: list[str]) -> list[dict]:
    from isles.outbox import outbox_row
    return [outbox_row(_envelope(key)) for key in keys]


async def test_write_outbox_writes_every_row_in_order(shop):
    """The rows come back as written, their ids in the order given (one statement on PostgreSQL)."""
    runtime = shop.runtime("catalog")
    outbox = runtime.tables.outbox
    rows = _outbox_rows(["k2", "k1", "k2", "k3"])
    rows[1]["subject"], rows[2]["trace_parent"] = "subject-1", None
    async with shop.service("catalog").unit_of_work() as uow:
        await runtime.dialect.write_outbox(uow, outbox, rows, runtime.topic)
    async with runtime.database.engine.connect() as conn:
        got = (await conn.execute(select(outbox).where(outbox.c.event_id.in_([r["event_id"] for r in rows]))
                                  .order_by(outbox.c.id))).mappings().all()
    assert [r["event_id"] for r in got] == [r["event_id"] for r in rows]
    for written, read in zip(rows, got, strict=True):
        assert {k: as_utc(read[k]) if k == "occurred_at" else read[k] for k in written} == written
        assert read["published_at"] is None and read["attempts"] == 0 and read["data_version"] == 1


async def test_write_outbox_serialises_one_key_until_commit(shop):
    """A transaction writing a key's outbox row waits for one that wrote it before to commit, so
    the key's ids follow commit order (on SQLite: transactions are serial anyway)."""
    runtime = shop.runtime("catalog")
    outbox = runtime.tables.outbox
    order: list[str] = []

    async def write(name: str, keys: list[str], delay: float) -> None:
        async with shop.service("catalog").unit_of_work() as uow:
            await runtime.dialect.write_outbox(uow, outbox, _outbox_rows(keys), runtime.topic)
            order.append(f"{name}-in")
            await asyncio.sleep(delay)
            order.append(f"{name}-out")

    if not runtime.dialect.concurrent_connections:
        await write("a", ["k1"], 0)
        await write("b", ["k2", "k1"], 0)
    else:
        first = asyncio.create_task(write("a", ["k1"], 0.3))
        await asyncio.sleep(0.1)
        await write("b", ["k2", "k1"], 0)
        await first
    assert order == ["a-in", "a-out", "b-in", "b-out"]


async def test_among_and_not_among_bind_their_lists_at_execution(shop):
    runtime = shop.runtime("catalog")
    outbox, dialect = runtime.tables.outbox, runtime.dialect
    async with shop.service("catalog").unit_of_work() as uow:
        await dialect.write_outbox(uow, outbox, _outbox_rows(["a", "b", "c", "d"]), runtime.topic)
    among = select(outbox.c.id).where(dialect.among(outbox.c.id, "ids")).order_by(outbox.c.id)
    not_among = (select(outbox.c.id).where(dialect.not_among(outbox.c.id, "ids"),
                                           dialect.not_among(outbox.c.partition_key, "keys")).order_by(outbox.c.id))
    async with runtime.database.engine.connect() as conn:
        ids = list((await conn.scalars(select(outbox.c.id).order_by(outbox.c.id))).all())
        assert list((await conn.scalars(among, {"ids": ids[::2]})).all()) == ids[::2]
        assert list((await conn.scalars(among, {"ids": []})).all()) == []
        assert list((await conn.scalars(not_among, {"ids": ids[:1], "keys": ["d"]})).all()) == ids[1:3]
        assert list((await conn.scalars(not_among, {"ids": [], "keys": []})).all()) == ids


async def test_the_relays_held_connection_runs_each_statement_alone_and_recovers_from_errors(shop):
    runtime = shop.runtime("catalog")
    conn = runtime.dialect.relay_connection(runtime.database.engine)
    if not runtime.dialect.concurrent_connections:
        assert conn is None  # SQLite's one connection is shared: the relay takes it per transaction
        return
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError
    outbox = runtime.tables.outbox
    async with shop.service("catalog").unit_of_work() as uow:
        await runtime.dialect.write_outbox(uow, outbox, _outbox_rows(["a"]), runtime.topic)
    try:
        assert (await conn.execute(text("SHOW synchronous_commit"))).scalar() == "off"
        assert (await conn.execute(text("SHOW enable_seqscan"))).scalar() == "off"
        await conn.execute(outbox.update().values(attempts=7))
        async with runtime.database.engine.connect() as other:  # committed by itself, at once
            assert set((await other.scalars(select(outbox.c.attempts))).all()) == {7}
        with pytest.raises(ProgrammingError, match="no_such_column"):
            await conn.execute(text("SELECT no_such_column FROM isles_outbox"))
        assert (await conn.execute(text("SHOW synchronous_commit"))).scalar() == "off"  # a fresh session
    finally:
        await conn.close()
