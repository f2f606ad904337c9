"""The Redis backend: entries as strings, conditional writes in Lua, invalidations over pub/sub.

Reads are one ``MGET`` (the prefix's generation plus the entries), so a bulk read costs what a raw
``MGET`` costs. Writes run ``WRITE_SCRIPT``, the Lua twin of :func:`isles.cache.base.decide`,
registered once (``SCRIPT LOAD``) and called by SHA with up to ``WRITE_BATCH`` entries per call;
larger bulk writes pipeline several calls.

When Redis cannot be reached the backend raises :class:`CacheUnavailable` at once and keeps
failing fast for ``retry_after`` seconds (a circuit breaker), so a cache outage costs callers a
loader call, not a connect timeout per read.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, AsyncIterator, Callable, Sequence, cast

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from isles.cache.base import TOMBSTONE, VALUES, CacheUnavailable, InvalidationListener, Read, Write
from isles.cache.keys import KeySpace
from isles.cache.memory import _human
from isles.config import mask_url

log = logging.getLogger("isles.cache")

WRITE_BATCH = 500  # entries per script call: large enough to amortise, short enough not to stall Redis

_DOWN = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)

# KEYS: generation, seq, entry... ARGV: channel, length of the key prefix before "<prefix>:<id>", then one
# argument per entry, "kind:version:start_seq:soft_ms:ttl_ms:payload" (one argument rather than six: the
# client's per-argument encoding dominated bulk writes). Returns 1 (written) or 0 (refused) per entry.
WRITE_SCRIPT = """
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
local channel = ARGV[1]
local skip = tonumber(ARGV[2])

local function decide(key, kind, ver, start)
  if kind ~= 't' and start >= 0 and start < gen then return false, false end
  local cur = redis.call('GET', key)
  if not cur then return true, false end
  local ck, cs, cv = string.match(cur, '^(%a):(%d+):(%-?%d+):')
  if not ck then return true, false end
  cs = tonumber(cs)
  cv = tonumber(cv)
  if cs <= gen then return true, false end
  if kind == 't' then
    if ver >= 0 and cv >= 0 and ver <= cv then return false, true end
  elseif ver >= 0 and cv >= 0 then
    if ver < cv then return false, true end
  elseif start >= 0 and cs > start then
    return false, true
  end
  return true, true
end

local out = {}
for i = 3, #KEYS do
  local kind, ver, start, soft, ttl, payload = string.match(ARGV[i], '^(%a):(%-?%d+):(%-?%d+):(%d+):(%d+):(.*)$')
  local ok, live = decide(KEYS[i], kind, tonumber(ver), tonumber(start))
  if ok then
    local seq = redis.call('INCR', KEYS[2])
    redis.call('SET', KEYS[i], kind .. ':' .. seq .. ':' .. ver .. ':' .. soft .. ':' .. payload, 'PX', ttl)
    if (live or kind == 't') and channel ~= '' then
      redis.call('PUBLISH', channel, 'k:' .. string.sub(KEYS[i], skip + 1))
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""

# KEYS: generation, seq. ARGV: channel, message
RETIRE_SCRIPT = """
local s = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], s)
if ARGV[1] ~= '' then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return s
"""

# KEYS: generation, entries... : unlink the entries the generation retired
CLEANUP_SCRIPT = """
local gen = tonumber(redis.call('GET', KEYS[1]) or '0')
local n = 0
for i = 2, #KEYS do
  local cur = redis.call('GET', KEYS[i])
  if cur then
    local cs = tonumber(string.match(cur, '^%a:(%d+):'))
    if cs and cs <= gen then
      redis.call('UNLINK', KEYS[i])
      n = n + 1
    end
  end
end
return n
"""


def _keys(base: bytes, ids: Sequence[str]) -> list[bytes]:
    """Entry keys as bytes (redis-py's per-argument str encoding costs more than the whole parse)."""
    try:
        return [base + id.encode() for id in ids]
    except AttributeError:  # ids that are not str (e.g. int): the same keys as f"{id}" gives
        return [base + str(id).encode() for id in ids]


class RedisBackend:
    """Entries in one Redis database, under a :class:`KeySpace` namespace."""

    name = "redis"
    shared = True

    def __init__(self, url: str, keys: KeySpace, *, socket_timeout: float = 1.0, retry_after: float = 1.0,
                 ping_interval: float = 5.0, client: aioredis.Redis | None = None, client_name: str | None = None):
        self.url = mask_url(url)
        self.keys = keys
        self.retry_after = retry_after
        self.ping_interval = ping_interval
        self.client = client or aioredis.Redis.from_url(
            url, socket_timeout=socket_timeout, socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False, health_check_interval=0,
            client_name=client_name or f"isles-cache:{keys.namespace}")
        self._shas: dict[str, str] = {}
        self._down_until = 0.0
        self.problem: str | None = None
        self.on_recover: Callable[[], None] | None = None

    # -- circuit breaker ---------------------------------------------------------------------------
    def _check(self) -> None:
        if self._down_until and time.monotonic() < self._down_until:
            raise CacheUnavailable(f"Redis at {self.url} is unavailable: {self.problem}",
                                   fix="start Redis or fix REDIS_URL; reads go to the owner meanwhile")

    def _fail(self, exc: BaseException) -> CacheUnavailable:
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"
        if not self._down_until:
            log.warning("cache: Redis at %s is unavailable (%s); reads fall through to the loader", self.url, reason)
        self.problem = reason
        self._down_until = time.monotonic() + self.retry_after
        return CacheUnavailable(f"Redis at {self.url} is unavailable: {reason}",
                                fix="start Redis or fix REDIS_URL; reads go to the owner meanwhile")

    def _ok(self) -> None:
        if self._down_until:
            log.warning("cache: Redis at %s is reachable again", self.url)
            self._down_until = 0.0
            self.problem = None
            if self.on_recover is not None:
                self.on_recover()

    async def _sha(self, name: str, script: str) -> str:
        sha = self._shas.get(name)
        if sha is None:
            sha = self._shas[name] = await self.client.script_load(script)
        return sha

    async def _eval(self, name: str, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        sha = await self._sha(name, script)
        try:
            return await self.client.evalsha(sha, len(keys), *keys, *args)
        except NoScriptError:  # the server restarted or SCRIPT FLUSH ran: load it again
            self._shas.pop(name, None)
            sha = await self._sha(name, script)
            return await self.client.evalsha(sha, len(keys), *keys, *args)

    async def _mget(self, keys: Sequence[str | bytes]) -> list[bytes | None]:
        # redis-py types MGET for clients that decode responses too; this one does not: bytes.
        return cast("list[bytes | None]", await self.client.mget(keys))

    # -- the backend contract --------------------------------------------------------------------
    async def read(self, prefix: str, ids: Sequence[str], *, with_seq: bool = False) -> Read:
        self._check()
        base = f"{self.keys.entries}{prefix}:".encode()
        head = [self.keys.generation(prefix), self.keys.seq] if with_seq else [self.keys.generation(prefix)]
        try:
            values = await self._mget([*head, *_keys(base, ids)])
        except _DOWN as exc:
            raise self._fail(exc) from None
        if self._down_until:
            self._ok()
        gen = int(values[0]) if values[0] else 0
        seq = int(values[1] or 0) if with_seq else 0
        out: list[Any] = []
        append = out.append
        for raw in values[len(head):]:
            if raw is None:
                append(None)
                continue
            parts = raw.split(b":", 4)
            append(None if gen and int(parts[1]) <= gen else parts)
        return Read(out, seq)

    async def read_values(self, prefix: str, ids: Sequence[str], loads: Callable[[bytes], Any],
                          now_ms: float) -> tuple[dict[str, Any], int]:
        self._check()
        base = f"{self.keys.entries}{prefix}:".encode()
        try:
            values = await self._mget([self.keys.generation(prefix), *_keys(base, ids)])
        except _DOWN as exc:
            raise self._fail(exc) from None
        if self._down_until:
            self._ok()
        gen = int(values[0]) if values[0] else 0
        out: dict[str, Any] = {}
        found = 0
        for id, raw in zip(ids, values[1:], strict=True):
            if raw is None:
                continue
            parts = raw.split(b":", 4)
            if gen and int(parts[1]) <= gen:
                continue
            kind = parts[0]
            if kind == b"v" or (kind == b"w" and int(parts[3]) >= now_ms):
                out[id] = loads(parts[4])
                found += 1
            elif kind == b"n":
                found += 1
        return out, found

    async def write(self, prefix: str, writes: Sequence[Write]) -> list[bool]:
        """Conditional writes, ``WRITE_BATCH`` entries per script call, the calls pipelined."""
        self._check()
        head = (self.keys.generation(prefix), self.keys.seq)
        base = f"{self.keys.entries}{prefix}:"
        skip = len(self.keys.entries.encode())
        calls = []
        for start in range(0, len(writes), WRITE_BATCH):
            chunk = writes[start:start + WRITE_BATCH]
            keys = [*head, *(base + w.id for w in chunk)]
            args: list[Any] = [self.keys.channel, skip]
            args += [b"%b:%d:%d:%d:%d:%b" % (w.kind, w.version, w.start_seq, w.soft_ms, max(1, w.ttl_ms), w.payload)
                     for w in chunk]
            calls.append((keys, args))
        try:
            if len(calls) == 1:
                results = [await self._eval("write", WRITE_SCRIPT, *calls[0])]
            else:
                results = await self._pipelined(calls)
        except _DOWN as exc:
            raise self._fail(exc) from None
        self._ok()
        return [bool(r) for result in results for r in result]

    async def _pipelined(self, calls: list[tuple[list[str], list[Any]]]) -> list[Any]:
        for attempt in (1, 2):
            sha = await self._sha("write", WRITE_SCRIPT)
            pipe = self.client.pipeline(transaction=False)
            for keys, args in calls:
                pipe.evalsha(sha, len(keys), *keys, *args)
            try:
                return await pipe.execute()
            except NoScriptError:
                self._shas.pop("write", None)
                if attempt == 2:
                    raise
        return []

    async def retire_prefix(self, prefix: str) -> None:
        self._check()
        try:
            await self._eval("retire", RETIRE_SCRIPT, (self.keys.generation(prefix), self.keys.seq),
                             (self.keys.channel, f"p:{prefix}"))
        except _DOWN as exc:
            raise self._fail(exc) from None
        self._ok()

    async def cleanup_prefix(self, prefix: str) -> int:
        self._check()
        removed = 0
        batch: list[str] = []
        try:
            async for key in self.client.scan_iter(match=f"{self.keys.entries}{prefix}:*", count=500):
                batch.append(key)
                if len(batch) >= 500:
                    removed += await self._eval("cleanup", CLEANUP_SCRIPT, [self.keys.generation(prefix), *batch], ())
                    batch = []
            if batch:
                removed += await self._eval("cleanup", CLEANUP_SCRIPT, [self.keys.generation(prefix), *batch], ())
        except _DOWN as exc:
            raise self._fail(exc) from None
        return removed

    async def _live(self, match: str, keep: Callable[[bytes], bool]) -> AsyncIterator[tuple[str, str]]:
        """(prefix, id) of the entries under ``match`` whose marker passes ``keep`` and whose prefix
        generation is current (older generations were invalidated by ``invalidate_all``)."""
        skip = len(self.keys.entries)
        gens: dict[str, int] = {}

        async def live(keys: list[bytes]) -> list[tuple[str, str]]:
            found = []
            for key, raw in zip(keys, await self._mget(keys), strict=True):
                if raw is None or not keep(raw[:1]):
                    continue
                prefix, _, id = key.decode()[skip:].partition(":")
                if int(raw.split(b":", 2)[1]) > await self._generation(prefix, gens):
                    found.append((prefix, id))
            return found

        batch: list[bytes] = []
        async for key in self.client.scan_iter(match=match, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                for entry in await live(batch):
                    yield entry
                batch = []
        if batch:
            for entry in await live(batch):
                yield entry

    async def match(self, pattern: str) -> list[tuple[str, str]]:
        self._check()
        try:
            return [entry async for entry in self._live(self.keys.entries + pattern, lambda m: m != TOMBSTONE)]
        except _DOWN as exc:
            raise self._fail(exc) from None

    async def _generation(self, prefix: str, known: dict[str, int]) -> int:
        if prefix not in known:
            raw = await self.client.get(self.keys.generation(prefix))
            known[prefix] = int(raw) if raw else 0
        return known[prefix]

    async def count(self, prefix: str | None) -> dict[str, int]:
        self._check()
        counts: dict[str, int] = {} if prefix is None else {prefix: 0}
        match = f"{self.keys.entries}{prefix}:*" if prefix else f"{self.keys.entries}*"
        try:
            async for entry_prefix, _ in self._live(match, lambda m: m in VALUES):
                counts[entry_prefix] = counts.get(entry_prefix, 0) + 1
        except _DOWN as exc:
            raise self._fail(exc) from None
        return counts

    async def memory(self) -> tuple[int, str]:
        self._check()
        try:
            info = await self.client.info("memory")
        except _DOWN as exc:
            raise self._fail(exc) from None
        used = int(info.get("used_memory", 0))
        return used, str(info.get("used_memory_human") or _human(used))

    async def ping(self) -> float:
        started = time.perf_counter()
        try:
            await self.client.ping()
        except _DOWN as exc:
            raise self._fail(exc) from None
        self._ok()
        return time.perf_counter() - started

    async def listen(self, listener: InvalidationListener, on_state: Callable[[bool, str], None]) -> None:
        """Forward invalidations published by any process; report (dis)connection to ``on_state``.

        A silent channel is not trusted: without traffic it pings, and if nothing (not even the
        pong) arrives within three intervals the connection counts as dropped.
        """
        delay = 0.05
        while True:
            pubsub = self.client.pubsub()
            try:
                await pubsub.subscribe(self.keys.channel)
                last_seen = time.monotonic()
                subscribed = False
                while True:
                    message = await pubsub.get_message(timeout=min(self.ping_interval, 1.0))
                    now = time.monotonic()
                    if message is None:
                        if now - last_seen > 3 * self.ping_interval:
                            raise RedisConnectionError("no traffic on the invalidation channel")
                        if now - last_seen > self.ping_interval:
                            await pubsub.ping()
                        continue
                    last_seen = now
                    kind = message.get("type")
                    if kind == "subscribe" and not subscribed:
                        subscribed = True
                        delay = 0.05
                        on_state(True, "subscribed")
                    elif kind == "message":
                        data = message["data"]
                        listener(data.decode() if isinstance(data, bytes) else str(data))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means the channel is not trustworthy
                on_state(False, f"{type(exc).__name__}: {exc}")
            finally:
                try:
                    await pubsub.aclose()
                except Exception:  # noqa: BLE001
                    pass
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def close(self) -> None:
        await self.client.aclose()
