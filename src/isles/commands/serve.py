"""`isles serve --service NAME`: one service per process (its API, relay and consumer).

This is how a system outgrows one machine: run each service (or several replicas of it) as its
own process against PostgreSQL and a broker. Replicas of one service share the outbox (relay
bucket claims) and the consumer group (the broker balances partitions or stream entries).
"""
from __future__ import annotations

from typing import Optional

import typer

from isles.commands.common import SYSTEM_HELP, console, ensure_port_free, fail, load_system, run

app = typer.Typer()


@app.command("serve")
def serve_command(service: str = typer.Option(..., "--service", help="The service this process runs."),
                  system_path: Optional[str] = typer.Option(None, "--system", "-s", help=SYSTEM_HELP),
                  host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
                  port: int = typer.Option(8000, envvar="PORT", help="Port to listen on."),
                  migrate: bool = typer.Option(True, help="Apply the service's migrations first.")) -> None:
    """Run ONE service in this process: its HTTP API, its relay and its consumers.

    Events must cross processes, so a broker is required: KAFKA_BROKERS=host:9092, or
    ISLES_TRANSPORT=redis with REDIS_URL. The service's database comes from <SERVICE>_DATABASE_URL
    (or DATABASE_URL for schema-per-service).
    """
    import uvicorn

    from isles.api import create_app, service_prefix
    from isles.transport.factory import transport_from_env

    ensure_port_free(host, port)
    system = load_system(system_path, check=True)
    if service not in system.services:
        fail(f"system '{system.name}' has no service {service!r}; services: {', '.join(system.services)}", 2)
    try:
        transport = transport_from_env(system.env)
    except Exception as exc:
        fail(str(exc), 2)
    if transport.name == "memory":
        fail(f"service '{service}': `isles serve` runs one service per process, so events must cross "
             "processes\n  fix: set KAFKA_BROKERS=host:9092, or ISLES_TRANSPORT=redis and REDIS_URL "
             "(or use `isles run` for everything in one process)", 2)
    system._transport = transport

    async def start() -> None:
        if migrate:
            from isles.migrations import ensure_head
            await ensure_head(system, services=[service])
        await system.start(services=[service], create_tables=not migrate)
        config = system.runtime(service).database.config
        console.print(f"service [bold]{service}[/] on http://{host}:{port}{service_prefix(service)} "
                      f"(docs http://{host}:{port}/docs)  database {config.display}  transport {transport.describe()}")

    async def serve() -> None:
        # Start before uvicorn does: a wrong setting is then one clear line (see run()), not a traceback.
        try:
            await start()
        except BaseException:
            await system.stop()
            raise
        app_ = create_app(system, services=[service], title=f"{system.name}.{service} (isles)")
        await uvicorn.Server(uvicorn.Config(app_, host=host, port=port, log_level="warning")).serve()

    run(serve())
