"""isles' audit trail: rows in the change's own transaction, server UTC time, one row per field,
and append-only in the database itself (UPDATE, DELETE refused by triggers) on SQLite and PostgreSQL."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import ConfigurationError, Entity, Service, System
from isles.audit_trail import AUDIT_TRAIL, SYSTEM, audit, history, text_of
from isles.security import Principal

TOPOLOGIES = ["sqlite", pytest.param("pg-database", marks=pytest.mark.postgres),
              pytest.param("pg-schema", marks=pytest.mark.postgres)]
ALICE = Principal(user_id=str(uuid.uuid4()), username="alice", roles=frozenset({"quality"}))


class Base(DeclarativeBase):
    pass


class Gadget(Entity, Base):
    __tablename__ = "gadgets"
    name: Mapped[str] = mapped_column(String(64))


class PlainBase(DeclarativeBase):
    pass


class Widget(Entity, PlainBase):
    __tablename__ = "widgets"
    name: Mapped[str] = mapped_column(String(64))


@pytest.fixture(params=TOPOLOGIES)
async def system(request, env, pg_database):
    values = dict(env)
    if request.param == "pg-database":
        values["WORKSHOP_DATABASE_URL"] = await pg_database()
        values["PLAIN_DATABASE_URL"] = await pg_database()
    elif request.param == "pg-schema":
        values["DATABASE_URL"] = await pg_database()
    system = System("audit", [Service("workshop", metadata=Base.metadata, audit=True),
                              Service("plain", metadata=PlainBase.metadata)], env=values)
    await system.start()
    try:
        yield system
    finally:
        await system.stop()


async def _gadget(system: System) -> uuid.UUID:
    async with system.services["workshop"].unit_of_work() as uow:
        gadget = Gadget(name="G-1")
        uow.add(gadget)
        await uow.flush()
        audit(uow, ALICE, "gadget.created", "gadget", gadget.id)
        return gadget.id


async def test_audit_rows_commit_with_the_change_one_per_field_in_server_utc(system):
    service = system.services["workshop"]
    gadget_id = await _gadget(system)
    before = datetime.now(timezone.utc)
    async with service.unit_of_work() as uow:
        gadget = await uow.get(Gadget, gadget_id)
        gadget.name = "G-2"
        rows = audit(uow, ALICE, "gadget.updated", "gadget", gadget_id, changes={
            "name": ("G-1", "G-2"), "weight": (Decimal("1.500"), Decimal("2")), "unchanged": (1, 1)},
            reason="drawing rev B")
    after = datetime.now(timezone.utc)
    assert len({r.change_id for r in rows}) == 1

    async with service.unit_of_work() as uow:
        found = await history(uow, "gadget", gadget_id)
    assert [(e.action, e.field, e.old_value, e.new_value, e.reason) for e in found] == [
        ("gadget.created", None, None, None, None),
        ("gadget.updated", "name", "G-1", "G-2", "drawing rev B"),
        ("gadget.updated", "weight", "1.5", "2", "drawing rev B")]
    assert {(e.actor_id, e.actor_name, e.entity, e.entity_id) for e in found} == {
        (ALICE.user_id, "alice", "gadget", str(gadget_id))}
    for entry in found[1:]:
        assert entry.occurred_at.tzinfo is not None and entry.occurred_at.utcoffset() == timedelta(0)
        assert before - timedelta(seconds=1) <= entry.occurred_at <= after + timedelta(seconds=1)
    async with service.unit_of_work() as uow:  # reading never writes back
        assert len(await history(uow, "gadget", gadget_id, action="gadget.updated")) == 2


async def test_a_rolled_back_change_leaves_no_audit_row_and_no_principal_means_the_system(system):
    service = system.services["workshop"]
    gadget_id = await _gadget(system)
    with pytest.raises(RuntimeError):
        async with service.unit_of_work() as uow:
            audit(uow, ALICE, "gadget.scrapped", "gadget", gadget_id)
            raise RuntimeError("refused after the audit call")
    async with service.unit_of_work() as uow:
        audit(uow, None, "gadget.expired", "gadget", gadget_id, reason="shelf life ended")
    async with service.unit_of_work() as uow:
        found = await history(uow, "gadget", gadget_id)
    assert [(e.action, e.actor_id, e.actor_name) for e in found] == [
        ("gadget.created", ALICE.user_id, "alice"), ("gadget.expired", SYSTEM, SYSTEM)]


@pytest.mark.parametrize("statement", [f"UPDATE {AUDIT_TRAIL} SET new_value = 'forged'",
                                       f"DELETE FROM {AUDIT_TRAIL}"])
async def test_the_database_refuses_update_and_delete_of_audit_rows(system, statement):
    """Raw SQL through the service's own engine (the table's owner; on PostgreSQL a superuser too)."""
    gadget_id = await _gadget(system)
    engine = system.runtime("workshop").database.engine
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(sa.text(statement))
    async with system.services["workshop"].unit_of_work() as uow:
        (entry,) = await history(uow, "gadget", gadget_id)
    assert entry.new_value is None and entry.action == "gadget.created"


async def test_postgres_refuses_truncate_too(system):
    engine = system.runtime("workshop").database.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    await _gadget(system)
    with pytest.raises(sa.exc.DBAPIError, match="append-only"):
        async with engine.begin() as conn:
            await conn.execute(sa.text(f"TRUNCATE {AUDIT_TRAIL}"))


async def test_a_service_without_the_declaration_gets_a_clear_error(system):
    assert AUDIT_TRAIL not in system.services["plain"].metadata.tables
    async with system.services["plain"].unit_of_work() as uow:
        with pytest.raises(ConfigurationError, match=r"(?s)plain.*audit=True"):
            audit(uow, ALICE, "widget.created", "widget", uuid.uuid4())


def test_values_are_stored_as_text_that_reads_back_the_same():
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    assert [text_of(v) for v in (None, True, when, Decimal("2.500"), Decimal("10"), 7, {"b", "a"}, ["x", 1])] == [
        None, "true", "2025-01-02T03:04:05+00:00", "2.5", "10", "7", '["a","b"]', '["x",1]']
