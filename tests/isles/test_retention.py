"""Inbox and outbox retention: both tables stay bounded, and exactly-once survives the purge.

An inbox row is forgotten after the inbox window; an event older than that window is refused as
too old (dead-lettered, nothing applied), so forgetting never lets an event apply twice.
"""
from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from datetime import timedelta

import pytest
import toy_shop
from sqlalchemy import func, select

from conftest import TOPOLOGIES
from isles.errors import ConfigurationError
from isles.events import Envelope
from isles.orm import utcnow
from isles.outbox import envelope_from_row
from isles.retention import (
    CLOCK_ALLOWANCE,
    EventTooOld,
    RetentionSettings,
    parse_duration,
    purge_inbox,
    retention_settings,
    too_old,
)
from isles.tables import DEAD

DAY = timedelta(days=1)


# -- settings -------------------------------------------------------------------------------------------
def test_defaults_keep_the_inbox_a_day_longer_than_the_outbox():
    settings = retention_settings({})
    assert (settings.outbox, settings.inbox, settings.purge_interval) == (7 * DAY, 8 * DAY, 60.0)
    assert settings.inbox_kept == 8 * DAY + CLOCK_ALLOWANCE


def test_durations_are_read_with_units():
    env = {"ISLES_OUTBOX_RETENTION": "36h", "ISLES_INBOX_RETENTION": "2d", "ISLES_INBOX_PURGE_INTERVAL": "90"}
    settings = retention_settings(env)
    assert (settings.outbox, settings.inbox, settings.purge_interval) == (timedelta(hours=36), 2 * DAY, 90.0)
    assert parse_duration("X", "2s") == timedelta(seconds=2)
    assert parse_duration("X", "30m") == timedelta(minutes=30)
    assert parse_duration("X", "1.5") == timedelta(seconds=1.5)
    # a tiny window keeps its rows for at most twice the window, not window + 5 minutes
    assert RetentionSettings(inbox=timedelta(seconds=2)).inbox_kept == timedelta(seconds=4)


@pytest.mark.parametrize("raw", ["", "0", "-3d", "8 days", "d", "nan"])
def test_a_bad_duration_is_refused(raw):
    if raw == "":
        assert retention_settings({"ISLES_INBOX_RETENTION": raw}).inbox == 8 * DAY  # empty = unset
        return
    with pytest.raises(ConfigurationError) as caught:
        retention_settings({"ISLES_INBOX_RETENTION": raw})
    assert "ISLES_INBOX_RETENTION" in str(caught.value) and "fix:" in str(caught.value)


def test_an_inbox_window_shorter_than_the_outbox_window_is_refused():
    with pytest.raises(ConfigurationError) as caught:
        retention_settings({"ISLES_INBOX_RETENTION": "6d"})  # outbox: 7 days by default
    text = str(caught.value)
    assert "ISLES_INBOX_RETENTION" in text and "ISLES_OUTBOX_RETENTION" in text and "at least" in text
    with pytest.raises(ConfigurationError):
        retention_settings({"ISLES_INBOX_RETENTION": "1d", "ISLES_OUTBOX_RETENTION": "2d"})
    with pytest.raises(ConfigurationError):
        retention_settings({"ISLES_INBOX_RETENTION": "1d"}, {"retention": 2 * DAY})
    assert retention_settings({"ISLES_INBOX_RETENTION": "2d", "ISLES_OUTBOX_RETENTION": "2d"}).inbox == 2 * DAY


def test_the_outbox_window_follows_relay_options_and_must_agree_with_the_setting():
    assert retention_settings({}, {"retention": 3 * DAY}).outbox == 3 * DAY
    assert retention_settings({}, {"retention": 10 * DAY}).inbox == 11 * DAY  # default follows the outbox
    assert retention_settings({"ISLES_OUTBOX_RETENTION": "3d"}, {"retention": 3 * DAY}).outbox == 3 * DAY
    with pytest.raises(ConfigurationError) as caught:
        retention_settings({"ISLES_OUTBOX_RETENTION": "3d"}, {"retention": 4 * DAY})
    assert "ISLES_OUTBOX_RETENTION" in str(caught.value) and "relay_options" in str(caught.value)


async def test_a_system_refuses_to_start_with_the_windows_the_wrong_way_round(env):
    system = toy_shop.build_system(env={**env, "ISLES_INBOX_RETENTION": "1h"}, freeze_heap=False)
    with pytest.raises(ConfigurationError, match="ISLES_OUTBOX_RETENTION"):
        await system.start()
    assert not system.runtimes


def test_too_old_compares_the_event_time_with_the_window():
    now = utcnow()
    envelope = Envelope(id="e", source="/s/p", type="t", data=b"{}", partitionkey="k", time=now - 2 * DAY)
    assert too_old(envelope, 3 * DAY, service="s", now=now) is None
    assert too_old(envelope, None, service="s", now=now) is None
    refusal = too_old(envelope, DAY, service="s", now=now)
    assert isinstance(refusal, EventTooOld) and str(refusal).startswith("service 's': too old")


# -- the purge -------------------------------------------------------------------------------------------
@pytest.fixture
async def shop_with(shop_env):
    """``await shop_with(**settings)``: the toy shop started with extra settings."""
    started = []

    async def start(relay_options=None, **settings):
        system = toy_shop.build_system(env={**shop_env, **settings}, freeze_heap=False,
                                       relay_options={"poll_interval": 0.05, **(relay_options or {})},
                                       consumer_options={"max_attempts": 2, "base_backoff": 0.001})
        await system.start()
        started.append(system)
        return system

    yield start
    for system in started:
        await system.stop()


async def _count(runtime, table) -> int:
    async with runtime.database.engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)))


@pytest.mark.parametrize("shop_env", TOPOLOGIES, indirect=True)
async def test_the_purge_deletes_old_inbox_rows_only(shop_with):
    shop = await shop_with()
    runtime = shop.runtime("orders")
    inbox = runtime.tables.inbox
    now = utcnow()
    rows = [dict(event_id=f"old-{i}", type="t", source="/s", partition_key="k",
                 processed_at=now - timedelta(days=9, minutes=i)) for i in range(7)]
    rows += [dict(event_id=f"new-{i}", type="t", source="/s", partition_key="k",
                  processed_at=now - timedelta(days=7, minutes=i)) for i in range(3)]
    async with runtime.database.engine.begin() as conn:
        await conn.execute(inbox.insert(), rows)
    deleted = await purge_inbox(runtime, 8 * DAY, batch=3)  # three batches of 3, 3 and 1
    assert deleted == 7
    async with runtime.database.engine.connect() as conn:
        left = sorted(await conn.scalars(select(inbox.c.event_id)))
    assert left == ["new-0", "new-1", "new-2"]
    assert await purge_inbox(runtime, 8 * DAY) == 0


# -- refusing what the inbox may have forgotten ------------------------------------------------------------
async def _first_envelope(shop, item_id) -> Envelope:
    """The item's first event as the broker would redeliver it."""
    runtime = shop.runtime("catalog")
    async with runtime.database.engine.connect() as conn:
        rows = (await conn.execute(select(runtime.tables.outbox).order_by(runtime.tables.outbox.c.id))).all()
    return envelope_from_row(next(r for r in rows if r.partition_key == str(item_id)))


async def _dead_letters(shop):
    runtime = shop.runtime("orders")
    async with runtime.database.engine.connect() as conn:
        return (await conn.execute(select(runtime.tables.dead_letters))).all()


@pytest.mark.parametrize("shop_env", TOPOLOGIES, indirect=True)
async def test_an_event_older_than_the_inbox_window_is_dead_lettered_as_too_old(shop_with):
    shop = await shop_with()
    item_id = await toy_shop.create_item("nut")
    await shop.drain()
    applied = [a.event_id for a in await toy_shop.applied()]
    consumer = shop.consumer("orders")
    # a copy of an event the inbox has forgotten: published 9 days ago, its id unknown
    stale = dataclasses.replace(await _first_envelope(shop, item_id), id=str(uuid.uuid4()),
                                time=utcnow() - timedelta(days=9))
    await consumer.deliver([stale])
    assert [a.event_id for a in await toy_shop.applied()] == applied  # nothing applied
    [letter] = await _dead_letters(shop)
    assert (letter.event_id, letter.status) == (stale.id, DEAD)
    assert "too old" in letter.error.splitlines()[0] and "ISLES_INBOX_RETENTION" in letter.error
    # it parks its key: a later event of the item waits behind it, unapplied
    await toy_shop.rename(item_id, "hex nut")
    await shop.drain()
    assert [a.event_id for a in await toy_shop.applied()] == applied
    # a retry refuses it again while it is older than the window
    report = await consumer.retry()
    assert report.resolved == 0 and "EventTooOld" in report.failed[0][1]
    assert [a.event_id for a in await toy_shop.applied()] == applied


async def test_a_too_old_event_is_applied_on_retry_once_the_window_covers_it(shop_with):
    """The operator's way out when the relay was down longer than the window."""
    shop = await shop_with()
    item_id = await toy_shop.create_item("nut")
    await shop.drain()
    consumer = shop.consumer("orders")
    stale = dataclasses.replace(await _first_envelope(shop, item_id), id=str(uuid.uuid4()),
                                time=utcnow() - timedelta(days=9))
    await consumer.deliver([stale])
    consumer.inbox_retention = timedelta(days=10)  # ISLES_INBOX_RETENTION=10d, restarted
    report = await consumer.retry()
    assert report.resolved == 1
    assert stale.id in [a.event_id for a in await toy_shop.applied(item_id)]


async def test_a_too_old_copy_of_an_event_still_in_the_inbox_is_dropped(shop_with):
    """Before its row is purged, a late copy is recognised as handled: no dead letter for nothing."""
    shop = await shop_with()
    item_id = await toy_shop.create_item("nut")
    await shop.drain()
    envelope = await _first_envelope(shop, item_id)
    late = dataclasses.replace(envelope, time=utcnow() - timedelta(days=9))
    await shop.consumer("orders").deliver([late])
    assert [a.event_id for a in await toy_shop.applied(item_id)] == [envelope.id]
    assert await _dead_letters(shop) == []


@pytest.mark.parametrize("shop_env", TOPOLOGIES, indirect=True)
async def test_a_duplicate_within_the_window_is_still_a_no_op(shop_with):
    shop = await shop_with(ISLES_INBOX_RETENTION="1h", ISLES_OUTBOX_RETENTION="1h")
    item_id = await toy_shop.create_item("nut")
    await shop.drain()
    envelope = await _first_envelope(shop, item_id)
    consumer = shop.consumer("orders")
    before = consumer.duplicates
    await consumer.deliver([envelope, envelope])
    assert [a.event_id for a in await toy_shop.applied(item_id)] == [envelope.id]
    assert consumer.duplicates == before + 2
    assert await _dead_letters(shop) == []


# -- both tables hold steady ---------------------------------------------------------------------------------
SOAK_SECONDS = 8.0
RATE = 100  # events per second, at most
SLACK = 1.0  # seconds: a purge pass, a sample, a scheduler hiccup


@pytest.mark.parametrize("shop_env", TOPOLOGIES, indirect=True)
async def test_outbox_and_inbox_stay_bounded_under_load(shop_with):
    """Tiny windows (outbox 0.5 s, inbox 1 s, so rows kept 2 s) and fast purges, events pushed for 8 s.

    At every sample after the windows filled, each table holds no more than the events pushed
    within its window (plus slack) - without a purge they would hold everything pushed so far.
    """
    purge = 0.2
    shop = await shop_with(relay_options={"purge_interval": purge}, ISLES_OUTBOX_RETENTION="0.5s",
                           ISLES_INBOX_RETENTION="1s", ISLES_INBOX_PURGE_INTERVAL=str(purge))
    catalog, orders = shop.runtime("catalog"), shop.runtime("orders")
    pushes: list[float] = []  # when each event was pushed
    samples: list[tuple[float, int, int]] = []  # (when, outbox rows, inbox rows)
    start = time.monotonic()
    while (now := time.monotonic() - start) < SOAK_SECONDS:
        while len(pushes) < now * RATE:
            await toy_shop.create_item(f"item {len(pushes)}")
            pushes.append(time.monotonic() - start)
        samples.append((time.monotonic() - start, await _count(catalog, catalog.tables.outbox),
                        await _count(orders, orders.tables.inbox)))
        await asyncio.sleep(0.1)
    await shop.drain()
    assert len(await toy_shop.applied()) == len(pushes)  # every event applied once, none refused
    assert await _dead_letters(shop) == []

    def pushed_within(seconds: float, before: float) -> int:
        return sum(1 for t in pushes if before - seconds <= t <= before)

    settled = [s for s in samples if s[0] >= 4.0]
    for when, outbox_rows, inbox_rows in settled:
        assert outbox_rows <= pushed_within(0.5 + purge + SLACK, when), (when, outbox_rows, samples)
        assert inbox_rows <= pushed_within(2.0 + purge + SLACK, when), (when, inbox_rows, samples)
    assert max(s[2] for s in settled) < 0.6 * len(pushes), samples  # far from "everything pushed"
    assert max(s[1] for s in settled) < 0.4 * len(pushes), samples
