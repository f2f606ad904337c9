"""Benchmark of the reference data cache (isles.cache) against its baselines, in one run.

    python -m bench.cache [--quick] [--redis-url redis://127.0.0.1:6379/0]

(a) ``get_many(100)`` on Redis beside the raw baseline: build the 100 keys, redis-py ``MGET``,
    ``orjson.loads`` of each value into a dict by id - once with ``str`` keys (the usual code) and
    once with keys pre-encoded to ``bytes`` (as the cache does); the ratio is against the faster
    of the two (goal: at least 80% of raw);
(b) the L1 hit path: ``await cache.get(...)`` answered in process (goal: 1,000,000 gets/s);
(c) hit rate of ``get_or_load`` on a Zipf(1.1) read workload over 100k keys, warmed at start as
    the seed's services do, with 1% of the operations replaced by owner updates that reach the
    cache through its ``follow`` handler (an event per update); every read after an update's
    event was handled is checked against the owner: ``stale_reads`` must be 0 (goal: 95%).

Rounds of (a) alternate cache and baseline so that load from other processes hits both alike.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
import uuid
from typing import Any

import orjson
import redis.asyncio as aioredis

from isles.cache import ReferenceDataCache, Versioned
from isles.events import Envelope

PART = "part"


def part(i: int, version: int = 1) -> dict[str, Any]:
    return {"partId": f"P-{i:06d}", "partNumber": f"P-{i:06d}", "partName": f"Landing Gear Strut {i}",
            "revision": "C", "unitOfMeasure": "EA", "isActive": True, "version": version}


async def purge(client: aioredis.Redis, namespace: str) -> None:
    keys = [k async for k in client.scan_iter(match=f"{namespace}:*", count=5000)]
    for start in range(0, len(keys), 1000):
        await client.unlink(*keys[start:start + 1000])


# -- (a) get_many(100) against raw MGET + orjson ----------------------------------------------------------
async def bench_get_many(url: str, namespace: str, rounds: int, batches: int) -> dict[str, float]:
    cache = ReferenceDataCache(url, namespace=namespace, default_ttl=3600, name="bench-get-many")
    raw = aioredis.Redis.from_url(url)
    n_keys = 2000
    await cache.set_many(PART, {f"P-{i:06d}": part(i) for i in range(n_keys)})
    raw_prefix = f"{namespace}:raw:"
    await raw.mset({f"{raw_prefix}P-{i:06d}": orjson.dumps(part(i)) for i in range(n_keys)})
    rng = random.Random(7)
    sets = [[f"P-{i:06d}" for i in rng.sample(range(n_keys), 100)] for _ in range(batches)]
    loads = orjson.loads

    async def run_raw() -> float:
        """What a service would write by hand: build the 100 keys, MGET, decode each value."""
        started = time.perf_counter()
        for ids in sets:
            values = await raw.mget([raw_prefix + id for id in ids])
            {id: loads(v) for id, v in zip(ids, values, strict=True) if v is not None}
        return time.perf_counter() - started

    raw_prefix_b = raw_prefix.encode()

    async def run_raw_bytes() -> float:
        """The same with keys pre-encoded to bytes (skips redis-py's per-argument str encoding,
        as the cache does): the stricter baseline."""
        started = time.perf_counter()
        for ids in sets:
            values = await raw.mget([raw_prefix_b + id.encode() for id in ids])
            {id: loads(v) for id, v in zip(ids, values, strict=True) if v is not None}
        return time.perf_counter() - started

    async def run_cache() -> float:
        started = time.perf_counter()
        for ids in sets:
            await cache.get_many(PART, ids)
        return time.perf_counter() - started

    assert len(await cache.get_many(PART, sets[0])) == 100
    await run_raw(), await run_raw_bytes(), await run_cache()  # warm up connections and code paths
    raw_time = raw_bytes_time = cache_time = 0.0
    for _ in range(rounds):
        raw_time += await run_raw()
        raw_bytes_time += await run_raw_bytes()
        cache_time += await run_cache()
    await cache.close()
    await raw.aclose()
    calls = rounds * batches
    best_raw = calls / min(raw_time, raw_bytes_time)
    return {"raw_per_s": calls / raw_time, "raw_bytes_per_s": calls / raw_bytes_time, "best_raw_per_s": best_raw,
            "cache_per_s": calls / cache_time, "ratio": (calls / cache_time) / best_raw}


# -- (b) the L1 hit path ---------------------------------------------------------------------------------
async def bench_l1(url: str, namespace: str, gets: int) -> dict[str, float]:
    cache = ReferenceDataCache(url, namespace=namespace, default_ttl=3600, l1_ttl=600, name="bench-l1")
    ids = [f"P-{i:06d}" for i in range(1000)]
    await cache.set_many(PART, {id: part(i) for i, id in enumerate(ids)})
    for _ in range(200):
        await cache.get_many(PART, ids)
        if cache.l1_size == len(ids):
            break
        await asyncio.sleep(0.01)
    assert cache.l1_size == len(ids), "L1 did not fill (invalidation channel not up?)"
    get = cache.get
    workload = (ids * (gets // len(ids) + 1))[:gets]
    best = 0.0
    for _ in range(3):
        before = cache.counters.l1_hits
        started = time.perf_counter()
        for id in workload:
            await get(PART, id)
        elapsed = time.perf_counter() - started
        assert cache.counters.l1_hits - before == gets
        best = max(best, gets / elapsed)
    await cache.close()
    return {"gets_per_s": best}


# -- (c) Zipf reads with owner updates flowing through events --------------------------------------------
async def bench_hit_rate(url: str, namespace: str, operations: int, n_keys: int = 100_000,
                         update_share: float = 0.01, s: float = 1.1) -> dict[str, float]:
    cache = ReferenceDataCache(url, namespace=namespace, default_ttl=3600, l1_ttl=60, l1_max_entries=n_keys,
                               name="bench-zipf")
    owner: dict[str, int] = {f"P-{i:06d}": 1 for i in range(n_keys)}  # the owner's versions
    ids = list(owner)
    handlers = {sub.type: sub.fn for sub in cache.follow(PART, source="mes.material.part")}
    on_updated = handlers["mes.material.part.updated"]

    async def load(id: str) -> Versioned:  # the owner's API
        version = owner[id]
        return Versioned(part(int(id[2:]), version), version)

    async def warm() -> dict[str, Versioned]:
        return {id: Versioned(part(i, owner[id]), owner[id]) for i, id in enumerate(ids)}

    started = time.perf_counter()
    await cache.warm_cache(PART, warm)
    warm_s = time.perf_counter() - started

    rng = random.Random(11)
    weights = [1.0 / (rank ** s) for rank in range(1, n_keys + 1)]
    cumulative, total = [], 0.0
    for w in weights:
        total += w
        cumulative.append(total)
    order = ids[:]
    rng.shuffle(order)  # hot keys spread over the key space
    picks = rng.choices(order, cum_weights=cumulative, k=operations)
    updates = set(rng.sample(range(operations), int(operations * update_share)))

    reads = stale = events = 0
    hits_before = cache.counters.hits + cache.counters.l1_hits
    misses_before = cache.counters.misses
    started = time.perf_counter()
    for n, id in enumerate(picks):
        if n in updates:  # the owner commits an update; its event reaches the follower's handler
            owner[id] += 1
            data = orjson.dumps({"partId": id, "partNumber": id})
            await on_updated(Envelope(id=str(uuid.uuid4()), source="/mes/material", type="mes.material.part.updated",
                                      data=data, partitionkey=id, entityversion=owner[id]), None)
            events += 1
            continue
        value = await cache.get_or_load(PART, id, load)
        reads += 1
        if value["version"] != owner[id]:
            stale += 1
    elapsed = time.perf_counter() - started
    hits = cache.counters.hits + cache.counters.l1_hits - hits_before
    misses = cache.counters.misses - misses_before
    await cache.close()
    return {"hit_rate": hits / (hits + misses), "stale_reads": stale, "reads": reads, "events": events,
            "ops_per_s": operations / elapsed, "warm_s": warm_s, "keys": n_keys}


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cache", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run (under a minute)")
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args(argv)
    url = args.redis_url
    client = aioredis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        await client.ping()
    except Exception as exc:  # noqa: BLE001 - whatever the failure, Redis is not reachable: say so
        print(f"bench.cache: Redis is not reachable ({type(exc).__name__}); start it or pass --redis-url",
              file=sys.stderr)
        return 2
    namespace = f"isles-bench:{uuid.uuid4().hex[:10]}"
    quick = args.quick
    try:
        a = await bench_get_many(url, namespace + ":a", rounds=20 if quick else 60, batches=50 if quick else 100)
        b = await bench_l1(url, namespace + ":b", gets=300_000 if quick else 2_000_000)
        c = await bench_hit_rate(url, namespace + ":c", operations=150_000 if quick else 1_000_000)
    finally:
        await purge(client, namespace)
        await client.aclose()

    rows = [
        ("(a) get_many(100), Redis", f"{a['cache_per_s']:,.0f} calls/s",
         f"raw MGET+orjson {a['raw_per_s']:,.0f} (str keys) / {a['raw_bytes_per_s']:,.0f} (bytes keys) calls/s",
         f"{a['ratio']:.2f} of the faster raw", ">= 0.80"),
        ("(b) L1 hit path", f"{b['gets_per_s']:,.0f} gets/s", "", "", ">= 1,000,000"),
        ("(c) Zipf(1.1) hit rate", f"{c['hit_rate']:.4f}",
         f"{c['reads']:,} reads, {c['events']:,} update events over {c['keys']:,} keys",
         f"stale reads {c['stale_reads']}", ">= 0.95, 0 stale"),
    ]
    widths = [max(len(r[i]) for r in rows + [("measure", "cache", "baseline / workload", "result", "goal")])
              for i in range(5)]
    header = ("measure", "cache", "baseline / workload", "result", "goal")
    print(f"isles.cache benchmark ({'quick' if quick else 'full'}), Redis {url.rsplit('@', 1)[-1]}")
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(f"(c) warmed {c['keys']:,} keys in {c['warm_s']:.1f}s; workload ran at {c['ops_per_s']:,.0f} ops/s")
    print(f"RESULT cache get_many_ratio={a['ratio']:.3f} l1_gets_per_s={b['gets_per_s']:.0f} "
          f"hit_rate={c['hit_rate']:.4f} stale_reads={c['stale_reads']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
