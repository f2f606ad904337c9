"""Projections: exactly once and in order, honest checkpoints across gaps, rebuild and swap."""
from __future__ import annotations

import asyncio

import pytest
import toy_views as toy
from sqlalchemy import delete, func, insert, select, text

from isles.errors import ConfigurationError
from isles.events import Envelope
from isles.outbox import SENT_COLUMNS, envelope_from_row, outbox_row
from isles.projections import RebuildInProgress, projection_lag, rebuild

TOPOLOGIES = ["sqlite", pytest.param("pg-database", marks=pytest.mark.postgres),
              pytest.param("pg-schema", marks=pytest.mark.postgres)]
PG_ONLY = [pytest.param("pg-database", marks=pytest.mark.postgres),
           pytest.param("pg-schema", marks=pytest.mark.postgres)]


@pytest.fixture
async def toy_env(request, env, pg_database) -> dict[str, str]:
    topology = getattr(request, "param", "sqlite")
    values = dict(env)
    if topology == "pg-database":
        values["CATALOG_DATABASE_URL"] = await pg_database()
        values["REPORTS_DATABASE_URL"] = await pg_database()
    elif topology == "pg-schema":
        values["DATABASE_URL"] = await pg_database()
    return values


@pytest.fixture
async def system(toy_env):
    system = toy.build_system(env=toy_env, relay_options={"poll_interval": 0.02},
                              consumer_options={"max_attempts": 2, "base_backoff": 0.001})
    await system.start()
    try:
        yield system
    finally:
        await system.stop()


async def _outbox_envelopes(system) -> list[Envelope]:
    outbox = system.runtime("catalog").tables.outbox
    async with system.runtime("catalog").database.engine.connect() as conn:
        rows = (await conn.execute(select(*(outbox.c[c] for c in SENT_COLUMNS)).order_by(outbox.c.id))).all()
    return [envelope_from_row(row) for row in rows]


async def _dead_letters(system) -> int:
    dl = system.runtime("reports").tables.dead_letters
    async with system.runtime("reports").database.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(dl)))


@pytest.mark.parametrize("toy_env", TOPOLOGIES, indirect=True)
async def test_exactly_once_and_per_key_order_with_duplicate_and_reordered_deliveries(system):
    a = await toy.create_item("a1")
    b = await toy.create_item("b1")
    for n in range(2, 5):
        await toy.rename(a, f"a{n}")
        await toy.rename(b, f"b{n}")
    await system.drain()
    expected = {a: ("a4", "a1|a2|a3|a4"), b: ("b4", "b1|b2|b3|b4")}
    assert await toy.views() == expected
    envelopes = await _outbox_envelopes(system)
    # every event again, duplicated and in reverse: the inbox and the checkpoint keep it a no-op
    await system.consumer("reports").deliver(envelopes[::-1] + envelopes)
    assert await toy.views() == expected
    assert await _dead_letters(system) == 0
    [a_lag] = [lag for lag in await projection_lag(system) if lag.source == "catalog"]
    assert (a_lag.position, a_lag.behind) == (envelopes[-1].sequence, 0)


@pytest.mark.parametrize("toy_env", TOPOLOGIES, indirect=True)
async def test_ignored_events_move_the_checkpoint(system):
    a = await toy.create_item("a1")
    await system.drain()
    before = (await projection_lag(system))[0]
    for _ in range(3):
        await toy.audit(a)
    await system.drain()
    after = (await projection_lag(system))[0]
    assert after.position == before.position + 3 and after.applied == before.applied + 3
    assert after.behind == 0 and after.oldest_unapplied_age_s is None
    assert await toy.views() == {a: ("a1", "a1")}


@pytest.mark.parametrize("toy_env", TOPOLOGIES, indirect=True)
async def test_rebuild_while_events_keep_arriving_misses_none_and_repeats_none(system):
    items = [await toy.create_item(f"i{n}-0") for n in range(6)]
    for round_ in range(1, 4):
        for n, item in enumerate(items):
            await toy.rename(item, f"i{n}-{round_}")
    await system.drain()
    # what the live copy holds must not matter: a rebuild recomputes it from the log
    async with toy.reports.unit_of_work() as uow:
        await uow.execute(text("UPDATE item_names SET history = 'stale'"))
    stop = asyncio.Event()
    renamed = {item: 3 for item in items}

    async def keep_renaming() -> None:
        for _ in range(15):  # bounded: the rebuild must be able to catch up with the arrival rate
            if stop.is_set():
                return
            for n, item in enumerate(items):
                renamed[item] += 1
                await toy.rename(item, f"i{n}-{renamed[item]}")
            await asyncio.sleep(0.01)

    writer = asyncio.create_task(keep_renaming())
    await asyncio.sleep(0.05)
    report = await rebuild(system, "item_names", page_size=5)
    await asyncio.sleep(0.05)  # renames after the swap are applied live to the rebuilt copy
    stop.set()
    await writer
    await system.drain()
    assert report.events >= 24
    views = await toy.views()
    for n, item in enumerate(items):
        names = [f"i{n}-{k}" for k in range(renamed[item] + 1)]
        assert views[item] == (names[-1], "|".join(names))
    assert await _dead_letters(system) == 0
    assert all(lag.behind == 0 and not lag.rebuilding for lag in await projection_lag(system))


async def test_rebuild_from_snapshots_where_retention_purged_the_log(system):
    a = await toy.create_item("a1")
    await toy.rename(a, "a2")
    b = await toy.create_item("b1")
    await system.drain()
    outbox = system.runtime("catalog").tables.outbox
    async with system.runtime("catalog").database.engine.begin() as conn:  # retention took the first two
        await conn.execute(delete(outbox).where(outbox.c.id <= 2))
    await toy.rename(b, "b2")
    await system.drain()
    report = await rebuild(system, "item_names")
    assert report.from_snapshots == 2 and report.partial == {}
    views = await toy.views()
    assert views[a] == ("a2", "a2")  # from the snapshot: the current state, not the purged history
    assert views[b][0] == "b2"
    await toy.rename(a, "a3")
    await system.drain()
    assert (await toy.views())[a] == ("a3", "a2|a3")


@pytest.mark.parametrize("toy_env", PG_ONLY, indirect=True)
async def test_a_gap_never_stops_the_projection_nor_skips_the_late_commit(system):
    a = await toy.create_item("a1")
    b = await toy.create_item("b1")
    await system.drain()
    catalog = system.runtime("catalog")
    late = Envelope.wrap(toy.ItemUpdated(item_id=b, name="b-late"), source=catalog.source, key=b, version=5)
    async with catalog.database.engine.connect() as held:
        await held.begin()  # takes the smaller outbox id and holds it, uncommitted
        await held.execute(insert(catalog.tables.outbox).values(outbox_row(late)))
        held_id = await held.scalar(text("SELECT max(id) FROM isles_outbox"))
        await toy.rename(a, "a2")  # a later id commits first
        await system.relay("catalog").drain()
        await asyncio.sleep(0.2)
        assert (await toy.views())[a][0] == "a2"  # the gap does not stop the projection
        report = await rebuild(system, "item_names")  # and a rebuild across the gap keeps the hole open
        assert report.events == 3  # the held event is not committed: a hole, not an event
        [lag] = await projection_lag(system)
        assert lag.position > held_id and lag.behind == 0
        await held.commit()
    catalog.committed(1)  # wake the relay
    await system.drain()
    assert (await toy.views())[b] == ("b-late", "b1|b-late")  # the late commit is applied, once
    [lag] = await projection_lag(system)
    assert lag.behind == 0


@pytest.mark.parametrize("toy_env", PG_ONLY, indirect=True)
async def test_two_rebuilds_at_once_one_is_refused(system, toy_env):
    """Two processes (two Systems, own pools) ask at once: one rebuilds, the other is refused."""
    for n in range(30):
        await toy.create_item(f"x{n}")
    await system.drain()
    other = toy.build_system(env=toy_env)
    # the second "process" shares the declarations, so give it its own Service runtimes afterwards
    outcomes: list = []
    await other.start(relays=False, consumers=False)
    try:
        results = await asyncio.gather(rebuild(system, "item_names", page_size=3),
                                       rebuild(other, "item_names", page_size=3), return_exceptions=True)
        outcomes = [type(r).__name__ for r in results]
    finally:
        await other.stop()
    assert sorted(outcomes) == ["RebuildInProgress", "RebuildReport"]
    refused = next(r for r in results if isinstance(r, RebuildInProgress))
    assert "is being rebuilt by" in str(refused) and "fix:" in str(refused)


async def test_rebuild_needs_the_sources_log(toy_env):
    system = toy.build_system(env=toy_env)
    await system.start(services=["reports"])
    try:
        with pytest.raises(ConfigurationError, match="source service 'catalog' is not started"):
            await rebuild(system, "item_names")
        with pytest.raises(ConfigurationError, match="no projection 'nope'"):
            await rebuild(system, "nope")
    finally:
        await system.stop()
