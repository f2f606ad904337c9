"""Where each service's database lives, read from the environment.

Resolution order for a service named ``work_order``:

1. ``WORK_ORDER_DATABASE_URL`` - that service's own database (optionally
   ``?currentSchema=<schema>`` to use one schema of it);
2. ``DATABASE_URL`` - one shared PostgreSQL database, one schema per service (named after it);
3. nothing set - a SQLite file per service in ``ISLES_DATA_DIR`` (default ``./data``).

Plain ``postgresql://user:pass@host/db`` URLs, as the seeds write them, are accepted and given
the asyncpg driver. Passwords never leave this module unmasked: use :func:`mask_url`.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from isles.errors import ConfigurationError

Topology = Literal["sqlite-file", "database-per-service", "schema-per-service"]

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# URL query parameters we translate or drop before handing the URL to the driver.
_SCHEMA_PARAMS = ("currentSchema", "currentschema", "schema")
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg2",
                     "postgresql+psycopg", "postgresql+pg8000"}


def env_prefix(service: str) -> str:
    """``work_order`` -> ``WORK_ORDER`` (the prefix of that service's settings)."""
    return service.upper().replace("-", "_")


def mask_url(url: URL | str) -> str:
    """The URL as text with its password replaced by ``***``."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except ArgumentError:
        return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", str(url))
    return parsed.render_as_string(hide_password=True)


@dataclass(frozen=True)
class DatabaseConfig:
    """One service's database: the driver URL, the schema (if any) and the pool."""

    service: str
    url: URL
    schema: str | None
    topology: Topology
    pool_size: int = 5
    max_overflow: int = 5
    source: str = "default"  # which setting it came from, for error messages
    #: PostgreSQL: a pooled connection idle longer than this (seconds) is pinged before reuse
    ping_after: float = 1.0

    @property
    def dialect(self) -> str:
        return self.url.get_backend_name()

    @property
    def display(self) -> str:
        path = self.sqlite_path
        if path is not None:
            try:
                return f"sqlite:{path.relative_to(Path.cwd())}"
            except ValueError:
                return f"sqlite:{path}"
        text = mask_url(self.url)
        return f"{text} (schema {self.schema})" if self.schema else text

    @property
    def sqlite_path(self) -> Path | None:
        return Path(self.url.database) if self.dialect == "sqlite" and self.url.database else None


def validate_service_name(name: str) -> None:
    if not isinstance(name, str) or not _SERVICE_NAME.match(name):
        raise ConfigurationError(
            f"{name!r} is not a valid service name",
            fix="use lower-case letters, digits and underscores, starting with a letter "
                "(e.g. 'work_order'); it names the service's schema, tables and settings",
        )


def _number_setting(env: Mapping[str, str], name: str, default: int | float, service: str) -> Any:
    """A setting >= 0, parsed like ``default`` (a whole number for an int default)."""
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = type(default)(raw)
    except ValueError:
        value = -1
    if not value >= 0:  # also refuses nan
        what = "a whole number" if isinstance(default, int) else "a number of seconds"
        raise ConfigurationError(f"{name}={raw!r} is not {what} >= 0", service=service,
                                 fix=f"set {name} to a number such as {default}, or unset it")
    return value


def parse_database_url(raw: str, *, service: str, setting: str) -> tuple[URL, str | None]:
    """Parse a URL as written by people into a driver URL and an optional schema."""
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ConfigurationError(
            f"{setting} is not a database URL: {mask_url(raw)!r}", service=service,
            fix=f"write it as postgresql://USER:PASSWORD@HOST:5432/DATABASE or "
                f"sqlite:///path/to/{service}.db",
        ) from None
    driver = url.drivername
    query = dict(url.query)
    schema = None
    for param in _SCHEMA_PARAMS:
        if param in query:
            schema = str(query.pop(param))
    if driver in _POSTGRES_DRIVERS:
        if not url.database:
            raise ConfigurationError(f"{setting} names no database: {mask_url(url)!r}", service=service,
                                     fix="add the database name after the host, e.g. .../mes_material")
        if "sslmode" in query:  # libpq spelling -> asyncpg spelling
            query["ssl"] = query.pop("sslmode")
        unknown = sorted(set(query) - {"ssl", "application_name"})
        if unknown:
            raise ConfigurationError(
                f"{setting} has parameters the PostgreSQL driver does not accept: {', '.join(unknown)}",
                service=service, fix="remove them; supported: currentSchema, sslmode, application_name")
        url = url.set(drivername="postgresql+asyncpg", query=query)
    elif driver in ("sqlite", "sqlite+aiosqlite", "sqlite+pysqlite"):
        url = url.set(drivername="sqlite+aiosqlite", query=query)
        schema = None
    else:
        raise ConfigurationError(
            f"{setting} uses an unsupported database {driver!r}: {mask_url(url)!r}", service=service,
            fix="use a postgresql:// or sqlite:/// URL")
    if schema is not None and not _SCHEMA_NAME.match(schema):
        raise ConfigurationError(f"{setting} selects schema {schema!r}, which is not a plain identifier",
                                 service=service, fix="use lower-case letters, digits and underscores")
    return url, schema


def resolve_database(service: str, env: Mapping[str, str] | None = None) -> DatabaseConfig:
    """The database a service uses, from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    prefix = env_prefix(service)
    pool = _number_setting(env, f"{prefix}_DB_POOL_SIZE", 5, service)
    overflow = _number_setting(env, f"{prefix}_DB_MAX_OVERFLOW", 5, service)
    ping_after = _number_setting(env, "ISLES_DB_PING_AFTER", 1.0, service)
    own = f"{prefix}_DATABASE_URL"
    if env.get(own):
        url, schema = parse_database_url(env[own], service=service, setting=own)
        if url.get_backend_name() == "sqlite":
            topology: Topology = "sqlite-file"
        else:
            topology = "schema-per-service" if schema else "database-per-service"
        return DatabaseConfig(service, url, schema, topology, pool, overflow, own, ping_after)
    if env.get("DATABASE_URL"):
        url, _ = parse_database_url(env["DATABASE_URL"], service=service, setting="DATABASE_URL")
        if url.get_backend_name() == "sqlite":
            raise ConfigurationError(
                "DATABASE_URL points at SQLite, which has no schemas to give each service",
                service=service, fix=f"unset DATABASE_URL (each service then gets its own SQLite file) "
                                     f"or set {own}")
        return DatabaseConfig(service, url, service, "schema-per-service", pool, overflow, "DATABASE_URL", ping_after)
    data_dir = Path(env.get("ISLES_DATA_DIR") or "data")
    url = URL.create("sqlite+aiosqlite", database=str((data_dir / f"{service}.db").absolute()))
    return DatabaseConfig(service, url, None, "sqlite-file", pool, overflow, "default")
