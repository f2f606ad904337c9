"""`isles db`: create what each service's database topology needs (files, databases, schemas, roles)."""
from __future__ import annotations

from typing import List, Optional

import typer
from rich.table import Table

from isles.commands.common import SYSTEM_HELP, console, load_system, run

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)


@app.callback()
def _group() -> None:
    """Database provisioning commands."""


@app.command("provision")
def provision_command(
    system_path: Optional[str] = typer.Option(None, "--system", "-s", help=SYSTEM_HELP),
    service: Optional[List[str]] = typer.Option(None, "--service", help="Only these services (repeatable)."),
    print_sql: bool = typer.Option(False, "--print-sql", help="Show the SQL (passwords masked) instead of running it."),
    role_prefix: Optional[str] = typer.Option(None, "--role-prefix", envvar="ISLES_ROLE_PREFIX",
                                              help="Prefix of the role names (default: the system name)."),
) -> None:
    """Create each service's SQLite file, or PostgreSQL database/schema and owner, migrator and app roles.

    Idempotent. Passwords come from <SERVICE>_MIGRATOR_PASSWORD and <SERVICE>_APP_PASSWORD; the
    connection that creates roles and databases is ISLES_ADMIN_DATABASE_URL (default: the service's URL).
    """
    from isles.provision import plan, provision, render_sql

    system = load_system(system_path)
    if print_sql:
        console.print(render_sql(plan(system, service or None, prefix=role_prefix)), highlight=False, markup=False)
        return
    results = run(provision(system, service or None, prefix=role_prefix))
    table = Table(title=f"provisioned {system.name}", header_style="bold")
    for column in ("service", "topology", "database", "statements run"):
        table.add_column(column)
    for r in results:
        table.add_row(r.service, r.topology, r.database, str(r.executed))
    console.print(table)
    for r in results:
        for warning in r.warnings:
            console.print(f"[yellow]warning[/] {r.service}: {warning}", highlight=False)
