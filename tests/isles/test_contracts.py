"""Event contracts: a System refuses consumers that read what their producers do not publish."""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import JSON, BigInteger, Column, Integer, MetaData, String, Table, Uuid

from isles import (
    ConfigurationError,
    Envelope,
    Event,
    Handlers,
    Payload,
    Replica,
    Service,
    System,
    UnitOfWork,
)
from isles.contracts import find_mismatches


class PartUpdated(Event, type="plant.material.part.updated", key="part_id"):
    part_id: uuid.UUID
    part_number: str
    name: str
    description: str | None = None
    weight: Decimal
    quantity: int
    tags: list[str] = []
    changed_at: datetime


class PartDeleted(Event, type="plant.material.part.deleted", key="part_id"):
    part_id: uuid.UUID


def _material() -> Service:
    return Service("material", metadata=MetaData(), publishes=[PartUpdated, PartDeleted])


def _orders(model: Any = None, *, replica_fields: dict[str, str] | None = None, columns: tuple[Column, ...] = (),
            actions: tuple[str, ...] = ("updated",)) -> Service:
    """A consumer of PartUpdated: a handler reading ``model`` and/or a replica copying ``replica_fields``."""
    handlers = Handlers()
    if model is not None:
        @handlers.on("plant.material.part.updated", model=model)
        async def part_changed(event: Any, uow: UnitOfWork) -> None: ...
    metadata = MetaData()
    replicas = []
    if replica_fields is not None:
        table = Table("order_lines", metadata, Column("id", Integer, primary_key=True), Column("part_id", Uuid),
                      Column("part_version", BigInteger), *columns)
        replicas.append(Replica(table, key="part_id", source="plant.material.part", fields=replica_fields,
                                actions=actions))
    return Service("orders", metadata=metadata, handlers=handlers, replicas=replicas)


def _build(consumer: Service) -> System:
    return System("plant", [_material(), consumer])


def _refused(consumer: Service) -> str:
    with pytest.raises(ConfigurationError) as caught:
        _build(consumer)
    return str(caught.value)


# -- mismatches ------------------------------------------------------------------------------------------
def test_a_renamed_field_names_both_services_the_event_the_field_and_the_fix():
    class PartView(Payload):
        part_id: str
        number: str  # the producer calls it partNumber

    message = _refused(_orders(PartView))
    assert message.startswith("service 'orders': handler ")
    assert "'number' of plant.material.part.updated (PartView.number)" in message
    assert "service 'material' does not publish" in message
    assert "PartUpdated has: partId, partNumber, name" in message
    assert "fix: rename PartView.number" in message


def test_a_replica_field_the_producer_removed_is_refused():
    message = _refused(_orders(replica_fields={"part_code": "partCode"}, columns=(Column("part_code", String),)))
    assert ("service 'orders': replica order_lines.part_code reads field 'partCode' of plant.material.part.updated, "
            "which service 'material' does not publish (PartUpdated has: partId, partNumber") in message
    assert "fix: map 'part_code' to one of PartUpdated's fields" in message


def test_a_changed_type_is_refused():
    class PartView(Payload):
        part_number: int  # the producer sends a string

    message = _refused(_orders(PartView))
    assert "service 'orders'" in message and "service 'material'" in message
    assert ("reads field 'partNumber' of plant.material.part.updated (PartView.part_number) as integer, "
            "but service 'material' publishes it as string (PartUpdated.part_number)") in message


@pytest.mark.parametrize("annotation, default", [(int, ...), (str, ...), (bool, ...), (list[int], ...),
                                                 (float, ...)])
def test_types_a_consumer_cannot_read_are_refused(annotation, default):
    wrong = {int: "weight", str: "quantity", bool: "name", list[int]: "tags", float: "part_number"}[annotation]
    model = type("PartView", (Payload,), {"__annotations__": {wrong: annotation}})
    message = _refused(_orders(model))
    assert f"PartView.{wrong}" in message


def test_a_required_reader_of_an_optional_field_is_refused():
    class PartView(Payload):
        description: str = ""  # null is sent as null, not left out: even a default does not help

    message = _refused(_orders(PartView))
    assert "does not accept null, but service 'material' may publish null" in message
    assert "(PartUpdated.description is Optional)" in message
    assert "fix: make PartView.description Optional" in message


def test_a_replica_of_a_deleted_event_copying_a_field_it_lacks_is_refused():
    message = _refused(_orders(replica_fields={"part_number": "partNumber"}, columns=(Column("part_number", String),),
                               actions=("updated", "deleted")))
    assert "reads field 'partNumber' of plant.material.part.deleted" in message
    assert "(PartDeleted has: partId)" in message


def test_a_replica_column_that_cannot_store_the_field_is_refused():
    message = _refused(_orders(replica_fields={"part_number": "partNumber"},
                               columns=(Column("part_number", Integer),)))
    assert "replica order_lines.part_number (INTEGER) copies field 'partNumber'" in message
    assert "publishes as string (PartUpdated.part_number)" in message
    message = _refused(_orders(replica_fields={"description": "description"},
                               columns=(Column("description", String, nullable=False),)))
    assert "replica order_lines.description is NOT NULL, but service 'material' may publish null" in message


def test_every_mismatch_is_reported_at_once():
    class PartView(Payload):
        number: str
        quantity: str

    message = _refused(_orders(PartView, replica_fields={"code": "code"}, columns=(Column("code", String),)))
    assert message.startswith("3 consumers read what their producers do not publish:")
    assert "PartView.number" in message and "PartView.quantity" in message and "order_lines.code" in message


class LineItem(Payload):
    sku: str
    count: int


class OrderPlaced(Event, type="plant.sales.order.placed", key="order_id"):
    order_id: str
    lines: list[LineItem]


def _sales_and_reader(item: type[Payload]) -> list[Service]:
    reader = type("OrderView", (Payload,), {"__annotations__": {"order_id": str, "lines": list[item]}})
    handlers = Handlers()
    handlers.on("plant.sales.order.placed", model=reader)(_ignore)
    return [Service("sales", metadata=MetaData(), publishes=[OrderPlaced]),
            Service("orders", metadata=MetaData(), handlers=handlers)]


async def _ignore(event: Any, uow: UnitOfWork) -> None: ...


def test_nested_models_are_compared_field_by_field():
    class Counted(Payload):
        count: str  # the producer's lines carry it as an integer

    class Skus(Payload):
        sku: str

    message = _refused_services(_sales_and_reader(Counted))
    assert "reads field 'lines' of plant.sales.order.placed (OrderView.lines) as array of object" in message
    assert "service 'sales' publishes it as array of object (OrderPlaced.lines)" in message
    System("plant", _sales_and_reader(Skus))


def _refused_services(services: list[Service]) -> str:
    with pytest.raises(ConfigurationError) as caught:
        System("plant", services)
    return str(caught.value)


# -- what is accepted ----------------------------------------------------------------------------------------
def test_compatible_readers_are_accepted():
    class PartView(Payload):
        part_id: str  # a UUID is a string on the wire
        partNumber: str  # the wire name itself
        weight: float  # a Decimal is sent as a string a float reads
        quantity: float  # an integer is a number
        description: str | None  # optional reads optional
        changed_at: str  # a datetime is a string
        tags: list[str] | None = None
        colour: str = "grey"  # the producer lacks it: the default applies
        # partNumber's siblings (name, ...) are not read: extra producer fields are fine

    class Strict(Payload):
        part_id: uuid.UUID
        weight: Decimal
        changed_at: datetime

    for model in (PartView, Strict):
        _build(_orders(model))


def test_replica_fields_in_snake_or_camel_case_are_accepted():
    _build(_orders(replica_fields={"part_number": "part_number", "part_name": "name", "qty": "quantity",
                                   "weight": "weight", "description": "description", "tags": "tags"},
                   columns=(Column("part_number", String(40)), Column("part_name", String), Column("qty", BigInteger),
                            Column("weight", String), Column("description", String, nullable=True),
                            Column("tags", JSON))))


def test_envelope_handlers_and_unknown_optional_types_are_not_checked():
    handlers = Handlers()

    async def raw(envelope: Envelope, uow: UnitOfWork) -> None: ...

    handlers.on("plant.material.part.updated")(raw)  # the annotation Envelope: no model
    assert handlers.subscriptions[0].model is None

    _build(Service("orders", metadata=MetaData(), handlers=handlers))


def test_the_mes_system_builds():
    from mes.system import system

    assert find_mismatches(system.services.values(), system.registry) == []
