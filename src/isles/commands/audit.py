"""`isles audit-isolation`: check the live PostgreSQL catalogs against the isolation promise."""
from __future__ import annotations

from typing import List, Optional

import typer
from rich.table import Table

from isles.commands.common import SYSTEM_HELP, console, load_system, run

app = typer.Typer(add_completion=False)


@app.command("audit-isolation")
def audit_isolation_command(
    system_path: Optional[str] = typer.Option(None, "--system", "-s", help=SYSTEM_HELP),
    service: Optional[List[str]] = typer.Option(None, "--service", help="Only these services (repeatable)."),
    role_prefix: Optional[str] = typer.Option(None, "--role-prefix", envvar="ISLES_ROLE_PREFIX",
                                              help="Prefix of the role names (default: the system name)."),
) -> None:
    """Report schema/database owners, grants, PUBLIC privileges and cross-schema foreign keys that break isolation.

    Exits 1 when anything is found (use it in CI after `isles db provision`).
    """
    from isles.audit import audit
    from isles.config import resolve_database

    system = load_system(system_path, check=True)
    names = service or list(system.services)
    if not any(resolve_database(n, system.env).dialect == "postgresql" for n in names):
        console.print("nothing to audit: no selected service uses PostgreSQL "
                      "(set DATABASE_URL or <SERVICE>_DATABASE_URL)")
        return
    found = run(audit(system, service or None, prefix=role_prefix))
    if not found:
        console.print("[green]isolated[/]: no owner, grant, PUBLIC privilege or foreign key crosses a service boundary")
        return
    table = Table(title="isolation violations", header_style="bold")
    for column in ("service", "kind", "object", "problem", "fix"):
        table.add_column(column)
    for v in found:
        table.add_row(v.service, v.kind, v.object, v.detail, v.fix)
    console.print(table)
    raise typer.Exit(1)
