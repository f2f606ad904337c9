"""`isles sagas list|show ID|retry ID`: the sagas each service runs, their history, and a way out of `failed`."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from isles.commands.common import SYSTEM_HELP, console, fail, load_system, run

if TYPE_CHECKING:
    from isles.sagas import SagaInstance
    from isles.system import System

app = typer.Typer(help="Inspect sagas (state, step, history) and resume one whose compensation failed.",
                  no_args_is_help=True)
SystemOpt = typer.Option(None, "--system", "-s", help=SYSTEM_HELP)
_COLOURS = {"completed": "green", "compensated": "yellow", "failed": "red", "running": "cyan",
            "compensating": "magenta"}


def _saga_services(system: System) -> list[str]:
    return [name for name, service in system.services.items() if getattr(service, "saga_engine", None)]


async def _find(system: System, saga_id: str | None = None,
                status: str | None = None) -> list[tuple[str, SagaInstance]]:
    from isles.sagas import instances
    found = []
    for name in _saga_services(system):
        for st in await instances(system.runtime(name), status=status, saga_id=saga_id):
            found.append((name, st))
    return found


def _step_name(system: System, service: str, st: SagaInstance) -> str:
    engine = system.services[service].saga_engine
    assert engine is not None  # only services with sagas have instances
    saga = engine.definitions.get((st.name, st.version))
    if saga is None or not 0 <= st.step < len(saga.steps):
        return "-" if st.step < 0 or saga is None else "(end)"
    return saga.steps[st.step].name


@app.command("list")
def list_command(system_path: str | None = SystemOpt,
                 status: str | None = typer.Option(None, help="Only sagas in this state (running, compensating, "
                                                              "completed, compensated, failed).")) -> None:
    """Every saga of every service: state, step, attempts, last error."""
    system = load_system(system_path)
    services = _saga_services(system)
    if not services:
        console.print("no service of the system declares sagas")
        return

    async def go() -> list[Any]:
        async with system.running(services=services, relays=False, consumers=False):
            return [(name, st, _step_name(system, name, st)) for name, st in await _find(system, status=status)]

    rows = run(go())
    if not rows:
        console.print("no sagas")
        return
    table = Table(header_style="bold")
    for column in ("service", "id", "saga", "version", "status", "step", "attempts", "updated"):
        table.add_column(column, no_wrap=column != "id")
    table.add_column("error", overflow="fold", min_width=20)
    for name, st, step in rows:
        colour = _COLOURS.get(st.status, "white")
        table.add_row(name, st.id, st.name, str(st.version), f"[{colour}]{st.status}[/]", step, str(st.attempts),
                      str(st.updated_at)[:19], (st.error or "").splitlines()[0][:80] if st.error else "")
    console.print(table)
    console.print("details: isles sagas show ID   resume a failed one: isles sagas retry ID")


@app.command("show")
def show_command(saga_id: str = typer.Argument(..., help="A saga id from `isles sagas list`."),
                 system_path: str | None = SystemOpt) -> None:
    """One saga: its state and data, and its history (the commands it sent, the replies it received)."""
    system = load_system(system_path)

    async def go() -> list[Any]:
        async with system.running(services=_saga_services(system), relays=False, consumers=False):
            return [(name, st, _step_name(system, name, st)) for name, st in await _find(system, saga_id=saga_id)]

    found = run(go())
    if not found:
        fail(f"no saga {saga_id!r} in any service (see `isles sagas list`)")
    name, st, step = found[0]
    facts = Table(show_header=False, title=f"saga {st.id}")
    facts.add_column("field", style="bold")
    facts.add_column("value", overflow="fold")
    for label, value in (("service", name), ("saga", f"{st.name} (version {st.version})"),
                         ("status", f"[{_COLOURS.get(st.status, 'white')}]{st.status}[/]"), ("step", step),
                         ("attempts", str(st.attempts)), ("waiting for", st.waiting_for or "-"),
                         ("started", str(st.started_at)[:19]), ("updated", str(st.updated_at)[:19]),
                         ("data", json.dumps(st.data)), ("error", st.error or "-")):
        facts.add_row(label, value)
    console.print(facts)
    history = Table(title="history", header_style="bold")
    for column in ("at", "event", "step", "type", "message id", "ok", "detail"):
        history.add_column(column, overflow="fold")
    for entry in st.history:
        ok = entry.get("ok")
        history.add_row(entry.get("at", "")[:23], entry.get("event", ""), entry.get("step", ""),
                        entry.get("type", ""), entry.get("id", ""),
                        "" if ok is None else ("yes" if ok else "[red]no[/]"),
                        entry.get("reason") or entry.get("detail") or "")
    console.print(history)


@app.command("retry")
def retry_command(saga_id: str = typer.Argument(..., help="The id of a failed saga."),
                  system_path: str | None = SystemOpt) -> None:
    """Resume the compensation of a saga that failed (its dead letter is resolved in the same transaction).

    The compensation command is committed to the service's outbox; its running relay sends it.
    """
    system = load_system(system_path)

    async def go() -> tuple[str | None, bool]:
        async with system.running(services=_saga_services(system), relays=False, consumers=False):
            found = await _find(system, saga_id=saga_id)
            if not found:
                return None, False
            name = found[0][0]
            async with system.services[name].unit_of_work() as uow:
                engine = system.services[name].saga_engine
                assert engine is not None  # _find looks only in services with sagas
                resumed = await engine.retry(uow, saga_id)
            return name, resumed

    name, resumed = run(go())
    if name is None:
        fail(f"no saga {saga_id!r} in any service (see `isles sagas list`)")
    if not resumed:
        fail(f"saga {saga_id} is not failed; only a failed saga is retried (see `isles sagas show {saga_id}`)")
    console.print(f"{name}: saga {saga_id} compensates again (see `isles sagas show {saga_id}`)")
