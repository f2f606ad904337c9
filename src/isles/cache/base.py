"""The storage contract every cache backend fulfils, and the write rule that makes fills race-free.

An entry is ``[kind, seq, version, soft_ms, payload]``:

- ``kind`` is ``b"v"`` (a value), ``b"w"`` (a value written with a stale-while-revalidate
  window, so readers must compare ``soft_ms``; for ``b"v"`` the backend's TTL is the whole truth
  and the hot read path skips that check), ``b"n"`` (a negative entry: the owner said "no such
  id") or ``b"t"`` (a tombstone left by an invalidation);
- ``seq`` is the namespace-wide write sequence number when it was written;
- ``version`` is the owner's ``entityversion`` (-1 when unknown);
- ``soft_ms`` is the wall-clock time (ms) after which it is stale (served only by
  stale-while-revalidate); the backend drops it for good at its hard TTL;
- ``payload`` is the serialized value.

Backends may hand fields back as ``bytes`` (Redis) or ``int`` (memory): readers use ``int()``.

Why the sequence number: a loader reads the owner *before* it writes the cache. If an
invalidation lands in between, plain cache-aside writes the old value back (and some libraries
then serve it until its TTL). Here every fill carries the sequence number observed when its read
began (``start_seq``), and :func:`decide` - mirrored by the Redis Lua script - refuses it if
anything was written to the key since, unless the fill's own version proves it is at least as new.
A per-prefix generation (the sequence number of the last ``invalidate_all``) retires a whole
prefix in O(1): entries with ``seq <= generation`` are dead.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from isles.errors import IslesError

VALUE, VALUE_SWR, NEGATIVE, TOMBSTONE = b"v", b"w", b"n", b"t"
VALUES = (VALUE, VALUE_SWR)
NO_VERSION = -1
NO_START = -1  # an explicit set(): no read to be consistent with

Entry = Sequence[Any]  # [kind: bytes, seq, version, soft_ms, payload: bytes]


class CacheUnavailable(IslesError):
    """The cache backend cannot be reached; callers fall back to the owner (the loader)."""


@dataclass(frozen=True, slots=True)
class Write:
    """One conditional write: a fill, an explicit set or a tombstone."""

    id: str
    kind: bytes
    version: int = NO_VERSION
    start_seq: int = NO_START
    soft_ms: int = 0
    ttl_ms: int = 1000
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class Read:
    """Entries for the asked ids (``None`` = absent, expired or retired by a generation) and,
    when asked for, the sequence number current at the read (the ``start_seq`` of a fill)."""

    entries: list[Any]
    seq: int


def decide(current: Entry | None, generation: int, write: Write) -> tuple[bool, bool]:
    """Whether ``write`` may replace ``current``; and whether it replaces a live entry.

    The Redis backend runs the same rule in Lua (``redis.WRITE_SCRIPT``); the shared test suite
    holds both to it.
    """
    if write.kind != TOMBSTONE and write.start_seq >= 0 and write.start_seq < generation:
        return False, False  # the prefix was invalidated after the load began
    if current is None:
        return True, False
    cseq, cver = int(current[1]), int(current[2])
    if cseq <= generation:
        return True, False
    if write.kind == TOMBSTONE:
        if write.version >= 0 and cver >= 0 and write.version <= cver:
            return False, True  # the cache already holds this version (or a newer one)
    elif write.version >= 0 and cver >= 0:
        if write.version < cver:
            return False, True  # an older version never replaces a newer one
    elif write.start_seq >= 0 and cseq > write.start_seq:
        return False, True  # written (e.g. invalidated) after the load began
    return True, True


InvalidationListener = Callable[[str], None]
"""Called with ``"k:<prefix>:<id>"``, ``"p:<prefix>"`` or ``"*"`` (flush), for a level-1 cache."""


class Backend(Protocol):
    """Where entries live. Raises :class:`CacheUnavailable` when the store cannot be reached."""

    name: str
    shared: bool  # whether other caches (processes) write the same entries, so L1 needs its channel

    async def read(self, prefix: str, ids: Sequence[str], *, with_seq: bool = False) -> Read: ...

    async def read_values(self, prefix: str, ids: Sequence[str], loads: Callable[[bytes], Any],
                          now_ms: float) -> tuple[dict[str, Any], int]:
        """The hot path of ``get_many``: decoded live values by id, and how many ids were found
        (values plus negative entries) - one pass, no intermediate entries."""

    async def write(self, prefix: str, writes: Sequence[Write]) -> list[bool]: ...

    async def retire_prefix(self, prefix: str) -> None:
        """Bump the prefix's generation: every entry written before is dead (O(1))."""

    async def cleanup_prefix(self, prefix: str) -> int:
        """Remove entries retired by the generation (background clean-up); returns how many."""

    async def match(self, pattern: str) -> list[tuple[str, str]]:
        """``(prefix, id)`` of entries whose ``<prefix>:<id>`` matches the glob ``pattern``."""

    async def count(self, prefix: str | None) -> dict[str, int]:
        """Live values per prefix."""

    async def memory(self) -> tuple[int, str]:
        """Bytes used and a human-readable figure."""

    async def ping(self) -> float:
        """Round-trip seconds."""

    async def listen(self, listener: InvalidationListener,
                     on_state: Callable[[bool, str], None]) -> None:
        """Deliver other processes' invalidations until cancelled (shared backends only)."""

    async def close(self) -> None: ...
