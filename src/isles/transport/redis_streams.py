"""The Redis Streams transport (redis-py asyncio): streams per publishing service, consumer groups per consumer.

Why it is built this way:

* **Streams and shards.** A service's events go to ``{system}.{service}.events`` (with
  ``ISLES_REDIS_SHARDS=1``) or to ``{topic}:{n}`` for ``n`` in ``0..shards-1``, the shard being
  ``crc32(partitionkey) % shards`` (the same hash as the in-process transport). Shards are to Redis
  what partitions are to Kafka: the unit of order and of parallelism. Entries are written with
  ``XADD ... MAXLEN ~ ISLES_REDIS_MAXLEN``, one round trip per relay batch, as CloudEvents
  structured JSON (field ``event``) plus the key (field ``key``). The bound must exceed the
  largest backlog a consumer group may build up: Redis trims by length, not by acknowledgement.
* **Per-key order: one owner per shard.** A consumer group spreads a stream's entries over its
  members, which would let two members handle two events of one key at once. So each member
  only reads the shards it holds a *lease* on (``SET NX PX`` on ``isles:lease:{group}:{stream}``,
  renewed every third of its lifetime; a member takes no more than its fair share
  ``ceil(shards / live members)``, so replicas split the work). Within a shard the owner delivers
  entries in stream order (those of one read in one ``deliver`` call) and ``XACK``\\ s them only
  after ``deliver`` returned.
  When ``deliver`` raises, the entry stays pending and the owner backs off; it then re-reads its
  pending entries (``XREADGROUP ... 0``) before any new one, so nothing of that shard (hence of that
  key) overtakes it.
* **Dead consumers.** A member that dies stops renewing its leases; after the lease expires another
  member takes the shard and first moves every entry the dead member left pending to itself with
  ``XAUTOCLAIM`` (the lease, not an idle guess, says the old owner is gone), delivers them in order,
  then continues with new entries. The inbox makes the redelivered ones no-ops.
* **Bad entries** (no ``event`` field, not a CloudEvent) are never skipped silently: with no
  ``on_poison`` handler the shard stops there and logs an error naming stream and entry id on every
  retry; an ``on_poison`` handler may store the entry, after which it is acknowledged.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import socket
import time
import uuid
import zlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Mapping, Sequence, cast

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from isles.backoff import backoff_delay
from isles.config import check_redis_url, mask_url
from isles.errors import ConfigurationError, EventError, IslesError
from isles.events import Envelope
from isles.tasks import ask_then_cancel
from isles.transport.base import Deliver, Transport

log = logging.getLogger("isles.transport.redis")

#: ``on_poison(group, stream, entry_id, fields, error)``: store or forward an entry that is not an isles event.
PoisonHandler = Callable[[str, str, bytes, dict[bytes, bytes], "PoisonEntry"], Awaitable[None]]

#: XREADGROUP's answer on this client (RESP2, responses not decoded): [(stream, [(entry id, fields or None
#: once trimmed away)])]. redis-py's own type covers every protocol and decoding setting.
_StreamRead = list[tuple[bytes, list[tuple[bytes, dict[bytes, bytes] | None]]]]

# Renew / release a lease only if we still hold it.
_RENEW = ("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) "
          "else return 0 end")
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"


class RedisUnavailable(IslesError):
    """The Redis server cannot be reached."""


class PoisonEntry(EventError):
    """A stream entry that is not an isles CloudEvent."""


#: seconds a publish may take (one round trip for the whole batch) before its connection is dropped
PUBLISH_TIMEOUT = 30.0


class TransportNotRunning(RuntimeError):
    pass


@dataclass(frozen=True)
class RedisStreamsSettings:
    url: str
    shards: int = 4
    maxlen: int = 1_000_000
    lease_ms: int = 10_000
    block_ms: int = 1_000
    batch: int = 100
    retry_base: float = 0.1
    retry_cap: float = 5.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "RedisStreamsSettings":
        url = (env.get("REDIS_URL") or "").strip()
        if not url:
            raise ConfigurationError("REDIS_URL is not set", fix="set REDIS_URL=redis://host:6379/0")
        check_redis_url(url, "REDIS_URL")
        return cls(url=url, shards=_int(env, "ISLES_REDIS_SHARDS", 4),
                   maxlen=_int(env, "ISLES_REDIS_MAXLEN", 1_000_000),
                   lease_ms=_int(env, "ISLES_REDIS_LEASE_MS", 10_000))


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number >= 1",
                                 fix=f"set {name} like {default}, or unset it")
    return value


def shard_of(key: str, shards: int) -> int:
    return zlib.crc32(key.encode()) % shards


class RedisStreamsTransport(Transport):
    """Redis Streams; see the module docstring."""

    name = "redis"
    delivers_synchronously = False

    def __init__(self, settings: RedisStreamsSettings, *, on_poison: PoisonHandler | None = None):
        self.settings = settings
        self.on_poison = on_poison
        self.consumer_name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._subscriptions: dict[str, tuple[list[str], Deliver]] = {}
        self._redis: aioredis.Redis | None = None
        self._groups: list[_GroupMember] = []

    @classmethod
    def from_env(cls, env: Mapping[str, str], **kwargs: Any) -> "RedisStreamsTransport":
        return cls(RedisStreamsSettings.from_env(env), **kwargs)

    def describe(self) -> str:
        return f"redis streams ({mask_url(self.settings.url)}, {self.settings.shards} shard(s) per topic)"

    def streams(self, topic: str) -> list[str]:
        n = self.settings.shards
        return [topic] if n == 1 else [f"{topic}:{i}" for i in range(n)]

    def stream_for(self, topic: str, key: str) -> str:
        n = self.settings.shards
        return topic if n == 1 else f"{topic}:{shard_of(key, n)}"

    def subscribe(self, group: str, topics: Sequence[str], deliver: Deliver) -> None:
        if group in self._subscriptions:
            raise ValueError(f"consumer group {group!r} is already subscribed")
        if self._redis is not None:
            raise RuntimeError("subscribe() must be called before start()")
        self._subscriptions[group] = (list(topics), deliver)

    async def start(self) -> None:
        if self._redis is not None:
            return
        client = aioredis.from_url(self.settings.url, decode_responses=False, health_check_interval=10)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            await client.aclose()
            raise RedisUnavailable(
                f"Redis at {mask_url(self.settings.url)} cannot be reached: {type(exc).__name__}: {exc}",
                service=", ".join(sorted(self._subscriptions)) or None,
                fix="start Redis or correct REDIS_URL; unset ISLES_TRANSPORT to use the in-process transport") from None
        self._redis = client
        try:
            for group, (topics, deliver) in self._subscriptions.items():
                member = _GroupMember(self, group, [s for t in topics for s in self.streams(t)], deliver)
                await member.start()
                self._groups.append(member)
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        groups, self._groups = self._groups, []
        for member in groups:
            await member.stop()
        client, self._redis = self._redis, None
        if client is not None:
            await client.aclose()

    async def publish(self, topic: str, envelopes: Sequence[Envelope]) -> list[BaseException | None]:
        """XADD each envelope to its shard's stream, all in one round trip.

        The commands are written here (``xadd_command``) and sent on one pooled connection, its
        replies read back in order: redis-py's pipeline spends about four times as long packing
        and parsing them, and that was most of the relay's time. A reply that is an error fails
        its envelope (and holds back the later ones of its key); a broken connection fails the
        call (the relay sends the batch again; inboxes absorb what did arrive).
        """
        client = self._redis
        if client is None:
            raise TransportNotRunning("the Redis Streams transport is not started")
        if not envelopes:
            return []
        maxlen = b"%d" % self.settings.maxlen
        command = b"".join(xadd_command(self.stream_for(topic, e.partitionkey).encode(), maxlen,
                                        e.partitionkey.encode(), e.to_structured()) for e in envelopes)
        pool = client.connection_pool
        # redis-py's deprecation decorator hides get_connection's annotations
        connection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await connection.send_packed_command(command, check_health=False)
                replies: list[Any] = []
                for _ in envelopes:
                    try:  # the call's timeout bounds the reads: none of its own for each
                        replies.append(await connection.read_response(timeout=math.inf))
                    except ResponseError as exc:
                        replies.append(exc)
        except BaseException:
            await connection.disconnect()  # replies may be left unread: the connection cannot be reused
            raise
        finally:
            await pool.release(connection)
        results: list[BaseException | None] = []
        failed: set[str] = set()
        for envelope, reply in zip(envelopes, replies, strict=True):
            if envelope.partitionkey in failed:
                results.append(RuntimeError(f"held back: an earlier event of key {envelope.partitionkey} failed"))
            elif isinstance(reply, BaseException):
                failed.add(envelope.partitionkey)
                results.append(reply)
            else:
                results.append(None)
        return results


def xadd_command(stream: bytes, maxlen: bytes, key: bytes, event: bytes) -> bytes:
    """``XADD stream MAXLEN ~ maxlen * key <key> event <event>`` in the Redis protocol (RESP)."""
    return b"*10\r\n$4\r\nXADD\r\n$%d\r\n%b\r\n$6\r\nMAXLEN\r\n$1\r\n~\r\n$%d\r\n%b\r\n$1\r\n*\r\n" \
           b"$3\r\nkey\r\n$%d\r\n%b\r\n$5\r\nevent\r\n$%d\r\n%b\r\n" % (
               len(stream), stream, len(maxlen), maxlen, len(key), key, len(event), event)


def decode_entry(stream: str, entry_id: bytes, fields: dict[bytes, bytes]) -> Envelope:
    raw = fields.get(b"event")
    where = f"entry {entry_id.decode()} of stream {stream}"
    if raw is None:
        raise PoisonEntry(f"{where} has no 'event' field (not written by isles)",
                          fix="publish through isles, or give the Redis transport an on_poison handler")
    try:
        return Envelope.from_structured(raw)
    except EventError as exc:
        raise PoisonEntry(f"{where} is not a usable isles event: {exc.problem}", fix=exc.fix) from None
    except Exception as exc:
        raise PoisonEntry(f"{where} is not a valid CloudEvent: {type(exc).__name__}: {exc}",
                          fix="fix the producer; give the transport an on_poison handler to move past it") from None


class _GroupMember:
    """This process's member of one consumer group: leases shards and delivers their entries."""

    def __init__(self, transport: RedisStreamsTransport, group: str, streams: list[str], deliver: Deliver):
        self.t = transport
        self.group = group
        self.streams = streams
        self.deliver = deliver
        self.owned: dict[str, tuple[asyncio.Task[Any], asyncio.Event]] = {}
        self.task: asyncio.Task[Any] | None = None
        self.stopping = asyncio.Event()
        self.members_key = f"isles:members:{group}:{streams[0].split(':')[0]}"

    @property
    def redis(self) -> aioredis.Redis:
        assert self.t._redis is not None
        return self.t._redis

    def lease_key(self, stream: str) -> str:
        return f"isles:lease:{self.group}:{stream}"

    async def start(self) -> None:
        for stream in self.streams:
            try:
                await self.redis.xgroup_create(stream, self.group, id="0", mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise
        await self._heartbeat()
        self.task = asyncio.create_task(self._coordinate(), name=f"isles-redis-{self.group}")

    async def stop(self) -> None:
        if self.task is not None:
            # Ask first: redis-py can swallow a cancellation that lands inside a command, and a
            # coordinator that missed its cancel would loop forever.
            await self._halt(self.task, self.stopping)
            self.task = None
        owned, self.owned = self.owned, {}
        await asyncio.gather(*(self._halt(task, stop) for task, stop in owned.values()))
        try:
            for stream in owned:
                await self.redis.eval(_RELEASE, 1, self.lease_key(stream), self.t.consumer_name)
            await self.redis.zrem(self.members_key, self.t.consumer_name)
        except (RedisError, OSError):
            pass  # the leases expire on their own

    async def _halt(self, task: asyncio.Task[Any], stop: asyncio.Event) -> None:
        """Stop a loop: let it finish its entry (and leave a blocking read), cancel it if it hangs.

        Cancelling redis-py in the middle of a blocking read can hang, so the loop is asked first.
        """
        await ask_then_cancel(task, stop, grace=self.t.settings.block_ms / 1000 + 0.5)

    async def _heartbeat(self) -> int:
        now = time.time()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self.members_key, {self.t.consumer_name: now})
            pipe.zremrangebyscore(self.members_key, "-inf", now - self.t.settings.lease_ms / 1000)
            pipe.zcard(self.members_key)
            *_, live = await pipe.execute()
        return max(1, int(live))

    async def _coordinate(self) -> None:
        """Renew leases, take free shards up to the fair share, give back extras."""
        interval = self.t.settings.lease_ms / 3000
        while not self.stopping.is_set():
            try:
                live = await self._heartbeat()
                fair = math.ceil(len(self.streams) / live)
                for stream, (task, stop) in list(self.owned.items()):
                    renewed = await self.redis.eval(_RENEW, 1, self.lease_key(stream), self.t.consumer_name,
                                                    self.t.settings.lease_ms)
                    if not renewed or task.done():
                        self.owned.pop(stream, None)
                        if task.done() and not task.cancelled() and task.exception() is not None:
                            log.error("service '%s': the reader of %s failed: %r", self.group, stream,
                                      task.exception())
                        if not renewed:
                            log.warning("service '%s': lost the lease on %s", self.group, stream)
                        await self._halt(task, stop)
                        await self.redis.eval(_RELEASE, 1, self.lease_key(stream), self.t.consumer_name)
                while len(self.owned) > fair:
                    stream = sorted(self.owned)[-1]
                    task, stop = self.owned.pop(stream)
                    await self._halt(task, stop)
                    await self.redis.eval(_RELEASE, 1, self.lease_key(stream), self.t.consumer_name)
                for stream in self.streams:
                    if len(self.owned) >= fair:
                        break
                    if stream in self.owned:
                        continue
                    if await self.redis.set(self.lease_key(stream), self.t.consumer_name, nx=True,
                                            px=self.t.settings.lease_ms):
                        stop = asyncio.Event()
                        task = asyncio.create_task(self._consume(stream, stop),
                                                   name=f"isles-redis-{self.group}-{stream}")
                        self.owned[stream] = (task, stop)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("service '%s': redis coordination failed (retrying): %s", self.group, exc)
            await _sleep_unless(self.stopping, interval)

    async def _deliver_run(self, run: list[tuple[bytes, Envelope]], acked: list[bytes]) -> None:
        """Deliver the decoded entries of ``run`` in one call, then count them as acknowledged."""
        if run:
            await self.deliver([envelope for _, envelope in run])
            acked.extend(entry_id for entry_id, _ in run)
            run.clear()

    async def _consume(self, stream: str, stop: asyncio.Event) -> None:
        """Deliver one shard's entries in order; runs while this member holds the shard's lease."""
        me, s = self.t.consumer_name, self.t.settings
        pending = True   # start with what earlier owners (or we) left unacknowledged
        claimed = False
        failures = 0
        while not stop.is_set():
            try:
                if not claimed:  # the lease says the previous owner is gone: take its pending entries
                    cursor = b"0-0"
                    while True:
                        reply = await self.redis.xautoclaim(stream, self.group, me, min_idle_time=0,
                                                            start_id=cursor, count=500)
                        cursor = reply[0] if reply else b"0-0"
                        if cursor in (b"0-0", "0-0"):
                            break
                    claimed = True
                read_id = "0" if pending else ">"
                read = cast(_StreamRead, await self.redis.xreadgroup(self.group, me, {stream: read_id}, count=s.batch,
                                                                     block=None if pending else s.block_ms))
                entries = read[0][1] if read else []
                if pending and not entries:
                    pending = False
                    continue
                acked: list[bytes] = []
                run: list[tuple[bytes, Envelope]] = []  # decoded entries, delivered in one call
                try:
                    for entry_id, fields in entries:
                        if stop.is_set():
                            run.clear()
                            break
                        if fields is None:  # trimmed away while pending: nothing left to deliver
                            await self._deliver_run(run, acked)
                            acked.append(entry_id)
                            continue
                        try:
                            run.append((entry_id, decode_entry(stream, entry_id, fields)))
                        except PoisonEntry as poison:
                            await self._deliver_run(run, acked)
                            if self.t.on_poison is None:
                                raise
                            await self.t.on_poison(self.group, stream, entry_id, fields, poison)
                            acked.append(entry_id)
                    await self._deliver_run(run, acked)
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    delay = backoff_delay(failures, base=s.retry_base, cap=s.retry_cap)
                    level = logging.ERROR if isinstance(exc, PoisonEntry) else logging.WARNING
                    log.log(level, "service '%s': delivery from %s failed (attempt %d, again in %.2fs): %s",
                            self.group, stream, failures, delay, exc)
                    pending = True
                    if acked:
                        await self.redis.xack(stream, self.group, *acked)
                    await _sleep_unless(stop, delay)
                    continue
                if acked:
                    await self.redis.xack(stream, self.group, *acked)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                log.warning("service '%s': redis read on %s failed (retrying): %s", self.group, stream, exc)
                pending = True
                await _sleep_unless(stop, min(s.retry_cap, 0.5))


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        pass


__all__ = ["RedisStreamsTransport", "RedisStreamsSettings", "RedisUnavailable", "PoisonEntry", "decode_entry",
           "shard_of"]
