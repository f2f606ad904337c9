"""Where each service's database lives, read from the environment.

Resolution order for a service named ``work_order``:

1. ``WORK_ORDER_DATABASE_URL`` (or its alias ``WORK_ORDER_DB_URL``, seed 003's spelling) - that
   service's own database (optionally ``?currentSchema=<schema>`` or ``?schema=<schema>`` to use
   one schema of it);
2. ``DATABASE_URL`` - one shared PostgreSQL database, one schema per service (named after it);
3. nothing set - a SQLite file per service in ``ISLES_DATA_DIR`` (default ``./data``).

Plain ``postgresql://user:pass@host/db`` URLs, as the seeds write them, are accepted and given
the asyncpg driver. Passwords never leave this module unmasked: use :func:`mask_url`.

Each service has its own connection pool (see :class:`PoolSettings` for its settings and their
URL parameters, such as seed 004's ``?connection_limit=10&pool_timeout=10``). SQLite commits are
fsynced (``synchronous=FULL``) unless ``ISLES_SQLITE_SYNCHRONOUS=normal`` trades that for speed.
"""
from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping
from urllib.parse import urlsplit

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from isles.errors import ConfigurationError

log = logging.getLogger("isles.config")

Topology = Literal["sqlite-file", "database-per-service", "schema-per-service"]
SqliteSynchronous = Literal["FULL", "NORMAL"]

_SERVICE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# URL query parameters we translate or drop before handing the URL to the driver.
_SCHEMA_PARAMS = ("currentSchema", "currentschema", "schema")
# Pool parameters (Prisma's spelling, as seed 004 writes them) -> the pool setting they give.
_POOL_PARAMS = {"connection_limit": "max", "pool_min": "min", "pool_timeout": "timeout"}
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg2",
                     "postgresql+psycopg", "postgresql+pg8000"}


def env_prefix(service: str) -> str:
    """``work_order`` -> ``WORK_ORDER`` (the prefix of that service's settings)."""
    return service.upper().replace("-", "_")


#: ``//user:password@`` up to the LAST ``@`` before a space or quote: a password with an unescaped
#: ``@`` (or ``/``) in it is hidden whole, not cut at its first ``@`` as a URL parser would.
_USERINFO_PASSWORD = re.compile(r"(//[^/?#@:\s'\"]*):[^\s'\"]*@")


def mask_url(url: URL | str) -> str:
    """The URL as text with its password replaced by ``***`` - also for URLs no parser accepts
    (``redis//:pw@host``, ``postgresql://u:p@ss@host/db``, a port that is not a number)."""
    if isinstance(url, URL):
        text = url.render_as_string(hide_password=True)
    else:
        text = str(url)
    return _USERINFO_PASSWORD.sub(r"\1:***@", text)


def _port_problem(port: str | int | None) -> str | None:
    """Why ``port`` (as written in a URL or a host:port pair) is not a TCP port; None if it is."""
    if port is None or port == "":
        return None
    if not str(port).isdigit() or not 1 <= int(port) <= 65535:
        return f"port {str(port)!r} is not a number from 1 to 65535"
    return None


def check_redis_url(raw: str, setting: str = "REDIS_URL") -> None:
    """Refuse a Redis URL that redis-py would misread or fail on later, with the fix.

    Checked when settings are read, so a typo is one line at start-up - not a traceback from
    inside the client, nor (when the URL does not parse as one) a message that shows it whole,
    password included.
    """
    fix = f"write it as {setting}=redis://[:PASSWORD@]HOST:6379/0 (rediss:// for TLS, unix:///path/to.sock)"
    text = raw.strip()
    try:
        parts = urlsplit(text)
        _ = parts.port  # raises ValueError for a port that is not one
    except ValueError:
        port_text = re.sub(r".*@", "", text.split("//", 1)[-1]).split("/", 1)[0].rpartition(":")[2]
        raise ConfigurationError(f"{setting} has a bad port: {_port_problem(port_text) or 'not a port'} "
                                 f"({mask_url(text)!r})", fix=fix) from None
    if parts.scheme not in ("redis", "rediss", "unix", "memory") or "://" not in text:
        raise ConfigurationError(f"{setting} is not a redis://, rediss:// or unix:// URL: {mask_url(text)!r}", fix=fix)
    if parts.scheme in ("redis", "rediss") and not parts.hostname:
        raise ConfigurationError(f"{setting} names no host: {mask_url(text)!r}", fix=fix)


def check_broker_list(raw: str, setting: str = "KAFKA_BROKERS") -> list[str]:
    """``host:port[,host:port]`` as a list; an empty entry, a missing host or a bad port is an error."""
    fix = f"write it as {setting}=HOST:9092[,HOST:9092...], or unset it for the in-process transport"
    brokers = []
    for entry in raw.split(","):
        entry = entry.strip().removeprefix("kafka://")
        host, colon, port = entry.rpartition(":")
        if not entry:
            raise ConfigurationError(f"{setting}={raw!r} has an empty entry", fix=fix)
        if not colon or not host.strip("[]"):
            raise ConfigurationError(f"{setting} entry {entry!r} is not HOST:PORT", fix=fix)
        problem = _port_problem(port) if port else "no port is given"
        if problem:
            raise ConfigurationError(f"{setting} entry {entry!r}: {problem}", fix=fix)
        brokers.append(entry)
    return brokers


def check_auth_secret(env: Mapping[str, str]) -> None:
    """A short ``ISLES_AUTH_SECRET`` is refused at start-up: the server used to start, then answer
    every login with a 500 (the secret is first read when a token is issued)."""
    if env.get("ISLES_AUTH_SECRET"):
        from isles.security import auth_secret  # imported late: it needs FastAPI and PyJWT
        auth_secret(env)


#: The per-service settings, after the service's prefix (``WORK_ORDER`` + ``_DATABASE_URL``).
_SERVICE_SETTINGS = ("_DATABASE_URL", "_DB_URL", "_DB_POOL_MIN", "_DB_POOL_SIZE", "_DB_POOL_MAX",
                     "_DB_MAX_OVERFLOW", "_DB_POOL_TIMEOUT")
_warned: set[str] = set()


def settings_for_no_service(env: Mapping[str, str], services: Iterable[str]) -> list[str]:
    """A warning for each ``<SERVICE>_DATABASE_URL``-like setting that names no service of the system.

    A misspelt prefix (``MATERAIL_DATABASE_URL``, ``WORKORDER_DB_URL``) used to be ignored in
    silence: the service then ran on its default (a SQLite file) while the operator believed it
    was on the server they named. The closest real setting is suggested.
    """
    prefixes = {env_prefix(s) for s in services}
    warnings = []
    for name in sorted(env):
        suffix = next((x for x in _SERVICE_SETTINGS if name.endswith(x) and len(name) > len(x)), None)
        if suffix is None or name[: -len(suffix)] in prefixes:
            continue
        if suffix in ("_DB_POOL_MIN", "_DB_POOL_MAX", "_DB_POOL_TIMEOUT", "_DB_POOL_SIZE", "_DB_MAX_OVERFLOW") \
                and name.startswith("ISLES_"):
            continue
        close = difflib.get_close_matches(name[: -len(suffix)], sorted(prefixes), n=1, cutoff=0.6)
        hint = f"did you mean {close[0]}{suffix}? " if close else ""
        warnings.append(f"{name} is set but the system has no service it names ({', '.join(sorted(services))}); "
                        f"it is ignored. fix: {hint}rename or unset it")
    return warnings


def warn_settings_for_no_service(env: Mapping[str, str], services: Iterable[str]) -> None:
    """Log each warning of :func:`settings_for_no_service` once per process."""
    for warning in settings_for_no_service(env, services):
        if warning not in _warned:
            _warned.add(warning)
            log.warning("%s", warning)


@dataclass(frozen=True)
class PoolSettings:
    """How many connections a service's pool holds, and how long a caller waits for one.

    =========  =====================================  ==================  =========
    setting    environment                            URL parameter       default
    =========  =====================================  ==================  =========
    min        ``<SERVICE>_DB_POOL_MIN``              ``pool_min``        5
               (or ``<SERVICE>_DB_POOL_SIZE``)
    max        ``<SERVICE>_DB_POOL_MAX``              ``connection_limit`` min + 5
               (or min + ``<SERVICE>_DB_MAX_OVERFLOW``)
    timeout    ``<SERVICE>_DB_POOL_TIMEOUT``          ``pool_timeout``    30 s
    =========  =====================================  ==================  =========

    SQLAlchemy's pool has no true minimum: it opens connections on demand, keeps up to ``min`` of
    them open once used (its ``pool_size``) and opens up to ``max - min`` more under load that it
    closes when returned (its ``max_overflow``). A service's URL parameter and its environment
    variable may both be set only if they agree: which one wins would otherwise be a guess.
    SQLite ignores all three: each file has exactly one connection (see ``isles.database``).
    """

    min: int = 5
    max: int = 10
    timeout: float = 30.0


@dataclass(frozen=True)
class DatabaseConfig:
    """One service's database: the driver URL, the schema (if any) and the pool."""

    service: str
    url: URL
    schema: str | None
    topology: Topology
    pool: PoolSettings = PoolSettings()
    source: str = "default"  # which setting it came from, for error messages
    #: PostgreSQL: a pooled connection idle longer than this (seconds) is pinged before reuse
    ping_after: float = 1.0
    #: SQLite: FULL fsyncs every commit; NORMAL only at checkpoints (see ``ISLES_SQLITE_SYNCHRONOUS``)
    sqlite_synchronous: SqliteSynchronous = "FULL"

    @property
    def pool_size(self) -> int:
        """Connections kept open once used (SQLAlchemy's ``pool_size``): the pool's min."""
        return self.pool.min

    @property
    def max_overflow(self) -> int:
        """Connections opened beyond ``pool_size`` under load (SQLAlchemy's ``max_overflow``)."""
        return self.pool.max - self.pool.min

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


def _number(name: str, raw: str | None, like: int | float, service: str) -> Any:
    """``raw`` as a number >= 0 parsed like ``like`` (a whole number for an int); None if unset."""
    if raw is None or raw == "":
        return None
    try:
        value = type(like)(raw)
    except ValueError:
        value = -1
    if not value >= 0:  # also refuses nan
        what = "a whole number" if isinstance(like, int) else "a number of seconds"
        raise ConfigurationError(f"{name}={raw!r} is not {what} >= 0", service=service,
                                 fix=f"set {name} to a number such as {like}, or unset it")
    return value


def _number_setting(env: Mapping[str, str], name: str, default: int | float, service: str) -> Any:
    """A setting >= 0, parsed like ``default`` (a whole number for an int default)."""
    value = _number(name, env.get(name), default, service)
    return default if value is None else value


def _agreed(values: dict[str, Any], service: str) -> Any:
    """The one value the settings that are set give (None if none is); a disagreement is an error."""
    given = {name: value for name, value in values.items() if value is not None}
    if len(set(given.values())) > 1:
        listed = ", ".join(f"{name} gives {value}" for name, value in given.items())
        raise ConfigurationError(f"the pool settings disagree: {listed}", service=service,
                                 fix="set it in one place (remove the others)")
    return next(iter(given.values()), None)


def _pool_settings(env: Mapping[str, str], prefix: str, params: Mapping[str, str], *,
                   service: str, url_setting: str | None) -> PoolSettings:
    """The pool from the service's environment and its URL's parameters (see :class:`PoolSettings`)."""
    def param(name: str, like: int | float) -> dict[str, Any]:
        label = f"{name} in {url_setting}"
        return {label: _number(label, params.get(name), like, service)} if url_setting else {}

    def var(suffix: str, like: int | float) -> dict[str, Any]:
        name = f"{prefix}_{suffix}"
        return {name: _number(name, env.get(name), like, service)}

    low = _agreed(var("DB_POOL_MIN", 5) | var("DB_POOL_SIZE", 5) | param("pool_min", 5), service)
    high = _agreed(var("DB_POOL_MAX", 10) | param("connection_limit", 10), service)
    overflow = var("DB_MAX_OVERFLOW", 5)
    if next(iter(overflow.values())) is not None:
        if high is not None:
            raise ConfigurationError(f"both {prefix}_DB_MAX_OVERFLOW and a pool max are set", service=service,
                                     fix=f"set the max alone ({prefix}_DB_POOL_MAX or connection_limit in the URL)")
        high = (5 if low is None else low) + next(iter(overflow.values()))
    timeout = _agreed(var("DB_POOL_TIMEOUT", 30.0) | param("pool_timeout", 30.0), service)
    low = min(5, high) if low is None and high is not None else (5 if low is None else low)
    high = low + 5 if high is None else high
    if high < 1 or low > high:
        raise ConfigurationError(f"the pool's min ({low}) and max ({high}) leave no room for a connection"
                                 if high < 1 else f"the pool's min ({low}) is above its max ({high})",
                                 service=service, fix=f"make {prefix}_DB_POOL_MAX (or connection_limit) at least 1 "
                                                      f"and no smaller than {prefix}_DB_POOL_MIN (or pool_min)")
    return PoolSettings(low, high, 30.0 if timeout is None else timeout)


def _sqlite_synchronous(env: Mapping[str, str], service: str) -> SqliteSynchronous:
    """FULL unless ``ISLES_SQLITE_SYNCHRONOUS=normal`` says otherwise.

    With NORMAL a WAL commit is fsynced only at the next checkpoint, so a power loss can undo a
    consumer's inbox commit after the producer's relay recorded the event as sent - and the event
    is then never delivered again. FULL costs an fsync per commit and keeps promise 2.
    """
    raw = env.get("ISLES_SQLITE_SYNCHRONOUS") or "full"
    value = raw.strip().upper()
    if value not in ("FULL", "NORMAL"):
        raise ConfigurationError(
            f"ISLES_SQLITE_SYNCHRONOUS={raw!r} is not one of full, normal", service=service,
            fix="unset ISLES_SQLITE_SYNCHRONOUS (full: every commit survives a power loss), or set it to "
                "normal (faster commits; a power loss can lose the last ones)")
    return value  # type: ignore[return-value]


def parse_database_url(raw: str, *, service: str, setting: str) -> tuple[URL, str | None]:
    """Parse a URL as written by people into a driver URL and an optional schema.

    Pool parameters (``connection_limit``, ``pool_min``, ``pool_timeout``) are accepted and
    dropped here; :func:`resolve_database` reads them into the service's :class:`PoolSettings`.
    """
    url, schema, _ = _parse_database_url(raw, service=service, setting=setting)
    return url, schema


def _parse_database_url(raw: str, *, service: str, setting: str) -> tuple[URL, str | None, dict[str, str]]:
    """The driver URL, the schema it selects (if any) and its pool parameters."""
    fix = f"write it as postgresql://USER:PASSWORD@HOST:5432/DATABASE or sqlite:///path/to/{service}.db"
    try:
        url = make_url(raw.strip())
    except ArgumentError:
        raise ConfigurationError(f"{setting} is not a database URL: {mask_url(raw)!r}", service=service,
                                 fix=fix) from None
    except ValueError:  # SQLAlchemy parses the port with int()
        raise ConfigurationError(f"{setting} has a port that is not a number from 1 to 65535: {mask_url(raw)!r}",
                                 service=service, fix=fix) from None
    if "@" in (url.host or ""):
        raise ConfigurationError(f"{setting} has an '@' in its password (or user name) that is not escaped: "
                                 f"{mask_url(raw)!r}", service=service,
                                 fix="write '@' in the password as %40 (and ':' as %3A, '/' as %2F)")
    if _port_problem(url.port):
        raise ConfigurationError(f"{setting}: {_port_problem(url.port)}: {mask_url(raw)!r}", service=service, fix=fix)
    driver = url.drivername
    query = dict(url.query)
    schema = None
    for param in _SCHEMA_PARAMS:
        if param in query:
            schema = str(query.pop(param))
    pool = {name: str(query.pop(name)) for name in _POOL_PARAMS if name in query}
    if driver in _POSTGRES_DRIVERS:
        if not url.database:
            raise ConfigurationError(f"{setting} names no database: {mask_url(url)!r}", service=service,
                                     fix="add the database name after the host, e.g. .../orders")
        if "sslmode" in query:  # libpq spelling -> asyncpg spelling
            query["ssl"] = query.pop("sslmode")
        unknown = sorted(set(query) - {"ssl", "application_name"})
        if unknown:
            raise ConfigurationError(
                f"{setting} has parameters the PostgreSQL driver does not accept: {', '.join(unknown)}",
                service=service, fix="remove them; supported: currentSchema (or schema), sslmode, "
                                     "application_name, connection_limit, pool_min, pool_timeout")
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
    return url, schema, pool


def _own_url(env: Mapping[str, str], prefix: str, service: str) -> tuple[str, str] | None:
    """The service's own URL setting and its value: ``<SERVICE>_DATABASE_URL``, else seed 003's
    ``<SERVICE>_DB_URL``. Both set and different is most likely a leftover, so it is logged."""
    own, alias = f"{prefix}_DATABASE_URL", f"{prefix}_DB_URL"
    if env.get(own) and env.get(alias) and env[own].strip() != env[alias].strip():
        log.warning("service '%s': %s and %s are both set and differ; using %s (%s)",
                    service, own, alias, own, mask_url(env[own]))
    for name in (own, alias):
        if env.get(name):
            return name, env[name]
    return None


def resolve_database(service: str, env: Mapping[str, str] | None = None) -> DatabaseConfig:
    """The database a service uses, from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    prefix = env_prefix(service)
    settings = {"ping_after": _number_setting(env, "ISLES_DB_PING_AFTER", 1.0, service),
                "sqlite_synchronous": _sqlite_synchronous(env, service)}
    own = f"{prefix}_DATABASE_URL"
    found = _own_url(env, prefix, service)
    if found is not None:
        setting, raw = found
        url, schema, params = _parse_database_url(raw, service=service, setting=setting)
        pool = _pool_settings(env, prefix, params, service=service, url_setting=setting)
        if url.get_backend_name() == "sqlite":
            topology: Topology = "sqlite-file"
        else:
            topology = "schema-per-service" if schema else "database-per-service"
        return DatabaseConfig(service, url, schema, topology, pool, setting, **settings)
    if env.get("DATABASE_URL"):
        # Its schema parameter, if any, is not used: each service gets the schema named after it.
        url, _, params = _parse_database_url(env["DATABASE_URL"], service=service, setting="DATABASE_URL")
        if url.get_backend_name() == "sqlite":
            raise ConfigurationError(
                "DATABASE_URL points at SQLite, which has no schemas to give each service",
                service=service, fix=f"unset DATABASE_URL (each service then gets its own SQLite file) "
                                     f"or set {own}")
        pool = _pool_settings(env, prefix, params, service=service, url_setting="DATABASE_URL")
        return DatabaseConfig(service, url, service, "schema-per-service", pool, "DATABASE_URL", **settings)
    data_dir = Path(env.get("ISLES_DATA_DIR") or "data")
    url = URL.create("sqlite+aiosqlite", database=str((data_dir / f"{service}.db").absolute()))
    pool = _pool_settings(env, prefix, {}, service=service, url_setting=None)
    return DatabaseConfig(service, url, None, "sqlite-file", pool, "default", **settings)
