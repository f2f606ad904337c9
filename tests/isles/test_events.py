"""The CloudEvents envelope, camelCase payloads and the registry of event types."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import orjson
import pytest
import toy_shop

from isles.errors import ConfigurationError, InvalidPayload
from isles.events import Envelope, EventRegistry, decode, new_traceparent, rfc3339


def test_payloads_are_camel_case_on_the_wire():
    event = toy_shop.ItemCreated(item_id="i-1", name="bolt", price=3)
    assert orjson.loads(event.to_json()) == {"itemId": "i-1", "name": "bolt", "price": 3}
    assert toy_shop.ItemCreated.model_validate({"itemId": "i-1", "name": "bolt", "price": 3}) == event


def test_envelope_round_trips_through_cloudevents_json():
    event = toy_shop.ItemUpdated(item_id="i-1", name="bolt", price=3)
    envelope = Envelope.wrap(event, source="/shop/catalog", key="i-1", version=7)
    wire = orjson.loads(envelope.to_structured())
    assert wire["specversion"] == "1.0" and wire["type"] == "shop.catalog.item.updated"
    assert wire["partitionkey"] == "i-1" and wire["entityversion"] == 7 and wire["dataversion"] == 1
    assert wire["traceparent"].startswith("00-") and wire["data"] == {"itemId": "i-1", "name": "bolt", "price": 3}
    back = Envelope.from_structured(envelope.to_structured())
    assert (back.id, back.entityversion, back.partitionkey, back.json()) == (
        envelope.id, 7, "i-1", {"itemId": "i-1", "name": "bolt", "price": 3})


def test_structured_json_is_what_the_cloudevents_package_reads_and_writes():
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent
    envelope = Envelope.wrap(toy_shop.ItemUpdated(item_id="i-1", name="bolt ü", price=3), source="/shop/catalog",
                             key="i-1", version=7)
    ours = JSONFormat().read(CloudEvent, envelope.to_structured())
    reference = JSONFormat().read(CloudEvent, JSONFormat().write(envelope.to_cloudevent(parsed=True)))
    assert ours.get_attributes() == reference.get_attributes()
    assert ours.get_data() == reference.get_data() == {"itemId": "i-1", "name": "bolt ü", "price": 3}
    assert orjson.loads(envelope.to_structured())["time"].endswith("Z")


@pytest.mark.parametrize("moment", [
    datetime(2026, 11, 29, 23, 52, 32, 123456, tzinfo=timezone.utc),
    datetime(2026, 11, 29, 23, 52, 32, tzinfo=timezone.utc),  # no microseconds: none written
    datetime(2026, 11, 29, 23, 52, 32, 1000, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
])
def test_structured_json_writes_time_as_the_kafka_headers_do(moment):
    envelope = Envelope(id="e-1", source="/shop/catalog", type="shop.catalog.item.updated", data=b"{}",
                        partitionkey="i-1", time=moment)
    assert orjson.loads(envelope.to_structured())["time"] == rfc3339(moment)


def test_an_event_without_partition_key_is_refused():
    raw = orjson.dumps({"specversion": "1.0", "id": "1", "source": "/x", "type": "a.b.c", "data": {}})
    with pytest.raises(InvalidPayload, match="partitionkey"):
        Envelope.from_structured(raw)


def test_trace_context_continues_the_parent_trace():
    parent = new_traceparent()
    child = new_traceparent(parent)
    assert child.split("-")[1] == parent.split("-")[1] and child != parent


def test_invalid_data_names_the_service_the_field_and_the_fix():
    envelope = Envelope.wrap(toy_shop.ItemUpdated(item_id="1", name="n", price=1), source="/s", key="1", version=1)
    envelope.data = b'{"itemId": "1"}'
    with pytest.raises(InvalidPayload) as info:
        decode(toy_shop.ItemView, envelope, service="orders")
    assert "service 'orders'" in str(info.value) and "name" in str(info.value) and "isles dlq retry" in str(info.value)


def test_registry_refuses_two_owners_of_one_type():
    registry = EventRegistry()
    registry.register("catalog", toy_shop.ItemCreated)

    class Twin(toy_shop.ItemCreated, type="shop.catalog.item.created"):
        pass

    with pytest.raises(ConfigurationError, match="declared twice"):
        registry.register("other", Twin)


def _package_reads(raw: bytes) -> Envelope:
    from cloudevents.core.formats.json import JSONFormat
    from cloudevents.core.v1.event import CloudEvent
    return Envelope.from_cloudevent(JSONFormat().read(CloudEvent, raw))


@pytest.mark.parametrize("subject, traceparent, version", [("i-1", new_traceparent(), 7), (None, None, None),
                                                           ("i-2", None, 1)])
def test_structured_json_is_read_directly_as_the_package_reads_it(monkeypatch, subject, traceparent, version):
    envelope = Envelope.wrap(toy_shop.ItemUpdated(item_id="i-1", name="bolt ü", price=3), source="/shop/catalog",
                             key="i-1", version=version)
    envelope.subject, envelope.traceparent = subject, traceparent
    raw = envelope.to_structured()
    expected = _package_reads(raw)
    import isles.events
    monkeypatch.setattr(isles.events._JSON, "read", lambda *a: pytest.fail("took the package's path"))
    assert Envelope.from_structured(raw) == expected == envelope


@pytest.mark.parametrize("change", [
    {"data": "a plain string"},                       # data the package hands back as text
    {"comexampleother": "x"},                         # an extension isles does not write
    {"time": "2026-11-29T10:00:00"},                  # no time zone
    {"entityversion": 3.5},                           # an odd value
    {"datacontenttype": "text/plain", "data": "x"},   # another content type
])
def test_structured_json_isles_does_not_write_is_read_by_the_package(change):
    envelope = Envelope.wrap(toy_shop.ItemUpdated(item_id="i-1", name="bolt", price=3), source="/shop/catalog",
                             key="i-1", version=2)
    raw = orjson.dumps({**orjson.loads(envelope.to_structured()), **change})
    try:
        expected = _package_reads(raw)
    except Exception as exc:  # whatever the package refuses, we refuse the same way
        with pytest.raises(type(exc)):
            Envelope.from_structured(raw)
        return
    assert Envelope.from_structured(raw) == expected


def test_the_relay_reads_outbox_columns_in_table_order():
    """``envelope_from_row`` reads an outbox row by position."""
    from sqlalchemy import MetaData

    from isles.outbox import SENT_COLUMNS as _SENT_COLUMNS
    from isles.tables import install
    columns = [c.name for c in install(MetaData()).outbox.columns]
    assert columns[:len(_SENT_COLUMNS) - 1] == list(_SENT_COLUMNS[:-1]) and "attempts" in columns
