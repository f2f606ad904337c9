"""`isles migrate`: each service's Alembic migrations, on its own database, from one place."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from isles.commands.common import SYSTEM_HELP, console, fail, load_system, run

if TYPE_CHECKING:
    from isles.migrations import Result

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
SystemOpt = typer.Option(None, "--system", "-s", help=SYSTEM_HELP)
ServiceOpt = typer.Option(None, "--service", help="Only these services (repeatable).")


def _short(rev: Optional[str]) -> str:
    return rev or "[dim]base[/]"


@app.command("status")
def status_command(system_path: Optional[str] = SystemOpt, service: Optional[List[str]] = ServiceOpt) -> None:
    """Services x (current revision, head, pending revisions, drift between models and database).

    Exits 1 when a service has pending revisions or drift (usable as a CI or deploy check).
    """
    from isles.migrations import status

    system = load_system(system_path)
    rows = run(status(system, service or None))
    table = Table(title=f"migrations of {system.name}", header_style="bold")
    for column in ("service", "database", "current", "head", "pending", "drift"):
        table.add_column(column)
    behind = False
    for s in rows:
        behind |= s.pending > 0 or bool(s.drift)
        drift = ("[dim]-[/] (not at head)" if s.drift is None else
                 "[green]none[/]" if not s.drift else "[red]" + "\n".join(s.drift) + "[/]")
        table.add_row(s.service, s.database, _short(s.current), _short(s.head),
                      f"[yellow]{s.pending}[/]" if s.pending else "0", drift)
    console.print(table)
    raise typer.Exit(1 if behind else 0)


def _report(results: list[Result], verb: str) -> None:
    table = Table(header_style="bold")
    for column in ("service", "from", "to", "revisions", "result"):
        table.add_column(column)
    failed = False
    for r in results:
        failed |= not r.ok
        if not r.ok:
            outcome = f"[red]failed, rolled back[/]: {r.error}"
            if r.applied:
                outcome += f" (committed before it: {', '.join(r.applied)})"
            if r.fix:
                outcome += f"\n  fix: {r.fix}"
        elif r.adopted:
            outcome = "[green]adopted[/]: its tables already matched head; stamped"
        else:
            outcome = f"[green]{verb}[/] in {r.seconds:.2f}s" if r.applied or r.framework else "up to date"
        # isles' own steps (isles:core:2) follow the service's revisions
        done = [*r.applied, *r.framework]
        table.add_row(r.service, _short(r.before), _short(r.after), ", ".join(done) or "-", outcome)
    console.print(table)
    raise typer.Exit(1 if failed else 0)


@app.command("up")
def up_command(system_path: Optional[str] = SystemOpt, service: Optional[List[str]] = ServiceOpt,
               to: str = typer.Option("head", "--to", help="Target revision (default: head).")) -> None:
    """Apply pending revisions, one transaction per service; a failure rolls back only that service."""
    from isles.migrations import upgrade

    system = load_system(system_path)
    with console.status("migrating ..."):
        results = run(upgrade(system, service or None, to))
    _report(results, "upgraded")


@app.command("down")
def down_command(system_path: Optional[str] = SystemOpt, service: Optional[List[str]] = ServiceOpt,
                 to: str = typer.Option("-1", "--to",
                                        help="Target revision, 'base', or -N steps (default: -1).")) -> None:
    """Undo revisions, one transaction per service; irreversible revisions are refused with their reason."""
    from isles.migrations import downgrade

    system = load_system(system_path)
    if not service and to == "base":
        console.print("[yellow]downgrading every service to base drops all their tables[/]")
    with console.status("migrating ..."):
        results = run(downgrade(system, service or None, to))
    _report(results, "downgraded")


@app.command("new")
def new_command(service: str = typer.Option(..., "--service", help="The service the revision belongs to."),
                message: str = typer.Option(..., "-m", "--message", help="What the revision does."),
                empty: bool = typer.Option(False, "--empty", help="Do not autogenerate; write an empty revision."),
                system_path: Optional[str] = SystemOpt) -> None:
    """Autogenerate the next revision from this service's models only (its database must be at head)."""
    from isles.migrations import new_revision

    system = load_system(system_path)
    path = run(new_revision(system, service, message, autogenerate=not empty))
    if path is None:
        console.print(f"{service}: the models match the database; no revision written")
        return
    console.print(f"{service}: wrote [bold]{path}[/] - review it, then `isles migrate verify` and `isles lint`")


@app.command("verify")
def verify_command(system_path: Optional[str] = SystemOpt, service: Optional[List[str]] = ServiceOpt) -> None:
    """Upgrade -> downgrade -> upgrade every revision on a scratch database and compare schemas."""
    from isles.migrations import targets, verify

    system = load_system(system_path)
    names = [t.name for t in targets(system, service or None)]
    reports = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        task = progress.add_task("verifying", total=len(names))
        for name in names:
            progress.update(task, description=f"verifying {name}")
            reports += run(verify(system, [name]))
            progress.advance(task)
    failed = False
    for report in reports:
        for rev, reason in report.skipped.items():
            console.print(f"{report.service}: {rev} skipped, irreversible: {reason}")
        if report.ok:
            console.print(f"[green]ok[/] {report.service}: {len(report.checked)} revision(s) round-trip")
        else:
            failed = True
            for problem in report.problems:
                console.print(f"[red]FAIL[/] {report.service}: {problem}", highlight=False)
    if failed:
        fail("some downgrades do not restore the schema")
