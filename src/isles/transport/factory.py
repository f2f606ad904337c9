"""Choose the event transport from settings, so the same code runs in one process or on a broker.

* nothing set (or ``ISLES_TRANSPORT=memory``): the in-process transport;
* ``KAFKA_BROKERS`` (or ``ISLES_TRANSPORT=kafka``): Kafka, see :mod:`isles.transport.kafka`;
* ``ISLES_TRANSPORT=redis`` with ``REDIS_URL``, or ``ISLES_TRANSPORT=redis://...``: Redis Streams,
  see :mod:`isles.transport.redis_streams`.

An explicit ``ISLES_TRANSPORT`` wins over ``KAFKA_BROKERS`` (a Redis deployment may still have the
variable set for other tools). Broker modules are imported only when chosen.
"""
from __future__ import annotations

from typing import Mapping

from isles.errors import ConfigurationError
from isles.transport.base import Transport
from isles.transport.memory import InMemoryTransport

_KNOWN = "'memory' (default), 'kafka' (with KAFKA_BROKERS) or 'redis' (with REDIS_URL, or a redis:// URL)"


def transport_from_env(env: Mapping[str, str]) -> Transport:
    """The transport the settings in ``env`` select; raises ConfigurationError for unusable settings."""
    raw = (env.get("ISLES_TRANSPORT") or "").strip()
    choice = raw.lower()
    if choice.startswith(("redis://", "rediss://", "unix://")):
        from isles.transport.redis_streams import RedisStreamsTransport
        return RedisStreamsTransport.from_env({**env, "REDIS_URL": raw})
    if choice == "redis":
        if not env.get("REDIS_URL"):
            raise ConfigurationError("ISLES_TRANSPORT=redis but REDIS_URL is not set",
                                     fix="set REDIS_URL=redis://host:6379/0 (or ISLES_TRANSPORT=redis://host:6379/0)")
        from isles.transport.redis_streams import RedisStreamsTransport
        return RedisStreamsTransport.from_env(env)
    if choice == "kafka" or (choice == "" and env.get("KAFKA_BROKERS")):
        if not env.get("KAFKA_BROKERS"):
            raise ConfigurationError("ISLES_TRANSPORT=kafka but KAFKA_BROKERS is not set",
                                     fix="set KAFKA_BROKERS=host:9092[,host:9092]")
        from isles.transport.kafka import KafkaTransport
        return KafkaTransport.from_env(env)
    if choice in ("", "memory"):
        return InMemoryTransport()
    raise ConfigurationError(f"ISLES_TRANSPORT={raw!r} is not a transport isles knows", fix=f"use {_KNOWN}")


__all__ = ["transport_from_env"]
