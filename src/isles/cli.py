"""The isles command line: run the system, watch it, and repair what events left behind.

Every command acts on one System (--system module:attribute, default $ISLES_SYSTEM or the
tool.isles system setting in ./pyproject.toml), configured by the environment (see README).
"""
from __future__ import annotations

import importlib
import os
import tempfile
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from isles.commands.common import (
    SYSTEM_HELP,
    console,
    ensure_port_free,
    err_console,
    fail,
    load_system,
    run,
    system_spec,
)

if TYPE_CHECKING:
    from isles.system import ServiceStatus, System

app = typer.Typer(help=__doc__, no_args_is_help=True, rich_markup_mode="rich", add_completion=False)
dlq_app = typer.Typer(help="Inspect and replay dead letters (events a handler could not apply).",
                      no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")

SystemOpt = typer.Option(None, "--system", "-s", help=SYSTEM_HELP)


def _system_hook(spec: str | None, name: str) -> Any:
    """An optional coroutine defined next to the System (``seed``, ``demo``)."""
    module = system_spec(spec).partition(":")[0]
    return getattr(importlib.import_module(module), name, None)


# -- run ----------------------------------------------------------------------------------------------
@app.command("run")
def run_command(system_path: Optional[str] = SystemOpt,
                host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
                port: int = typer.Option(8000, envvar="PORT", help="Port to listen on."),
                seed: bool = typer.Option(True, help="Load the example data (idempotent).")) -> None:
    """Run every service of the system in this process with its HTTP API on one port.

    With no settings this is the embedded default: a SQLite file per service in ./data, the
    in-process transport and cache. Set <SERVICE>_DATABASE_URL, DATABASE_URL, KAFKA_BROKERS or
    REDIS_URL to move parts onto servers.
    """
    import uvicorn

    from isles.api import create_app, service_prefix

    ensure_port_free(host, port)
    system = load_system(system_path, check=True)
    seeder = _system_hook(system_path, "seed") if seed else None

    async def start() -> None:
        from isles.migrations import ensure_head
        await ensure_head(system)  # each service's migrations, on its own database
        await system.start(create_tables=False)
        if seeder is not None:
            await seeder(system)
        url = f"http://{host}:{port}"
        table = Table(title=f"{system.name} is running", show_header=True, header_style="bold")
        table.add_column("service")
        table.add_column("API")
        table.add_column("database")
        for name, runtime in system.runtimes.items():
            table.add_row(name, f"{url}{service_prefix(name)}", runtime.database.config.display)
        console.print(table)
        console.print(f"API docs: [bold]{url}/docs[/]   OpenAPI: {url}/openapi.json   health: {url}/health")
        console.print("Press Ctrl+C to stop.")

    async def serve() -> None:
        # Start before uvicorn does: a wrong setting is then one clear line (see run()), not a traceback.
        try:
            await start()
        except BaseException:
            await system.stop()
            raise
        config = uvicorn.Config(create_app(system), host=host, port=port, log_level="warning")
        await uvicorn.Server(config).serve()

    run(serve())


# -- demo ---------------------------------------------------------------------------------------------
@app.command("demo")
def demo_command(system_path: Optional[str] = SystemOpt,
                 timeout: float = typer.Option(10.0, help="Seconds to wait for the copy to follow.")) -> None:
    """Rename part P-12345 to P-99999 and watch the work order's copy follow (seed 000's scenario).

    The event goes through the outbox, the relay and the consumer's inbox; timings are printed.

    Uses a throw-away data folder unless database URLs are set. Exits 0 only if the copy changed.
    """
    if not any(k.endswith(("DATABASE_URL", "_DB_URL")) and v for k, v in os.environ.items()):
        os.environ["ISLES_DATA_DIR"] = tempfile.mkdtemp(prefix="isles-demo-")
    system = load_system(system_path, check=True)
    scenario = _system_hook(system_path, "demo")
    if scenario is None:
        fail(f"module of {system_spec(system_path)!r} defines no `async def demo(system, console, timeout)`")
    ok = run(scenario(system, console, timeout))
    raise typer.Exit(0 if ok else 1)


# -- status -------------------------------------------------------------------------------------------
@app.command("status")
def status_command(system_path: Optional[str] = SystemOpt) -> None:
    """Each service's database (password masked), outbox backlog, oldest unpublished event, inbox and dead letters."""
    system = load_system(system_path, check=True)
    from isles.config import resolve_database

    rows = run(_statuses(system))
    table = Table(title=f"system {system.name}", header_style="bold")
    table.add_column("service", no_wrap=True)
    table.add_column("database", overflow="fold", min_width=24)
    table.add_column("health", no_wrap=True)
    for column in ("backlog", "oldest", "inbox", "dead", "waiting"):
        table.add_column(column, justify="right", no_wrap=True)
    for s in rows:
        age = "-" if s.oldest_unpublished_age_s is None else f"{s.oldest_unpublished_age_s:.1f}s"
        health = "[green]ok[/]" if s.healthy else "[red]down[/]"
        table.add_row(s.service, f"{s.database}\n[dim]{s.topology}[/]", health, str(s.outbox_backlog), age,
                      str(s.inbox), f"[red]{s.dead_letters}[/]" if s.dead_letters else "0", str(s.waiting))
    console.print(table)
    console.print("[dim]backlog: committed events not yet published; oldest: age of the oldest of them; "
                  "dead/waiting: see `isles dlq list`[/]")
    down = [s for s in rows if not s.healthy]
    for s in down:  # the whole message (service, setting, fix) once, below the table
        source = resolve_database(s.service, system.env).source
        fix = f"start its database server, or correct {source if source != 'default' else 'ISLES_DATA_DIR'}"
        err_console.print(f"[bold red]down[/]: {escape(s.detail)}\n  fix: {escape(fix)}", highlight=False)
    raise typer.Exit(1 if down else 0)


async def _statuses(system: "System") -> list[Any]:
    """Every service's status; one that cannot be reached is shown as such and the others still are.

    Only the databases are read: no broker is started (``status`` must work while it is down)
    and no table is created (a server that is away made ``create_all`` fail the whole command)."""
    from isles.transport.memory import InMemoryTransport

    system._transport = system._transport or InMemoryTransport()
    async with system.running(relays=False, consumers=False, create_tables=False):
        return [await _status_of(system, name) for name in sorted(system.runtimes)]


async def _status_of(system: "System", name: str) -> "ServiceStatus":
    """One service's status; never raises. Its tables are created if missing, as start() would."""
    from isles.database import outage_reason
    from isles.system import ServiceStatus

    runtime = system.runtimes[name]
    config = runtime.database.config
    try:
        if (await runtime.database.health()).ok:
            await runtime.database.create_all(system.services[name].metadata)
        return await system._status(runtime)
    except Exception as exc:
        return ServiceStatus(name, config.display, config.topology, False,
                             f"service '{name}': cannot read its tables ({outage_reason(exc)})", 0, None, 0, 0, 0)


# -- dead letters -------------------------------------------------------------------------------------
@dlq_app.command("list")
def dlq_list(system_path: Optional[str] = SystemOpt,
             service: Optional[str] = typer.Option(None, help="Only this service."),
             show_resolved: bool = typer.Option(False, "--resolved", help="Include resolved dead letters.")) -> None:
    """Dead letters: events that failed (dead) and later events of the same key parked behind them (waiting)."""
    from sqlalchemy import select

    from isles.tables import RESOLVED

    system = load_system(system_path, check=True)
    from isles.transport.memory import InMemoryTransport
    system._transport = system._transport or InMemoryTransport()  # reads tables; no broker needed

    async def go() -> list[Any]:
        found = []
        async with system.running(services=[service] if service else True, relays=False, consumers=False):
            for name, runtime in system.runtimes.items():
                dl = runtime.tables.dead_letters
                query = select(dl).order_by(dl.c.id)
                if not show_resolved:
                    query = query.where(dl.c.status != RESOLVED)
                async with runtime.database.engine.connect() as conn:
                    found += [(name, row) for row in (await conn.execute(query)).all()]
        return found

    rows = run(go())
    if not rows:
        console.print("no dead letters")
        return
    table = Table(header_style="bold")
    for column in ("service", "id", "status", "type", "key", "attempts", "failed at"):
        table.add_column(column, no_wrap=column in ("id", "status", "attempts"))
    table.add_column("error", overflow="fold", min_width=20)
    for name, row in rows:
        table.add_row(name, str(row.id), row.status, row.type, row.partition_key, str(row.attempts),
                      str(row.failed_at)[:19], (row.error or "").splitlines()[0][:80])
    console.print(table)
    console.print("replay with: isles dlq retry ID   (or --all)")


@dlq_app.command("retry")
def dlq_retry(dead_letter_id: Optional[int] = typer.Argument(None, help="A dead letter id from `isles dlq list`."),
              all_: bool = typer.Option(False, "--all", help="Retry every parked key."),
              service: Optional[str] = typer.Option(None, help="Only this service (needed with an ID when "
                                                                 "several services have dead letters)."),
              system_path: Optional[str] = SystemOpt) -> None:
    """Replay a dead letter and the events waiting behind it, in order; the key un-parks when all succeed."""
    if (dead_letter_id is None) == (not all_):
        fail("give either a dead letter ID or --all")
    system = load_system(system_path, check=True)

    async def go() -> list[Any]:
        reports = []
        async with system.running(services=[service] if service else True, relays=False, consumers=True):
            for name, consumer in system.consumers.items():
                reports.append((name, await consumer.retry(dead_letter_id)))
        return reports

    failed = False
    for name, report in run(go()):
        if report.keys == 0:
            continue
        console.print(f"{name}: {report.resolved} event(s) applied over {report.keys} key(s)")
        for dl_id, error in report.failed:
            failed = True
            console.print(f"  [red]dead letter {dl_id} failed again[/]: {error}")
    raise typer.Exit(1 if failed else 0)


# -- resync -------------------------------------------------------------------------------------------
@app.command("resync")
def resync_command(service: Optional[str] = typer.Option(None, help="Only this service's replicas."),
                   system_path: Optional[str] = SystemOpt) -> None:
    """Backfill replicated fields from the owning services' current state (never moves a copy backwards)."""
    system = load_system(system_path, check=True)
    targets = [service] if service else [n for n, s in system.services.items() if s.replicas]

    async def go() -> dict[str, Any]:
        results: dict[str, Any] = {}
        async with system.running(relays=False, consumers=False):
            with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=console) as progress:
                for name in targets:
                    results[name] = await system.resync(name, progress)
        return results

    skipped = False
    for name, changed in run(go()).items():
        for label, count in changed.items():
            if isinstance(count, Exception):
                skipped = True
                console.print(f"{name}: {label}: [yellow]skipped[/] - {count}", highlight=False)
            else:
                console.print(f"{name}: {label}: {count} row(s) brought up to date")
    raise typer.Exit(1 if skipped else 0)


def _register_optional_groups() -> None:
    """Command groups that live in their own modules (db, migrate, lint, audit-isolation, serve)."""
    for module_name, group in (("isles.commands.db", "db"), ("isles.commands.migrate", "migrate"),
                               ("isles.commands.lint", None), ("isles.commands.audit", None),
                               ("isles.commands.serve", None), ("isles.commands.new", "new"),
                               ("isles.commands.sagas", "sagas"), ("isles.commands.projections", "projections")):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        sub = getattr(module, "app", None)
        if sub is None:
            continue
        if group:
            app.add_typer(sub, name=group)
        else:
            for command in sub.registered_commands:
                app.registered_commands.append(command)


_register_optional_groups()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
