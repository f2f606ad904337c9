"""The Kafka transport (aiokafka): one topic per publishing service, consumer groups per consuming service.

Why it is built this way:

* **Wire format.** Every event is a Kafka record in CloudEvents *binary content mode* (``ce_*``
  headers, ``content-type``, JSON data as the value) made by the ``cloudevents`` package's Kafka
  binding. The record key is the envelope's ``partitionkey`` (the entity id), so all events of an
  entity land in one partition and Kafka keeps them in order.
* **Producer.** Idempotent (``enable_idempotence=True``, ``acks=all``). ``submit`` puts a relay
  batch's records into one Kafka batch per partition (up to ``ISLES_KAFKA_MAX_BATCH_BYTES``) and
  hands them to aiokafka; the awaitable it returns resolves once every record is acknowledged by
  the in-sync replicas, and only then does the relay mark outbox rows published. aiokafka keeps at
  most one batch in flight per partition, so neither retries nor the next relay batch can reorder
  a key.
* **Consumer.** One ``AIOKafkaConsumer`` per consuming service (group id = service name), manual
  commits only. Records of one partition are delivered in offset order (those of one fetch in one
  ``deliver`` call, which the consumer commits in one transaction); partitions of
  a fetch proceed concurrently. An offset is committed only after ``deliver`` returned (its inbox
  transaction committed). When ``deliver`` raises, the partition is rewound to that record and paused
  for a backoff: the record and every later record of that partition (so every later event of the
  key) come again, nothing overtakes it. A rebalance waits for the batch in flight to finish, so a
  partition is never processed by two members of a group at once.
* **Topics** are created at ``start`` (and on first publish to a new topic) with
  ``ISLES_KAFKA_PARTITIONS`` partitions. An existing topic with another partition count is an error:
  the key-to-partition mapping, and with it per-key order, depends on that count.
* **Records without CloudEvents headers** (written by some other producer) are never skipped
  silently. With no ``on_poison`` handler the partition stops at such a record and an error naming
  the topic, partition and offset is logged on every retry until an operator acts; an ``on_poison``
  handler may instead store or forward it, and the offset moves on once the handler returns.

The test broker (tansu) rejects InitProducerId v0, the only version aiokafka sends; Kafka has had v3
since 2.5. :func:`_support_init_producer_id_v3` teaches aiokafka v3, and aiokafka picks the newest
version both sides support, so older brokers still get v0.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import re
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from aiokafka.partitioner import murmur2
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import ConsumerRecord
from cloudevents.core.bindings import kafka as ce_kafka
from cloudevents.core.formats.json import JSONFormat

from isles.backoff import backoff_delay
from isles.config import check_broker_list
from isles.errors import ConfigurationError, EventError, IslesError
from isles.events import Envelope, rfc3339
from isles.tasks import cancel_and_wait
from isles.transport.base import Deliver, Transport, settled

log = logging.getLogger("isles.transport.kafka")

#: ``on_poison(group, record, error)``: store or forward a record that is not an isles CloudEvent.
PoisonHandler = Callable[[str, ConsumerRecord, "PoisonMessage"], Awaitable[None]]


class BrokerUnavailable(IslesError):
    """The Kafka brokers cannot be reached."""


class TopicMismatch(ConfigurationError):
    """An existing topic does not have the configured partition count."""


class PoisonMessage(EventError):
    """A record that is not a CloudEvent isles can read (e.g. no ``ce_*`` headers)."""


class TransportNotRunning(RuntimeError):
    pass


class _RawJSON(JSONFormat):
    """JSON format that hands the data back as the exact bytes received (no parse, no re-encode)."""

    def read_data(self, body: bytes, datacontenttype: str | None) -> Any:
        return bytes(body) if body else None


_READ_FORMAT = _RawJSON()


def mask_brokers(brokers: str) -> str:
    """Broker list as text with any ``user:password@`` credentials masked."""
    return re.sub(r"([^,/@:]+):[^@,]*@", r"\1:***@", brokers)


@dataclass(frozen=True)
class KafkaSettings:
    """Connection and tuning settings; :meth:`from_env` reads the seeds' variable names."""

    brokers: str
    client_id: str = "isles"
    partitions: int = 6
    replication_factor: int = 1
    linger_ms: int = 2
    # A partition has one produce request in flight at a time, so a relay batch split into many
    # small Kafka batches waits a round trip for each (aiokafka's 16 KiB default held the relay
    # to half its speed). Brokers take 1 MiB by default (message.max.bytes).
    max_batch_bytes: int = 256 * 1024
    request_timeout_ms: int = 30000
    session_timeout_ms: int = 10000
    max_poll_records: int = 500
    # How long the broker may hold a fetch that finds no data. Kafka answers as soon as one byte is
    # there, so there it only paces an idle consumer: 1000/wait fetch rounds a second per consumer
    # group. Those rounds are not free: aiokafka parses each in Python, and three consuming services
    # idle at 10 ms used 12-13% of a core here (3% at 100 ms; bench/RESULTS.md, 2026-12-06 late).
    # Some Kafka-protocol brokers (tansu, the one the tests use) hold every fetch for the full wait,
    # so there it is also the latency floor: at 20 ms p99 was about 40 ms at 200 events/s. 10 ms
    # keeps that floor low; on a real Kafka cluster, where it costs no latency, raise it
    # (ISLES_KAFKA_FETCH_MAX_WAIT_MS=100 or more) to give the idle CPU back. Kafka's own default
    # (500 ms) would make an event wait up to half a second on brokers like tansu.
    fetch_max_wait_ms: int = 10
    retry_base: float = 0.1   # seconds before a failed partition is retried (exponential, jittered)
    retry_cap: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "KafkaSettings":
        brokers = (env.get("KAFKA_BROKERS") or "").strip()
        if not brokers:
            raise ConfigurationError("KAFKA_BROKERS is empty", fix="set KAFKA_BROKERS=host:port[,host:port...]")
        check_broker_list(brokers, "KAFKA_BROKERS")
        return cls(
            brokers=brokers,
            client_id=env.get("KAFKA_CLIENT_ID") or "isles",
            partitions=_int_setting(env, "ISLES_KAFKA_PARTITIONS", 6),
            replication_factor=_int_setting(env, "ISLES_KAFKA_REPLICATION_FACTOR", 1),
            linger_ms=_int_setting(env, "ISLES_KAFKA_LINGER_MS", 2, minimum=0),
            max_batch_bytes=_int_setting(env, "ISLES_KAFKA_MAX_BATCH_BYTES", 256 * 1024, minimum=1024),
            session_timeout_ms=_int_setting(env, "ISLES_KAFKA_SESSION_TIMEOUT_MS", 10000),
            fetch_max_wait_ms=_int_setting(env, "ISLES_KAFKA_FETCH_MAX_WAIT_MS", 10),
        )

    @property
    def bootstrap(self) -> list[str]:
        return [b.strip().removeprefix("kafka://") for b in self.brokers.split(",") if b.strip()]


def _int_setting(env: Mapping[str, str], name: str, default: int, *, minimum: int = 1) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number >= {minimum}",
                                 fix=f"set {name} to a number like {default}, or unset it")
    return value


# -- wire format --------------------------------------------------------------------------------------
def to_record(envelope: Envelope) -> ce_kafka.KafkaMessage:
    """The envelope as a Kafka record in CloudEvents binary content mode.

    The same headers ``cloudevents``' ``to_binary`` writes (``ce_<attribute>``, ``content-type``)
    for the attributes of :meth:`Envelope.attributes`, built directly: the relay calls this once
    per event, and the generic path costs several times more. ``tests/transport/test_wire.py``
    holds the two equal.
    """
    e = envelope
    headers = {"ce_id": e.id.encode(), "ce_source": e.source.encode(), "ce_type": e.type.encode(),
               "ce_specversion": e.specversion.encode(), "ce_time": rfc3339(e.time).encode(),
               "content-type": e.datacontenttype.encode(), "ce_partitionkey": e.partitionkey.encode(),
               "ce_dataversion": b"%d" % e.dataversion}
    if e.subject is not None:
        headers["ce_subject"] = e.subject.encode()
    if e.entityversion is not None:
        headers["ce_entityversion"] = b"%d" % e.entityversion
    if e.traceparent is not None:
        headers["ce_traceparent"] = e.traceparent.encode()
    return ce_kafka.KafkaMessage(headers=headers, key=e.partitionkey, value=e.data)


def from_record(record: ConsumerRecord) -> Envelope:
    """Read a consumed record; a record that is not a CloudEvent raises :class:`PoisonMessage`."""
    try:
        # What isles writes is read directly, in one pass over the headers (the binding costs ~25 us
        # an event); anything else goes through the cloudevents binding, which also says what is wrong.
        attrs: dict[str, Any] = {}
        for name, value in record.headers or ():
            if name.startswith("ce_"):
                attrs[name[3:]] = bytes(value).decode()
            elif name == "content-type":
                attrs["datacontenttype"] = bytes(value).decode()
        plain = Envelope.from_plain_attributes(attrs, record.value or b"") if "specversion" in attrs else None
        if plain is not None:
            return plain
    except (UnicodeDecodeError, EventError):
        pass  # the binding below reads it again and says what is wrong
    where = f"record {record.topic}[{record.partition}]@{record.offset}"
    headers = {k: bytes(v) for k, v in (record.headers or ())}
    if not any(k.lower().startswith(ce_kafka.CE_PREFIX) for k in headers):
        raise PoisonMessage(f"{where} has no CloudEvents (ce_*) headers",
                            fix="publish it through isles (CloudEvents binary mode), or give the Kafka transport "
                                "an on_poison handler that stores such records; then the partition moves on")
    try:
        event = ce_kafka.from_binary(ce_kafka.KafkaMessage(headers, record.key, record.value or b""), _READ_FORMAT)
        return Envelope.from_cloudevent(event)
    except EventError as exc:
        raise PoisonMessage(f"{where} is not a usable isles event: {exc.problem}", fix=exc.fix) from None
    except Exception as exc:
        raise PoisonMessage(f"{where} is not a valid CloudEvent: {type(exc).__name__}: {exc}",
                            fix="fix the producer; give the transport an on_poison handler to move past it") from None


# -- the transport -------------------------------------------------------------------------------------
class KafkaTransport(Transport):
    """Kafka over aiokafka; see the module docstring."""

    name = "kafka"
    delivers_synchronously = False

    def __init__(self, settings: KafkaSettings, *, on_poison: PoisonHandler | None = None):
        _support_init_producer_id_v3()
        self.settings = settings
        self.on_poison = on_poison
        self._subscriptions: dict[str, tuple[list[str], Deliver]] = {}
        self._admin: AIOKafkaAdminClient | None = None
        self._producer: AIOKafkaProducer | None = None
        self._consumers: list[_GroupConsumer] = []
        self._ready_topics: set[str] = set()
        self._topic_lock = asyncio.Lock()

    @classmethod
    def from_env(cls, env: Mapping[str, str], **kwargs: Any) -> "KafkaTransport":
        return cls(KafkaSettings.from_env(env), **kwargs)

    def describe(self) -> str:
        return f"kafka ({mask_brokers(self.settings.brokers)}, client id {self.settings.client_id})"

    def subscribe(self, group: str, topics: Sequence[str], deliver: Deliver) -> None:
        if group in self._subscriptions:
            raise ValueError(f"consumer group {group!r} is already subscribed")
        if self._producer is not None:
            raise RuntimeError("subscribe() must be called before start()")
        self._subscriptions[group] = (list(topics), deliver)

    # -- lifecycle ------------------------------------------------------------------------------------
    def _unreachable(self, exc: BaseException) -> BrokerUnavailable:
        services = ", ".join(sorted(self._subscriptions)) or None
        return BrokerUnavailable(
            f"Kafka brokers {mask_brokers(self.settings.brokers)} cannot be reached: {type(exc).__name__}: {exc}",
            service=services,
            fix="start the broker, or correct KAFKA_BROKERS (host:port[,host:port]); unset it to use the "
                "in-process transport")

    async def start(self) -> None:
        if self._producer is not None:
            return
        s = self.settings
        admin = AIOKafkaAdminClient(bootstrap_servers=s.bootstrap, client_id=s.client_id,
                                    request_timeout_ms=s.request_timeout_ms)
        try:
            await admin.start()
        except (KafkaError, OSError) as exc:
            await admin.close()
            raise self._unreachable(exc) from None
        self._admin = admin
        try:
            topics = sorted({t for topics, _ in self._subscriptions.values() for t in topics})
            await self._ensure_topics(topics)
            producer = AIOKafkaProducer(bootstrap_servers=s.bootstrap, client_id=s.client_id,
                                        enable_idempotence=True, acks="all", linger_ms=s.linger_ms,
                                        request_timeout_ms=s.request_timeout_ms, max_batch_size=s.max_batch_bytes)
            try:
                await producer.start()
            except (KafkaError, OSError) as exc:
                await producer.stop()
                raise self._unreachable(exc) from None
            self._producer = producer
            for group, (topics, deliver) in self._subscriptions.items():
                consumer = _GroupConsumer(self, group, topics, deliver)
                self._consumers.append(consumer)
                await consumer.start()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await consumer.stop()
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:  # unsent records stay unpublished in the outbox
                log.warning("kafka producer did not stop cleanly: %s", exc)
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()
        self._ready_topics.clear()

    # -- topics ---------------------------------------------------------------------------------------
    async def ensure_topics(self, topics: Sequence[str]) -> None:
        """Create missing topics; raise :class:`TopicMismatch` for a wrong partition count."""
        await self._ensure_topics(topics)

    async def _ensure_topics(self, topics: Sequence[str]) -> None:
        wanted = [t for t in dict.fromkeys(topics) if t not in self._ready_topics]
        if not wanted:
            return
        if self._admin is None:
            raise TransportNotRunning("the Kafka transport is not started")
        async with self._topic_lock:
            wanted = [t for t in wanted if t not in self._ready_topics]
            if not wanted:
                return
            s = self.settings
            # List first: asking for metadata of a missing topic makes some brokers auto-create it.
            existing = set(await self._admin.list_topics())
            missing = [t for t in wanted if t not in existing]
            if missing:
                response = await self._admin.create_topics(
                    [NewTopic(t, s.partitions, s.replication_factor) for t in missing])
                for topic_error in response.topic_errors:
                    topic, code = topic_error[0], topic_error[1]
                    if code not in (0, 36):  # 36: created meanwhile by another process
                        raise ConfigurationError(
                            f"Kafka topic {topic!r} could not be created (error code {code}: {topic_error[2]})",
                            fix="create it by hand with ISLES_KAFKA_PARTITIONS partitions, or grant this client "
                                "the right to create topics")
            for described in await self._admin.describe_topics(wanted):
                count = len(described.get("partitions") or ())
                if count != s.partitions:
                    raise TopicMismatch(
                        f"Kafka topic {described['topic']!r} has {count} partitions, but ISLES_KAFKA_PARTITIONS "
                        f"is {s.partitions}",
                        fix=f"set ISLES_KAFKA_PARTITIONS={count} to use the topic as it is (changing the count of "
                            f"a topic in use moves keys between partitions and breaks per-key order)")
            self._ready_topics.update(wanted)

    # -- publishing -----------------------------------------------------------------------------------
    async def publish(self, topic: str, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        """Send ``envelopes`` in order and wait until each is acknowledged (or failed)."""
        return await (await self.submit(topic, envelopes))

    async def submit(self, topic: str, envelopes: Sequence[Envelope]) -> Awaitable[list[BaseException | None]]:
        """Put ``envelopes`` into Kafka batches and send them; the awaitable gives each one's outcome.

        Records are put into batches here, one open batch per partition, instead of one ``send()``
        each: a record then costs its partition (aiokafka's default partitioner, as ``send()``
        uses) and an append; the per-record path, with its future and metadata checks, cost about
        twice as much. A partition has one produce request in flight at a time, so batches handed
        over later cannot overtake these.
        """
        producer = self._producer
        if producer is None:
            raise TransportNotRunning("the Kafka transport is not started")
        await self._ensure_topics([topic])
        if not envelopes:
            return settled([])
        partitions = sorted(await producer.partitions_for(topic))
        open_batches: dict[int, BatchBuilder] = {}
        submitted: list[tuple[BatchBuilder, asyncio.Future[Any]]] = []
        placed: list[BatchBuilder | BaseException] = []
        failed_keys: set[str] = set()

        async def send_batch(partition: int) -> None:
            batch = open_batches.pop(partition)
            batch.close()  # complete: no linger waiting for more
            submitted.append((batch, await producer.send_batch(batch, topic, partition=partition)))

        try:
            for envelope in envelopes:
                key = envelope.partitionkey
                if key in failed_keys:
                    placed.append(RuntimeError(f"held back: an earlier event of key {key} was not accepted"))
                    continue
                message = to_record(envelope)
                key_bytes, headers = key.encode(), list(message.headers.items())
                partition = partitions[_key_hash(key_bytes) % len(partitions)]
                batch = open_batches.get(partition)
                if batch is None or batch.append(key=key_bytes, value=message.value, timestamp=None,
                                                 headers=headers) is None:
                    if batch is not None:  # full: send it, start the next
                        await send_batch(partition)
                    batch = open_batches[partition] = producer.create_batch()
                    if batch.append(key=key_bytes, value=message.value, timestamp=None, headers=headers) is None:
                        del open_batches[partition]
                        failed_keys.add(key)
                        placed.append(MessageSizeTooLargeError(
                            f"event {envelope.id} is larger than ISLES_KAFKA_MAX_BATCH_BYTES "
                            f"({self.settings.max_batch_bytes}) allows"))
                        continue
                placed.append(batch)
            for partition in list(open_batches):
                await send_batch(partition)
        except BaseException:
            for _, future in submitted:  # still delivered; nobody waits for the outcome
                future.add_done_callback(_consume_outcome)
            raise
        return asyncio.ensure_future(_outcomes(submitted, placed))


@functools.lru_cache(maxsize=65536)
def _key_hash(key: bytes) -> int:
    """The key's partition hash as aiokafka's default partitioner (and Java's) computes it, so that
    other producers of a key agree on its partition. Remembered: aiokafka's murmur2 is pure Python
    (~10 us a key), and the same entities' keys come back again and again."""
    return int(murmur2(key)) & 0x7FFFFFFF


async def _outcomes(submitted: list[tuple[BatchBuilder, asyncio.Future[Any]]],
                    placed: list[BatchBuilder | BaseException]) -> list[BaseException | None]:
    """Each record's outcome: its batch's, or why it was never put into one."""
    outcomes = await asyncio.gather(*(future for _, future in submitted), return_exceptions=True)
    outcome_of = {id(batch): outcome for (batch, _), outcome in zip(submitted, outcomes, strict=True)}
    return [item if isinstance(item, BaseException) else _failure(outcome_of[id(item)]) for item in placed]


def _failure(outcome: Any) -> BaseException | None:
    return outcome if isinstance(outcome, BaseException) else None


def _consume_outcome(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


class _GroupConsumer(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka ships no type information
    """One consuming service's member of its consumer group."""

    def __init__(self, transport: KafkaTransport, group: str, topics: list[str], deliver: Deliver):
        self.transport = transport
        self.group = group
        self.topics = topics
        self.deliver = deliver
        self.consumer: AIOKafkaConsumer | None = None
        self.task: asyncio.Task[Any] | None = None
        self._batch = asyncio.Lock()  # held while a fetched batch is delivered; a rebalance waits for it
        self._failures: dict[TopicPartition, int] = {}
        self._resumes: list[asyncio.TimerHandle] = []

    async def start(self) -> None:
        s = self.transport.settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=s.bootstrap, client_id=f"{s.client_id}-{self.group}", group_id=self.group,
            enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(100, s.session_timeout_ms // 4), max_poll_records=s.max_poll_records,
            request_timeout_ms=s.request_timeout_ms, fetch_max_wait_ms=s.fetch_max_wait_ms)
        consumer.subscribe(self.topics, listener=self)
        try:
            await consumer.start()
        except (KafkaError, OSError) as exc:
            await consumer.stop()
            raise self.transport._unreachable(exc) from None
        self.consumer = consumer
        self.task = asyncio.create_task(self.run(), name=f"isles-kafka-{self.group}")

    async def stop(self) -> None:
        for handle in self._resumes:
            handle.cancel()
        self._resumes.clear()
        if self.task is not None:
            await cancel_and_wait([self.task])
            self.task = None
        if self.consumer is not None:
            try:
                await self.consumer.stop()
            except Exception as exc:
                log.warning("kafka consumer of '%s' did not stop cleanly: %s", self.group, exc)
            self.consumer = None

    # rebalance listener: wait until the batch in flight is delivered and committed
    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self._batch:
            for tp in revoked:
                self._failures.pop(tp, None)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        pass

    async def run(self) -> None:
        consumer = self.consumer
        assert consumer is not None
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=500)
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:
                log.warning("service '%s': kafka fetch failed (retrying): %s", self.group, exc)
                await asyncio.sleep(1.0)
                continue
            if not batch:
                continue
            async with self._batch:
                assigned = consumer.assignment()
                done = await asyncio.gather(*(self._deliver_partition(tp, records)
                                              for tp, records in batch.items() if tp in assigned))
                offsets = {tp: offset for tp, offset in done if offset is not None}
                if offsets:
                    try:
                        await consumer.commit(offsets)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:  # e.g. rebalanced meanwhile: the new owner redelivers, the inbox dedups
                        log.warning("service '%s': kafka offset commit failed (events will be redelivered): %s",
                                    self.group, exc)

    async def _deliver_partition(self, tp: TopicPartition,
                                 records: list[ConsumerRecord]) -> tuple[TopicPartition, int | None]:
        """Deliver records in order; returns the offset to commit (after the last delivered record).

        The records up to the next poison message (or the end) go to ``deliver`` in one call.
        """
        next_offset: int | None = None
        pending = records
        while pending:
            envelopes: list[Envelope] = []
            poison: PoisonMessage | None = None
            for record in pending:
                try:
                    envelopes.append(from_record(record))
                except PoisonMessage as exc:
                    poison = exc
                    break
            rewind_to = pending[0]
            try:
                if envelopes:
                    await self.deliver(envelopes)
                    next_offset = pending[len(envelopes) - 1].offset + 1
                if poison is not None:
                    rewind_to = pending[len(envelopes)]
                    if self.transport.on_poison is None:
                        raise poison
                    await self.transport.on_poison(self.group, rewind_to, poison)
                    next_offset = rewind_to.offset + 1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._retry_later(tp, rewind_to, exc)
                return tp, next_offset
            self._failures.pop(tp, None)
            pending = pending[len(envelopes) + (poison is not None):]
        return tp, next_offset

    def _retry_later(self, tp: TopicPartition, record: ConsumerRecord, exc: Exception) -> None:
        """Rewind the partition to ``record`` and pause it for a backoff (the key's order is kept)."""
        consumer = self.consumer
        assert consumer is not None
        attempts = self._failures[tp] = self._failures.get(tp, 0) + 1
        s = self.transport.settings
        delay = backoff_delay(attempts, base=s.retry_base, cap=s.retry_cap)
        level = logging.ERROR if isinstance(exc, PoisonMessage) else logging.WARNING
        log.log(level, "service '%s': delivery of %s[%d]@%d failed (attempt %d, again in %.2fs): %s",
                self.group, tp.topic, tp.partition, record.offset, attempts, delay, exc)
        consumer.seek(tp, record.offset)
        consumer.pause(tp)
        handle = asyncio.get_running_loop().call_later(delay, self._resume, tp)
        self._resumes = [h for h in self._resumes if not h.cancelled()][-1000:] + [handle]

    def _resume(self, tp: TopicPartition) -> None:
        consumer = self.consumer
        if consumer is not None and tp in consumer.assignment():
            consumer.resume(tp)


# -- aiokafka compatibility: InitProducerId v3 ----------------------------------------------------------
_PATCHED = False


def _support_init_producer_id_v3() -> None:
    """Let aiokafka's idempotent producer send InitProducerId v3 (producer id/epoch -1) when the broker has it."""
    global _PATCHED
    if _PATCHED:
        return
    import aiokafka.producer.sender as sender
    from aiokafka.protocol.api import Request, RequestStruct, Response
    from aiokafka.protocol.transaction import InitProducerIdRequest_v0
    from aiokafka.protocol.types import CompactString, Int16, Int32, Int64, Schema, TaggedFields

    class InitProducerIdResponse_v3(Response):  # type: ignore[misc]  # aiokafka's protocol classes are untyped
        API_KEY = 22
        API_VERSION = 3
        SCHEMA = Schema(("throttle_time_ms", Int32), ("error_code", Int16), ("producer_id", Int64),
                        ("producer_epoch", Int16), ("tags", TaggedFields))

    class InitProducerIdRequest_v3(RequestStruct):  # type: ignore[misc]  # (untyped, as above)
        FLEXIBLE_VERSION = True
        API_KEY = 22
        API_VERSION = 3
        RESPONSE_TYPE = InitProducerIdResponse_v3
        SCHEMA = Schema(("transactional_id", CompactString("utf-8")), ("transaction_timeout_ms", Int32),
                        ("producer_id", Int64), ("producer_epoch", Int16), ("tags", TaggedFields))

    # (untyped, as above)
    class InitProducerIdRequest(Request[InitProducerIdRequest_v0 | InitProducerIdRequest_v3]):  # type: ignore[misc]
        API_KEY = 22

        def __init__(self, transactional_id: str | None, transaction_timeout_ms: int):
            self._transactional_id = transactional_id
            self._transaction_timeout_ms = transaction_timeout_ms

        def build(self, request_struct_class: Any) -> Any:
            if request_struct_class.API_VERSION >= 3:
                return request_struct_class(self._transactional_id, self._transaction_timeout_ms, -1, -1, {})
            return request_struct_class(self._transactional_id, self._transaction_timeout_ms)

    sender.InitProducerIdRequest = InitProducerIdRequest
    _PATCHED = True


__all__ = ["KafkaTransport", "KafkaSettings", "BrokerUnavailable", "TopicMismatch", "PoisonMessage",
           "PoisonHandler", "to_record", "from_record", "mask_brokers"]
