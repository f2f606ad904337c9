"""The reference data cache: another service's data, cached, following the owner's events.

``ReferenceDataCache`` is seed 001's API (get, set, get_many, set_many, invalidate,
invalidate_all, invalidate_by_pattern, warm_cache, health_check, get_stats) plus read-through
(``get_or_load``, ``get_many_or_load``) and event wiring (``follow``). Backends: in-process
(``memory``, the default) and Redis (``REDIS_URL``), each passing the same tests.
"""
from isles.cache.base import Backend, CacheUnavailable, Write
from isles.cache.cache import BulkLoader, CacheHealth, Loader, ReferenceDataCache, Versioned, WarmLoader
from isles.cache.memory import MemoryBackend
from isles.cache.metrics import CacheStats

__all__ = ["Backend", "BulkLoader", "CacheHealth", "CacheStats", "CacheUnavailable", "Loader",
           "MemoryBackend", "ReferenceDataCache", "Versioned", "WarmLoader", "Write"]
