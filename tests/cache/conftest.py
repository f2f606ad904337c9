"""Fixtures for the cache tests: every test runs against the in-process and the Redis backend.

Redis tests use the real server (``redis_url`` from tests/conftest.py), a namespace of their own,
and delete that namespace afterwards.
"""
from __future__ import annotations

import uuid
from typing import Any, AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from isles.cache import MemoryBackend, ReferenceDataCache

BACKENDS = ["memory", pytest.param("redis", marks=pytest.mark.redis)]


async def purge(url: str, namespace: str) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.unlink(*keys[start:start + 500])
    finally:
        await client.aclose()


@pytest.fixture(params=BACKENDS)
def backend_kind(request) -> str:
    return request.param


@pytest.fixture
def namespace() -> str:
    return f"isles-test:{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def make_cache(request, backend_kind, namespace) -> AsyncIterator[Callable[..., ReferenceDataCache]]:
    """Factory: caches on the test's backend sharing one namespace (and, in memory, one store),
    like several processes sharing one Redis."""
    url = request.getfixturevalue("redis_url") if backend_kind == "redis" else None
    shared_memory = MemoryBackend()
    made: list[ReferenceDataCache] = []

    def make(**options: Any) -> ReferenceDataCache:
        options.setdefault("namespace", namespace)
        if url is not None:
            cache = ReferenceDataCache(url, **options)
        else:
            cache = ReferenceDataCache(backend=options.pop("backend", shared_memory), **options)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        await cache.close()
    if url is not None:
        await purge(url, namespace)


@pytest.fixture
async def cache(make_cache) -> ReferenceDataCache:
    return make_cache()


class TcpProxy:
    """A loopback TCP proxy to Redis that a test can take down and bring back (an outage)."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.port = 0
        self._server = None
        self._writers: set = set()

    async def start(self) -> None:
        import asyncio
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader, writer) -> None:
        import asyncio
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(src, dst):
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers.difference_update((writer, up_writer))


@pytest.fixture
async def redis_proxy(redis_url) -> AsyncIterator[TcpProxy]:
    proxy = TcpProxy(6379)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
def closed_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
