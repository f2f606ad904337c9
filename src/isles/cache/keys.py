"""Cache key prefixes and the key layout of one cache namespace.

Every cached entity is addressed as ``<prefix>:<id>``. The prefixes are the system's to choose
(plain names such as ``"part"``, or the members of its own ``StrEnum``); isles only checks that a
prefix is usable in a key. A backend stores an entry under ``<namespace>:e:<prefix>:<id>``. The
namespace keeps caches that share one Redis apart (one per system, or one per test), and the
``e:`` infix keeps entries apart from the bookkeeping keys (the write sequence and the
per-prefix generations).
"""
from __future__ import annotations

from isles.errors import ConfigurationError

#: A cache key prefix: any string (a ``StrEnum`` member is one) that :func:`check_prefix` accepts.
Prefix = str


def check_prefix(prefix: Prefix) -> str:
    """The prefix as text; a ``:`` or glob character would make key patterns ambiguous."""
    text = str(prefix)
    if not text or any(c in text for c in ":*?[]"):
        raise ConfigurationError(f"cache prefix {text!r} is empty or contains ':', '*', '?', '[' or ']'",
                                 fix="use a plain name such as 'part' or 'work_center'")
    return text


class KeySpace:
    """Names of the keys and the invalidation channel of one cache namespace."""

    def __init__(self, namespace: str):
        if not namespace or any(c in namespace for c in "*?[]"):
            raise ConfigurationError(f"cache namespace {namespace!r} is empty or contains glob characters",
                                     fix="use a plain name such as 'isles:cache' or 'shop:cache'")
        self.namespace = namespace
        self.entries = f"{namespace}:e:"  # + "<prefix>:<id>"
        self.seq = f"{namespace}:seq"
        self.channel = f"{namespace}:invalidate"

    def entry(self, prefix: str, id: str) -> str:
        return f"{self.entries}{prefix}:{id}"

    def generation(self, prefix: str) -> str:
        return f"{self.namespace}:g:{prefix}"
