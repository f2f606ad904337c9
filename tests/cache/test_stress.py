"""Randomised interleavings: many readers, slow loads and owner updates on a few hot keys.

The check is the cache's promise stated as a history property: a read that *began* after the
invalidation of version v completed never returns a version older than v - whatever the
scheduling of loads, fills and invalidations.
"""
from __future__ import annotations

import asyncio
import random

import pytest

from isles.cache import Versioned

KEYS = [f"k{i}" for i in range(4)]


@pytest.mark.parametrize("versioned_loader", [True, False], ids=["versioned", "unversioned"])
@pytest.mark.parametrize("mode", ["invalidate", "refresh"])
@pytest.mark.parametrize("l1", [0.0, 30.0], ids=["no-l1", "l1"])
async def test_no_read_returns_a_version_older_than_a_completed_invalidation(make_cache, versioned_loader, mode,
                                                                            l1, seed=None):
    rng = random.Random(1234)
    cache = make_cache(l1_ttl=l1, default_ttl=30)
    owner = {k: 1 for k in KEYS}        # the owner's current version per key
    completed = {k: 0 for k in KEYS}    # highest version whose invalidation/refresh has completed
    violations: list[tuple] = []

    async def load(key: str):
        version = owner[key]            # read the owner ...
        await asyncio.sleep(rng.random() * 0.004)  # ... and take a while to return
        value = {"key": key, "version": version}
        return Versioned(value, version) if versioned_loader else value

    async def reader(n: int) -> None:
        for _ in range(n):
            key = rng.choice(KEYS)
            floor = completed[key]
            value = await cache.get_or_load("part", key, load)
            if value["version"] < floor:
                violations.append((key, value["version"], floor))
            await asyncio.sleep(rng.random() * 0.001)

    async def owner_updates(n: int) -> None:
        for _ in range(n):
            key = rng.choice(KEYS)
            owner[key] += 1
            version = owner[key]
            await asyncio.sleep(rng.random() * 0.002)  # the event is on its way
            if mode == "invalidate":
                await cache.invalidate("part", key, version=version)
            else:
                await cache.set("part", key, {"key": key, "version": version}, version=version)
            completed[key] = max(completed[key], version)

    await asyncio.gather(*(reader(60) for _ in range(8)), owner_updates(40))
    assert violations == []
    for key in KEYS:  # at rest, the cache holds the owner's current version (or nothing)
        value = await cache.get("part", key)
        assert value is None or value["version"] == owner[key]
