"""Event wiring: one declaration makes a cache follow the owner's events.

::

    handlers.include(cache.follow("part", source="mes.material.part"))

subscribes to ``mes.material.part.created``, ``.updated`` and ``.deleted``. Each event's
``partitionkey`` is the cached id and its ``entityversion`` the version:

- ``mode="invalidate"`` leaves a versioned tombstone (the next read loads from the owner);
- ``mode="refresh"`` writes the event's data as the new value (``fields`` picks and renames
  payload fields, ``transform`` builds the value), version-checked, so a replayed or reordered
  event never puts an older value back; ``deleted`` (and an event without a version) invalidates.

``key`` caches under something other than the entity id: a function of the envelope returning
one key or several (e.g. the new and the previous part number, so a rename drops the old key
too); in refresh mode the value is written under the first and the others are invalidated.

The handlers never raise for an unreachable cache: the owner's events keep flowing, and what was
invalidated during the outage is retired when the cache is back.

This module knows the cache only as :class:`Followable` (what the handlers call), so it does not
import :mod:`isles.cache.cache`, which imports it.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Protocol, Sequence

from isles.cache.keys import Prefix, check_prefix
from isles.errors import ConfigurationError
from isles.events import Envelope
from isles.subscriptions import Subscription
from isles.unit_of_work import UnitOfWork

MODES = ("invalidate", "refresh")


class Followable(Protocol):
    """What following needs of a cache (``ReferenceDataCache`` is one): its name and two writes."""

    name: str

    async def set(self, prefix: Prefix, id: str, value: Any, *, version: int | None = None) -> bool: ...

    async def invalidate(self, prefix: Prefix, id: str, *, version: int | None = None) -> bool: ...


def _projector(fields: Mapping[str, str] | Sequence[str] | None,
               transform: Callable[[dict[str, Any]], Any] | None) -> Callable[[dict[str, Any]], Any]:
    if transform is not None:
        return transform
    if fields is None:
        return lambda payload: payload
    mapping = dict(fields) if isinstance(fields, Mapping) else {name: name for name in fields}
    return lambda payload: {target: payload.get(source) for target, source in mapping.items()}


def follow(cache: Followable, prefix: Prefix, source: str, *, mode: str = "invalidate",
           fields: Mapping[str, str] | Sequence[str] | None = None,
           transform: Callable[[dict[str, Any]], Any] | None = None,
           actions: Sequence[str] = ("created", "updated", "deleted"),
           key: Callable[[Envelope], str | Sequence[str]] | None = None,
           optional: bool = False) -> list[Subscription]:
    """Subscriptions (``type``, ``model=None``, ``fn(envelope, uow)``) for ``<source>.<action>``;
    ``optional`` ones are dropped when the system has no service publishing ``source``."""
    p = check_prefix(prefix)
    if mode not in MODES:
        raise ConfigurationError(
            f"cache.follow mode {mode!r} is not one of {', '.join(MODES)}",
            fix="use mode='invalidate' (drop on change) or mode='refresh' (write the event's data)")
    if mode == "invalidate" and (fields is not None or transform is not None):
        raise ConfigurationError("cache.follow: fields/transform only apply to mode='refresh'",
                                 fix="drop fields=/transform=, or use mode='refresh'")
    if not actions:
        raise ConfigurationError(f"cache.follow of {source!r} lists no actions",
                                 fix="pass actions such as ('created', 'updated', 'deleted')")
    project = _projector(fields, transform)

    def keys_of(envelope: Envelope) -> list[str]:
        if key is None:
            return [envelope.partitionkey]
        found = key(envelope)
        keys = [found] if isinstance(found, str) else [k for k in found if k]
        return list(dict.fromkeys(keys))

    async def invalidate(envelope: Envelope, uow: UnitOfWork) -> None:
        for id in keys_of(envelope):
            await cache.invalidate(p, id, version=envelope.entityversion)

    async def refresh(envelope: Envelope, uow: UnitOfWork) -> None:
        keys = keys_of(envelope)
        if envelope.entityversion is None or not keys:
            for id in keys:
                await cache.invalidate(p, id)
            return
        await cache.set(p, keys[0], project(envelope.json()), version=envelope.entityversion)
        for id in keys[1:]:
            await cache.invalidate(p, id, version=envelope.entityversion)

    subscriptions = []
    for action in actions:
        fn = refresh if mode == "refresh" and action != "deleted" else invalidate
        subscriptions.append(Subscription(f"{source}.{action}", None, fn, f"cache[{cache.name}].{p}.{mode}",
                                          optional, repeatable=True))
    return subscriptions
