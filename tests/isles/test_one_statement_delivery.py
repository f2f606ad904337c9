"""A lone event whose handlers are all replicas is handled with one statement on PostgreSQL
(the inbox row and every write, in autocommit), and in one transaction sent straight to the
sqlite3 connection on SQLite; either keeps every promise of the unit of work it replaces:
exactly once, copies never go backwards, parked keys wait, column defaults are filled, a failing
write is retried and dead-lettered."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, AsyncIterator

import pytest
import toy_shop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    Uuid,
    event,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from conftest import TOPOLOGIES
from isles import Entity, Envelope, Event, Handlers, ReadModel, Replica, Service, Subscription, System
from isles.replication import python_defaults
from isles.tables import DEAD, WAITING


class CopiesBase(DeclarativeBase):
    pass


class Line(Entity, CopiesBase):
    """Rows that mirror an item through item_id (an UPDATE replica; updated_at has an onupdate)."""

    __tablename__ = "lines"
    item_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    item_name: Mapped[str | None] = mapped_column(String(100))
    item_version: Mapped[int | None] = mapped_column(BigInteger)


class ItemCopy(ReadModel, CopiesBase):
    """A read model of items (an upsert replica; two columns the event does not carry have defaults)."""

    __tablename__ = "item_copies"
    __table_args__ = (CheckConstraint("length(name) <= 8", name="short_names"),)  # a long name: the write fails
    name: Mapped[str | None] = mapped_column(String(100))
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    copied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=func.now())


REPEATED: list[str] = []  # event ids the repeatable handler saw, in order


async def remember(envelope: Envelope, uow: Any) -> None:
    REPEATED.append(envelope.id)


class TagsBase(DeclarativeBase):
    pass


class TagUpdated(Event, type="shop.tags.tag.updated", key="tag_id"):
    tag_id: str
    label: str


class TagDeleted(Event, type="shop.tags.tag.deleted", key="tag_id"):
    tag_id: str


tags = Service("tags", metadata=TagsBase.metadata, publishes=[TagUpdated, TagDeleted])


class TagCopy(ReadModel, CopiesBase):
    """A read model whose rows go when their tag is deleted."""

    __tablename__ = "tag_copies"
    label: Mapped[str | None] = mapped_column(String(100))


handlers = Handlers()
handlers.include([Subscription("shop.catalog.item.updated", None, remember, "remember", repeatable=True)])
copies = Service("copies", metadata=CopiesBase.metadata, handlers=handlers, replicas=[
    Replica(Line, key="item_id", source="shop.catalog.item", fields={"item_name": "name"}),
    Replica(ItemCopy, key="id", source="shop.catalog.item", fields={"name": "name"}, upsert=True),
    Replica(TagCopy, key="id", source="shop.tags.tag", fields={"label": "label"}, upsert=True,
            actions=("updated",), on_deleted="delete")])


@pytest.fixture(params=TOPOLOGIES)
async def copies_env(request, env, pg_database) -> dict[str, str]:
    values = dict(env)
    if request.param == "pg-database":
        values["CATALOG_DATABASE_URL"] = await pg_database()
        values["COPIES_DATABASE_URL"] = await pg_database()
    elif request.param == "pg-schema":
        values["DATABASE_URL"] = await pg_database()
    return values


@pytest.fixture
async def system(copies_env) -> AsyncIterator[System]:
    REPEATED.clear()
    system = System("copies", [toy_shop.catalog, tags, copies], env=copies_env,
                    consumer_options={"max_attempts": 2, "base_backoff": 0.001})
    await system.start(relays=False)
    try:
        yield system
    finally:
        await system.stop()


def updated(key: uuid.UUID, version: int, name: str | None = None) -> Envelope:
    event = toy_shop.ItemUpdated(item_id=str(key), name=name or f"v{version}", price=1)
    return Envelope.wrap(event, source="/shop/catalog", key=str(key), version=version)


async def add_line(system: System, item_id: uuid.UUID) -> uuid.UUID:
    async with system.service("copies").unit_of_work() as uow:
        line = Line(item_id=item_id)
        uow.add(line)
    return line.id


async def rows(system: System, query: Any) -> list[Any]:
    async with system.service("copies").unit_of_work() as uow:
        return list((await uow.execute(query)).all())


def one_statement(system: System) -> bool:
    return system.runtime("copies").dialect.name == "postgresql"


class Statements:
    """What the consumer's engine sent: statements and transactions begun (BEGIN is a round trip)."""

    def __init__(self, system: System) -> None:
        self.sent: list[str] = []
        self.begun = 0
        engine = system.runtime("copies").database.engine.sync_engine
        event.listen(engine, "before_cursor_execute", lambda *args: self.sent.append(args[2]))
        event.listen(engine, "begin", self._begin)

    def _begin(self, conn: Any) -> None:
        if getattr(conn.connection.dbapi_connection, "isolation_level", None) != "autocommit":
            self.begun += 1  # (asyncpg sends no BEGIN in autocommit)


async def test_a_lone_replica_event_is_one_statement_with_its_inbox_row(system):
    consumer = system.consumer("copies")
    item = uuid.uuid4()
    line = await add_line(system, item)
    [(before,)] = await rows(system, select(Line.updated_at).where(Line.id == line))
    sent = Statements(system)
    await consumer.deliver([updated(item, 1, "first")])
    assert consumer.in_one_statement == 1
    if one_statement(system):
        assert len(sent.sent) == 1 and sent.begun == 0, sent.sent
        assert sent.sent[0].lstrip().startswith("WITH isles_new AS")
    else:  # straight to the sqlite3 connection: nothing through SQLAlchemy
        assert sent.sent == [] and sent.begun == 0, sent.sent
    assert len(REPEATED) == 1  # the repeatable handler ran, once
    [(name, version, after)] = await rows(system, select(Line.item_name, Line.item_version, Line.updated_at)
                                          .where(Line.id == line))
    assert (name, version) == ("first", 1)
    assert after > before  # the onupdate default was filled, not left NULL
    [(copy_name, active, copied_at)] = await rows(system, select(ItemCopy.name, ItemCopy.is_active,
                                                                 ItemCopy.copied_at).where(ItemCopy.id == item))
    assert (copy_name, active) == ("first", True) and copied_at is not None
    inbox = system.runtime("copies").tables.inbox
    assert len(await rows(system, select(inbox.c.event_id))) == 1


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(deliveries=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=12))
async def test_duplicated_and_reordered_lone_events_leave_the_newest_copy_applied_once(system, deliveries):
    consumer = system.consumer("copies")
    item = uuid.uuid4()
    await add_line(system, item)
    envelopes = {version: updated(item, version) for version in set(deliveries)}
    duplicates = consumer.duplicates
    for version in deliveries:  # each alone: a redelivery is the same envelope again
        await consumer.deliver([envelopes[version]])
    newest = max(deliveries)
    assert await rows(system, select(Line.item_name, Line.item_version).where(Line.item_id == item)) == [
        (f"v{newest}", newest)]
    assert await rows(system, select(ItemCopy.name, ItemCopy.version).where(ItemCopy.id == item)) == [
        (f"v{newest}", newest)]
    inbox = system.runtime("copies").tables.inbox
    stored = await rows(system, select(inbox.c.event_id).where(inbox.c.partition_key == str(item)))
    assert len(stored) == len(envelopes)
    assert consumer.duplicates - duplicates == len(deliveries) - len(envelopes)


async def test_a_lone_event_of_a_parked_key_waits_behind_its_dead_letter(system):
    consumer = system.consumer("copies")
    item = uuid.uuid4()
    too_long = updated(item, 1, "a name longer than the copy's column")
    await consumer.deliver([too_long])  # fails in one statement, then in its transaction, twice: dead
    await consumer.deliver([updated(item, 2)])  # fine on its own, but its key is parked
    dl = system.runtime("copies").tables.dead_letters
    letters = await rows(system, select(dl.c.event_id, dl.c.status).order_by(dl.c.id))
    assert [status for _, status in letters] == [DEAD, WAITING]
    assert letters[0].event_id == too_long.id
    assert await rows(system, select(ItemCopy.name).where(ItemCopy.id == item)) == []
    assert consumer.dead_lettered == 1


async def test_a_repeatable_handler_that_touches_the_database_sends_the_event_the_usual_way(system, monkeypatch):
    consumer = system.consumer("copies")
    item = uuid.uuid4()

    async def reads(envelope: Envelope, uow: Any) -> None:
        REPEATED.append(envelope.id)
        await uow.scalar(select(func.count()).select_from(Line))

    subs = consumer.by_type["shop.catalog.item.updated"]
    monkeypatch.setitem(consumer.by_type, "shop.catalog.item.updated",
                        [Subscription(s.type, s.model, reads, s.name, repeatable=True) if s.repeatable else s
                         for s in subs])
    await consumer.deliver([updated(item, 1)])
    assert consumer.in_one_statement == 0
    assert consumer.handled == 1
    assert await rows(system, select(ItemCopy.name).where(ItemCopy.id == item)) == [("v1",)]


def test_defaults_that_need_sqlalchemys_context_are_refused():
    def from_context(context: Any) -> str:
        return "x"

    table = Table("t", MetaData(), Column("id", String, primary_key=True), Column("a", String, default="s"),
                  Column("b", String, default=lambda: "c"), Column("c", String, default=from_context),
                  Column("d", DateTime, onupdate=func.now()))
    insert = python_defaults(table, {"id", "c"}, update=False)
    assert insert is not None and set(insert) == {"a", "b"}
    assert insert["a"]() == "s" and insert["b"]() == "c"
    assert python_defaults(table, {"id"}, update=False) is None  # c's default takes the context
    update = python_defaults(table, {"a"}, update=True)
    assert update is not None and set(update) == {"d"}


async def test_while_the_held_connection_is_busy_a_pooled_one_carries_the_statement(system):
    if not one_statement(system):
        pytest.skip("SQLite holds no connection for it: it has one")
    consumer = system.consumer("copies")
    item = uuid.uuid4()
    await consumer.deliver([updated(item, 1)])  # opens the held connection
    held = consumer._held
    assert held is not None and held._conn is not None
    sent = Statements(system)
    async with held._turn:  # as if another lone event's statement were running on it
        await consumer.deliver([updated(item, 2)])
    assert consumer.in_one_statement == 2 and len(sent.sent) == 1 and sent.begun == 0
    assert await rows(system, select(ItemCopy.name).where(ItemCopy.id == item)) == [("v2",)]


async def test_a_small_pool_keeps_no_connection_for_it(copies_env):
    small = System("copies", [toy_shop.catalog, tags, copies], env={**copies_env, "COPIES_DB_POOL_MIN": "1",
                                                               "COPIES_DB_POOL_MAX": "3"})
    async with small.running(relays=False):
        if not one_statement(small):
            pytest.skip("SQLite holds no connection for it: it has one")
        consumer = small.consumer("copies")
        await consumer.deliver([updated(uuid.uuid4(), 1)])
        assert consumer.in_one_statement == 1 and consumer._held is None  # the relay's and requests' room


async def test_a_lone_delete_removes_the_copy_and_an_older_update_cannot_bring_it_back(system):
    consumer = system.consumer("copies")
    tag = uuid.uuid4()

    def envelope(event: Event, version: int) -> Envelope:
        return Envelope.wrap(event, source="/shop/tags", key=str(tag), version=version)

    created = envelope(TagUpdated(tag_id=str(tag), label="red"), 1)
    await consumer.deliver([created])
    await consumer.deliver([envelope(TagDeleted(tag_id=str(tag)), 2)])
    assert await rows(system, select(TagCopy.id).where(TagCopy.id == tag)) == []
    await consumer.deliver([created])  # a redelivery of the update: the inbox knows it
    assert await rows(system, select(TagCopy.id).where(TagCopy.id == tag)) == []
    assert consumer.in_one_statement == 2
