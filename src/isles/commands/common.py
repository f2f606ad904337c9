"""What every `isles` command needs: finding the System, running a coroutine, printing errors."""
from __future__ import annotations

import asyncio
import errno
import importlib
import os
import socket
import sys
import tomllib
from pathlib import Path
from typing import Any, Awaitable, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from isles.errors import ConfigurationError, IslesError
from isles.system import System

T = TypeVar("T")
# Piped into a file or CI log there is no terminal to fit: Rich would assume 80 columns and cut
# tables short, so give them room (COLUMNS still wins when it is set).
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(width=_WIDTH)
err_console = Console(stderr=True, width=_WIDTH)

SYSTEM_HELP = ("The System to act on, as module:attribute (e.g. shop.system:system). "
               "Default: $ISLES_SYSTEM, else the tool.isles system setting in ./pyproject.toml.")
_HOW_TO_NAME_A_SYSTEM = ("pass --system package.module:system, set ISLES_SYSTEM=package.module:system, "
                         "or add `[tool.isles]` with `system = \"package.module:system\"` to ./pyproject.toml")


def system_spec(explicit: str | None = None) -> str:
    """The System to act on: ``--system``, else ``$ISLES_SYSTEM``, else ``[tool.isles] system`` in
    ./pyproject.toml. There is no built-in default: isles serves any system, so guessing one
    would run the wrong code, or fail on an import that says nothing about the missing setting."""
    if explicit:
        return explicit
    if os.environ.get("ISLES_SYSTEM"):
        return os.environ["ISLES_SYSTEM"]
    pyproject = Path("pyproject.toml")
    if pyproject.exists():
        try:
            settings = tomllib.loads(pyproject.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"./pyproject.toml is not valid TOML ({exc})",
                                     fix="correct it, or pass --system / set ISLES_SYSTEM") from None
        spec = settings.get("tool", {}).get("isles", {}).get("system")
        if spec:
            return str(spec)
    raise ConfigurationError("no System is named, so isles does not know what to run",
                             fix=_HOW_TO_NAME_A_SYSTEM)


def load_object(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"{spec!r} is not of the form module:attribute",
                                 fix="write it like package.module:system")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"cannot import {module_name!r} ({exc})",
                                 fix="install the package (make install) or correct --system / ISLES_SYSTEM") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigurationError(f"module {module_name!r} has no {attribute!r}",
                                 fix="point --system / ISLES_SYSTEM at the System object") from None


def load_system(spec: str | None = None, *, check: bool = False) -> System:
    """The System named by ``spec``; a wrong name is a clear message and exit code 2.

    ``check``: also check its settings (see :func:`check_settings`), for the commands that will
    open its databases or its transport."""
    try:
        if (os.environ.get("REDIS_URL") or "").strip():  # a cache built at import would trip on it
            from isles.config import check_redis_url
            check_redis_url(os.environ["REDIS_URL"], "REDIS_URL")
        system = _load_system(spec)
        if check:
            check_settings(system)
        return system
    except IslesError as exc:
        _print_error(str(exc))
        raise typer.Exit(2) from None


def check_settings(system: System) -> None:
    """Read every setting the system will use, before anything is opened; raise the first error.

    A setting found wrong half-way through start-up used to leave what was already open
    (a SQLite connection, a pool) behind, and the command hung after printing its error; some
    (a port that is not a number, a broker list without a host) surfaced as a traceback from
    inside a driver. Reading them all first makes each one line and exit code 2, at once.
    Settings that name no service of the system are warned about (one line each).
    """
    from isles.config import check_auth_secret, check_redis_url, resolve_database, warn_settings_for_no_service
    from isles.transport.factory import transport_from_env

    env = system.env
    warn_settings_for_no_service(env, system.services)
    for name in system.services:
        resolve_database(name, env)
    transport_from_env(env)  # parses; connects only when started
    if (env.get("REDIS_URL") or "").strip():
        check_redis_url(env["REDIS_URL"], "REDIS_URL")
    check_auth_secret(env)


def _print_error(message: str) -> None:
    """``error: <message>``; the message is text, not Rich markup (``[tool.isles]``, ``[::1]``)."""
    err_console.print(f"[bold red]error[/]: {escape(message)}", highlight=False)


def _load_system(spec: str | None) -> System:
    obj = load_object(system_spec(spec))
    system = obj() if callable(obj) and not isinstance(obj, System) else obj
    if not isinstance(system, System):
        raise ConfigurationError(f"{system_spec(spec)!r} is a {type(system).__name__}, not an isles System",
                                 fix="point --system / ISLES_SYSTEM at a System")
    return system


def run(coro: Awaitable[T]) -> T:
    """Run a command's coroutine; an IslesError becomes a clear message and exit code 2."""
    try:
        return asyncio.run(coro)  # type: ignore[arg-type]
    except IslesError as exc:
        _print_error(str(exc))
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def ensure_port_free(host: str, port: int) -> None:
    """Exit with code 2 and one line if ``host:port`` cannot be listened on.

    Checked before the system starts: otherwise a second `isles run` migrates, prints its banner
    and only then dies with uvicorn's bare "address already in use". The test bind mirrors
    uvicorn's own (SO_REUSEADDR, so sockets in TIME_WAIT do not count as busy).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        how = "choose another with PORT=9000 make run, or --port 9000"
        if exc.errno == errno.EADDRINUSE:
            fail(f"port {port} on {host} is already in use (another `isles run`?); {how}", 2)
        fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}); {how}, or another --host", 2)


def fail(message: str, code: int = 1) -> NoReturn:
    _print_error(message)
    raise typer.Exit(code)


__all__ = ["check_settings", "console", "err_console", "ensure_port_free", "fail", "load_system", "run", "system_spec",
           "SYSTEM_HELP", "sys"]
