"""`isles projections`: list the read models, show their lag, rebuild one."""
from __future__ import annotations

from typing import Optional

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from isles.commands.common import SYSTEM_HELP, console, load_system, run

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
SystemOpt = typer.Option(None, "--system", "-s", help=SYSTEM_HELP)


@app.callback()
def _group() -> None:
    """Projection (read model) commands."""


@app.command("list")
def list_command(system_path: Optional[str] = SystemOpt) -> None:
    """Every projection: its service, tables and the event types it handles."""
    system = load_system(system_path)
    table = Table(show_header=True, header_style="bold")
    for column in ("projection", "service", "tables", "handles"):
        table.add_column(column)
    for name, (service, projection) in sorted(system.projections.items()):
        table.add_row(name, service.name, ", ".join(t.name for t in projection.tables),
                      ", ".join(sorted(projection.handled_types())))
    console.print(table)


@app.command("status")
def status_command(name: Optional[str] = typer.Argument(None, help="One projection (default: all)."),
                   system_path: Optional[str] = SystemOpt) -> None:
    """Per projection and source: checkpoint, events behind, age of the oldest unapplied event."""
    from isles.projections import projection_lag

    system = load_system(system_path)

    async def go() -> None:
        async with system.running(relays=False, consumers=False, create_tables=False):
            rows = await projection_lag(system, name)
        table = Table(show_header=True, header_style="bold")
        for column in ("projection", "service", "source", "position", "applied", "behind", "oldest unapplied",
                       "rebuild"):
            table.add_column(column, justify="right" if column in ("position", "applied", "behind") else "left")
        for lag in rows:
            age = "-" if lag.oldest_unapplied_age_s is None else f"{lag.oldest_unapplied_age_s:.1f} s"
            table.add_row(lag.projection, lag.service, lag.source, str(lag.position), str(lag.applied),
                          "?" if lag.behind is None else str(lag.behind), age, "running" if lag.rebuilding else "")
        console.print(table)

    run(go())


@app.command("rebuild")
def rebuild_command(name: str = typer.Argument(..., help="The projection to rebuild."),
                    page_size: int = typer.Option(1000, help="Events read and applied per transaction."),
                    system_path: Optional[str] = SystemOpt) -> None:
    """Rebuild NAME into a shadow copy from its sources' logs (or snapshots) and swap it in.

    The live copy keeps serving meanwhile. Only one rebuild of a projection runs at a time: a
    second request, from any process, is refused with who holds it.
    """
    from isles.projections import RebuildProgress, rebuild

    system = load_system(system_path)

    async def go() -> None:
        async with system.running(relays=False, consumers=False, create_tables=False):
            columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[eps]:,.0f} events/s  lag {task.fields[lag]:,}"), TimeElapsedColumn())
            with Progress(*columns, console=console) as bar:
                task = bar.add_task(f"rebuild {name}", total=None, eps=0.0, lag=0)

                def show(step: RebuildProgress) -> None:
                    bar.update(task, completed=step.applied, total=max(step.total, step.applied),
                               eps=step.events_per_s, lag=step.behind)

                report = await rebuild(system, name, page_size=page_size, progress=show)
        console.print(f"{name}: {report.events:,} events and {report.from_snapshots:,} snapshot entities in "
                      f"{report.seconds:.1f} s ({report.events_per_s:,.0f} events/s); swapped in")
        for source, start in report.partial.items():
            console.print(f"[yellow]warning[/]: {source}'s log starts at id {start} (older events were purged) and "
                          f"{source} declares no Snapshot for them: the rebuilt copy lacks what they did")

    run(go())
