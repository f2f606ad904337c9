"""Projection rebuild benchmark: a read model rebuilt from 1M retained events on PostgreSQL.

The source service's outbox is filled directly (COPY) with part-renamed events over 10k parts,
shaped as isles writes them. Measured in one run:

* rebuild: ``isles.projections.rebuild`` - read the log in pages, decode, run the handler (an
  upsert queued with ``write_later``), commit each page with the checkpoint, into the shadow
  copy, then swap it in: events/s over the whole rebuild;
* baseline: the same read-model rows, computed in advance, written through the same driver and
  statement with executemany in batches of the same size, one commit per batch - no event
  reading, decoding, handlers or checkpoints.

    python -m bench.projections [--quick]      (100k events with --quick)

Ends with ``RESULT projections rebuild_eps=... baseline_eps=... ratio=...``.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from datetime import datetime, timezone

import asyncpg
import orjson
from rich.table import Table
from sqlalchemy import BigInteger, MetaData, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench import make_console
from isles import Event, Payload, Service, System
from isles.projections import Projection, ProjectionUow, rebuild
from isles.projections.projection import _upsert
from isles.projections.shadow import shadow_of

console = make_console()
PG = dict(host="127.0.0.1", port=5432, user="postgres")
KEYS = 10_000
PAGE = 1000


class PartRenamed(Event, type="bench.parts.part.renamed", key="part_id"):
    part_id: str
    part_name: str


class ViewsBase(DeclarativeBase):
    pass


class PartName(ViewsBase):
    __tablename__ = "part_names"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(BigInteger)


class Renamed(Payload):
    part_id: str
    part_name: str


part_names = Projection("part_names", tables=[PartName])


@part_names.on("bench.parts.part.renamed")
async def renamed(event: Renamed, uow: ProjectionUow) -> None:
    await uow.upsert(PartName, {"id": event.part_id, "name": event.part_name, "version": uow.incoming.entityversion})


parts = Service("parts", metadata=MetaData(), publishes=[PartRenamed])
views = Service("views", metadata=ViewsBase.metadata, projections=[part_names])


def events(n: int) -> tuple[list[tuple], list[dict]]:
    """The outbox rows and, for the baseline, the read-model row each one leads to."""
    keys = [str(uuid.UUID(int=k + 1)) for k in range(KEYS)]
    now = datetime.now(timezone.utc)
    rows, effects = [], []
    for i in range(n):
        key, version = keys[i % KEYS], i // KEYS + 1
        name = f"Part {i % KEYS} rev {version}"
        data = orjson.dumps({"partId": key, "partName": name}).decode()
        rows.append((str(uuid.uuid4()), PartRenamed.event_type, "/bench/parts", key, key, version, 1, None, now, data,
                     now))
        effects.append({"id": key, "name": name, "version": version})
    return rows, effects


async def main(quick: bool) -> None:
    n = 100_000 if quick else 1_000_000
    name = f"bench_projections_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database="postgres", **PG)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}"
    env = {"DATABASE_URL": url, "ISLES_DATA_DIR": tempfile.mkdtemp()}
    system = System("bench", [parts, views], env=env, freeze_heap=False)
    try:
        await system.start(relays=False, consumers=False)
        rows, effects = events(n)
        started = time.perf_counter()
        conn = await asyncpg.connect(dsn=url)
        schema = await conn.fetchval("SELECT current_schema()")
        await conn.execute("SET search_path TO parts")
        await conn.copy_records_to_table(
            "isles_outbox", records=rows, schema_name="parts",
            columns=["event_id", "type", "source", "subject", "partition_key", "entity_version", "data_version",
                     "trace_parent", "occurred_at", "data", "published_at"])
        await conn.execute("ANALYZE parts.isles_outbox")
        await conn.close()
        console.print(f"{n:,} events written to parts' outbox in {time.perf_counter() - started:.1f} s "
                      f"(schema-per-service database, default schema {schema})")

        report = await rebuild(system, "part_names", page_size=PAGE)
        rebuild_eps = report.events / report.seconds

        runtime = system.runtime("views")
        target = shadow_of(PartName.__table__)
        target.name = "part_names_baseline"
        async with runtime.database.engine.begin() as c:
            await c.run_sync(lambda sync: target.create(sync))
        statement = _upsert(runtime.dialect, target, ("id", "name", "version"), None, None)
        started = time.perf_counter()
        for i in range(0, n, PAGE):
            async with runtime.database.engine.begin() as c:
                await c.execute(statement, effects[i:i + PAGE])
        baseline_eps = n / (time.perf_counter() - started)
        async with runtime.database.engine.connect() as c:
            rebuilt = await c.scalar(text("SELECT count(*) FROM part_names"))
            same = await c.scalar(text("SELECT count(*) FROM part_names p JOIN part_names_baseline b USING (id) "
                                       "WHERE p.name = b.name AND p.version = b.version"))
    finally:
        await system.stop()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    ratio = rebuild_eps / baseline_eps
    table = Table(title=f"projection rebuild, {n:,} events over {KEYS:,} keys, pages of {PAGE}")
    for column in ("path", "events/s", "seconds"):
        table.add_column(column, justify="right" if column != "path" else "left")
    table.add_row("rebuild (read log, decode, handler, checkpoint, swap)", f"{rebuild_eps:,.0f}",
                  f"{report.seconds:.1f}")
    table.add_row("baseline (precomputed rows, executemany)", f"{baseline_eps:,.0f}", f"{n / baseline_eps:.1f}")
    table.add_row("ratio (goal >= 0.5)", f"{ratio:.3f}", "")
    console.print(table)
    console.print(f"read-model rows: {rebuilt:,}, equal to the baseline's: {same:,}")
    print(f"RESULT projections rebuild_eps={rebuild_eps:.0f} baseline_eps={baseline_eps:.0f} ratio={ratio:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k events instead of 1M")
    asyncio.run(main(parser.parse_args().quick))
