"""Value serialization: orjson by default, msgpack when asked; never pickle.

Cached values cross process boundaries (Redis), so they must be plain data that any reader can
decode without trusting the writer's code - pickle would let a poisoned cache run code.
"""
from __future__ import annotations

from typing import Any, Callable

import orjson

from isles.errors import ConfigurationError


class Codec:
    """Encodes values to bytes and back."""

    def __init__(self, name: str, dumps: Callable[[Any], bytes], loads: Callable[[bytes], Any]):
        self.name = name
        self.dumps = dumps
        self.loads = loads


def _orjson_dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


def codec_for(name: str) -> Codec:
    if name == "orjson":
        return Codec("orjson", _orjson_dumps, orjson.loads)
    if name == "msgpack":
        import msgpack
        return Codec("msgpack", lambda v: msgpack.packb(v, use_bin_type=True, datetime=True),
                     lambda b: msgpack.unpackb(b, raw=False, timestamp=3))
    raise ConfigurationError(f"cache serializer {name!r} is not supported",
                             fix="use 'orjson' (default) or 'msgpack'; pickle is never used")
