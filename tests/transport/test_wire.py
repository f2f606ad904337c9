"""Wire formats without a broker: CloudEvents Kafka binary mode and the Redis entry, both ways."""
from __future__ import annotations

import uuid

import pytest
from aiokafka.structs import ConsumerRecord
from transport_harness import envelope

from isles.transport.kafka import PoisonMessage, from_record, mask_brokers, to_record
from isles.transport.redis_streams import PoisonEntry, decode_entry, xadd_command


def _record(headers, key, value) -> ConsumerRecord:
    return ConsumerRecord(topic="t.s.events", partition=2, offset=7, timestamp=0, timestamp_type=0, key=key,
                          value=value, checksum=None, serialized_key_size=0, serialized_value_size=0,
                          headers=tuple(headers))


def test_kafka_binary_mode_round_trip():
    sent = envelope("mes", "P-12345", 3)
    message = to_record(sent)
    assert message.key == "P-12345"
    assert message.headers["ce_type"] == b"mes.svc.thing.changed"
    assert message.headers["content-type"] == b"application/json"
    assert message.value == sent.data  # the JSON data as the record value, byte for byte
    got = from_record(_record(message.headers.items(), b"P-12345", message.value))
    assert (got.id, got.type, got.source, got.partitionkey, got.entityversion, got.data, got.traceparent) == \
        (sent.id, sent.type, sent.source, sent.partitionkey, sent.entityversion, sent.data, sent.traceparent)


def test_kafka_record_is_what_the_cloudevents_binding_writes():
    from cloudevents.core.bindings import kafka as ce_kafka
    from cloudevents.core.formats.json import JSONFormat
    sent = envelope("mes", "P-7", 4)
    reference = ce_kafka.to_binary(sent.to_cloudevent(), JSONFormat())
    assert to_record(sent) == reference  # headers, key and value, byte for byte


def test_kafka_record_without_cloudevents_headers_is_poison():
    with pytest.raises(PoisonMessage) as info:
        from_record(_record([("content-type", b"application/json")], b"k", b'{"a": 1}'))
    assert "t.s.events[2]@7" in str(info.value) and "no CloudEvents" in str(info.value) and info.value.fix


def test_kafka_record_with_broken_cloudevent_is_poison():
    with pytest.raises(PoisonMessage):
        from_record(_record([("ce_id", b"1")], None, b"{}"))  # no source, type, partition key


def test_broker_credentials_are_masked():
    assert mask_brokers("user:secret@h1:9092,h2:9092") == "user:***@h1:9092,h2:9092"


def test_redis_entry_round_trip_and_poison():
    sent = envelope("mes", "P-1", 1)
    got = decode_entry("s", b"1-0", {b"key": b"P-1", b"event": sent.to_structured()})
    assert (got.id, got.partitionkey, got.entityversion, got.data) == (sent.id, "P-1", 1, sent.data)
    with pytest.raises(PoisonEntry) as info:
        decode_entry("s", b"1-0", {b"other": b"x"})
    assert "1-0" in str(info.value) and info.value.fix


def _binding_reads(message) -> object:
    from cloudevents.core.bindings import kafka as ce_kafka

    from isles.events import Envelope
    from isles.transport.kafka import _READ_FORMAT
    return Envelope.from_cloudevent(ce_kafka.from_binary(ce_kafka.KafkaMessage(dict(message.headers), message.key,
                                                                               message.value), _READ_FORMAT))


def test_kafka_records_isles_writes_are_read_directly_as_the_binding_reads_them(monkeypatch):
    import isles.transport.kafka as kafka
    sent = envelope("mes", "P-9", 5)
    message = to_record(sent)
    expected = _binding_reads(message)
    monkeypatch.setattr(kafka.ce_kafka, "from_binary", lambda *a: pytest.fail("took the binding's path"))
    assert from_record(_record(message.headers.items(), b"P-9", message.value)) == expected == sent


def test_kafka_records_with_other_attributes_are_read_by_the_binding(monkeypatch):
    import isles.transport.kafka as kafka
    sent = envelope("mes", "P-9", 5)
    message = to_record(sent)
    message.headers["ce_comexampleother"] = b"x"
    expected = _binding_reads(message)
    calls = []
    from_binary = kafka.ce_kafka.from_binary
    monkeypatch.setattr(kafka.ce_kafka, "from_binary", lambda *a: calls.append(1) or from_binary(*a))
    assert from_record(_record(message.headers.items(), b"P-9", message.value)) == expected
    assert calls == [1]


@pytest.mark.parametrize("event", [b'{"a":1}', "{\"name\":\"bolt \u00fc\"}".encode(), b"x" * 100_000])
def test_redis_xadd_is_written_as_redis_py_writes_it(event):
    from redis.asyncio.connection import Connection
    reference = b"".join(Connection().pack_command("XADD", b"mes.material.events:3", "MAXLEN", "~", 1_000_000, "*",
                                                   "key", b"P-12", "event", event))
    assert xadd_command(b"mes.material.events:3", b"1000000", b"P-12", event) == reference



def test_a_key_goes_to_the_partition_every_kafka_producer_picks():
    """The transport places records itself; a key must land where aiokafka's (and Java's) default
    partitioner puts it, or another producer of the same key would break its order."""
    from aiokafka.partitioner import DefaultPartitioner

    from isles.transport.kafka import _key_hash
    default = DefaultPartitioner()
    for count in (1, 3, 6, 12):
        partitions = list(range(count))
        for n in range(300):
            key = (str(uuid.UUID(int=n * 7919)) if n % 2 else f"key-{n}").encode()
            assert partitions[_key_hash(key) % count] == default(key, partitions, partitions)
            assert partitions[_key_hash(key) % count] == default(key, partitions, partitions)  # remembered
