"""The kinds of reference data MES services cache (seed 001's ``CacheKeyPrefix``).

The prefixes name MES concepts, so they live here and not in isles: ``isles.cache`` takes any
plain prefix string (a member of this ``StrEnum`` is one) and only checks that it is usable in
a key.
"""
from __future__ import annotations

from enum import StrEnum


class CacheKeyPrefix(StrEnum):
    """Cache key prefixes, values as in seed 001 (an entry is addressed as ``<prefix>:<id>``)."""

    USER = "user"
    PART = "part"
    WORK_CENTER = "work_center"
    SITE = "site"
    AREA = "area"
    PRODUCT = "product"
    ROUTING = "routing"
    OPERATION = "operation"
    SKILL = "skill"
    TOOL = "tool"
