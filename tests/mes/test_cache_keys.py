"""MES's cache key prefixes (seed 001's list) live in mes; isles takes any plain prefix."""
from __future__ import annotations

from isles.cache import ReferenceDataCache
from mes.cache_keys import CacheKeyPrefix


def test_prefixes_are_the_seeds():
    assert [p.value for p in CacheKeyPrefix] == ["user", "part", "work_center", "site", "area", "product",
                                                 "routing", "operation", "skill", "tool"]


async def test_a_member_and_its_plain_string_are_the_same_prefix():
    cache = ReferenceDataCache(namespace="test:mes-cache-keys")
    await cache.set(CacheKeyPrefix.PART, "P-12345", {"partNumber": "P-12345"})
    assert await cache.get("part", "P-12345") == {"partNumber": "P-12345"}
    assert await cache.get(CacheKeyPrefix.USER, "P-12345") is None
    await cache.close()


def test_isles_names_no_mes_prefix():
    import isles
    import isles.cache

    assert not hasattr(isles, "CacheKeyPrefix") and not hasattr(isles.cache, "CacheKeyPrefix")
