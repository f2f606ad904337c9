"""``isles db provision``: give every service the storage its topology needs, and nothing more.

* ``sqlite-file``: the file (and its folder).
* ``database-per-service``: a PostgreSQL database per service, owned by the service's owner role;
  PUBLIC loses CONNECT, so other services' roles cannot even connect.
* ``schema-per-service``: one PostgreSQL database, a schema per service owned by its owner role;
  PUBLIC loses CONNECT on the database, CREATE on ``public`` and every right on the service schemas.

Each PostgreSQL service gets three roles named ``<prefix>_<service>_{owner,migrator,app}``:
``owner`` (NOLOGIN) owns the objects; ``migrator`` (LOGIN) is a member of owner and acts as it by
default (``ALTER ROLE ... SET role``), so tables it creates belong to the owner; ``app`` (LOGIN)
gets SELECT/INSERT/UPDATE/DELETE on the owner's tables and USAGE on its sequences through default
privileges - no DDL, no other service's schema. Passwords come from ``<SERVICE>_MIGRATOR_PASSWORD``
and ``<SERVICE>_APP_PASSWORD`` in the environment, never from code, and are masked when printed.

Everything is idempotent: running it again converges roles, owners and grants to the same state.
Roles are cluster-global, so ``prefix`` (default: the system name) keeps systems apart.

**Maintenance databases.** PostgreSQL lets every role (PUBLIC) connect to ``postgres`` and
``template1`` and create temporary tables there, so a service's role could open a session outside
its own database. A grant cannot be taken from one role while PUBLIC holds it, so provisioning
revokes CONNECT and TEMPORARY on them from PUBLIC and grants CONNECT back to the role it runs as
(the admin must keep reaching ``postgres``). Superusers are not affected; any other role that
needs the maintenance database (a monitoring agent, say) needs its own
``GRANT CONNECT ON DATABASE postgres TO ...``. CREATE DATABASE still works: it copies
``template1`` without connecting to it, and a new database starts with the default privileges.
The step is only done where the admin owns the database (or is a superuser); otherwise PostgreSQL
leaves the privileges as they are with a warning, and ``isles audit-isolation`` reports it.
``ISLES_MAINTENANCE_DATABASES`` lists the databases (comma-separated, default
``postgres,template1``); set it empty to leave a server you share with others alone. The names of
all databases stay visible to every role: ``pg_database`` is readable by all, and PostgreSQL
clients need it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import create_async_engine

from isles.config import DatabaseConfig, env_prefix, resolve_database
from isles.database import Database, is_connection_error
from isles.errors import ConfigurationError, DatabaseUnavailable
from isles.system import System

_PASSWORD = "\x00password\x00"  # placeholder inside planned SQL, replaced only when executed
MAINTENANCE_DATABASES = "ISLES_MAINTENANCE_DATABASES"
_DEFAULT_MAINTENANCE = ("postgres", "template1")


def maintenance_databases(env: Mapping[str, str]) -> tuple[str, ...]:
    """The databases no service role may connect to (``ISLES_MAINTENANCE_DATABASES``; empty: none)."""
    raw = env.get(MAINTENANCE_DATABASES)
    if raw is None:
        return _DEFAULT_MAINTENANCE
    return tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))


@dataclass(frozen=True)
class Roles:
    owner: str
    migrator: str
    app: str

    def all(self) -> tuple[str, str, str]:
        return (self.owner, self.migrator, self.app)


def role_names(prefix: str, service: str) -> Roles:
    base = f"{prefix}_{service}"
    if len(base.encode()) + len("_migrator") > 63:
        raise ConfigurationError(f"role names {base}_* exceed PostgreSQL's 63-byte limit", service=service,
                                 fix="use a shorter --role-prefix")
    return Roles(f"{base}_owner", f"{base}_migrator", f"{base}_app")


@dataclass(frozen=True)
class Statement:
    """One SQL statement to run in ``database`` (None: the server's maintenance database)."""

    database: str | None
    sql: str
    secret: str | None = None  # the password to substitute for the placeholder
    unless_database_exists: str | None = None  # CREATE DATABASE runs only when it is missing
    if_database_exists: str | None = None  # runs only when this database exists

    def render(self, reveal: bool = False) -> str:
        if self.secret is None:
            return self.sql
        value = self.secret.replace("'", "''") if reveal else "***"
        return self.sql.replace(_PASSWORD, value)


@dataclass
class ServicePlan:
    service: str
    config: DatabaseConfig
    roles: Roles | None
    statements: list[Statement] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Provisioned:
    service: str
    topology: str
    database: str
    executed: int
    warnings: list[str]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _role_sql(roles: Roles, env: Mapping[str, str], service: str, plan: ServicePlan) -> None:
    add = plan.statements.append
    for role, login in ((roles.owner, False), (roles.migrator, True), (roles.app, True)):
        attrs = ("LOGIN" if login else "NOLOGIN") + " NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"
        add(Statement(None, f"DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {_lit(role)}) "
                            f"THEN CREATE ROLE {_q(role)} {attrs}; END IF; END $$"))
        add(Statement(None, f"ALTER ROLE {_q(role)} {attrs}"))
    for role, kind in ((roles.migrator, "MIGRATOR"), (roles.app, "APP")):
        setting = f"{env_prefix(service)}_{kind}_PASSWORD"
        password = env.get(setting)
        if password:
            add(Statement(None, f"ALTER ROLE {_q(role)} PASSWORD '{_PASSWORD}'", secret=password))
        else:
            plan.warnings.append(f"{setting} is not set: {role} has no password and cannot log in with one")
    add(Statement(None, f"GRANT {_q(roles.owner)} TO {_q(roles.migrator)}"))


def _maintenance_sql(databases: Iterable[str]) -> list[Statement]:
    """Keep service roles out of the maintenance databases (see the module docstring)."""
    statements = []
    for db in databases:
        statements.append(Statement(None, f"REVOKE CONNECT, TEMPORARY ON DATABASE {_q(db)} FROM PUBLIC",
                                    if_database_exists=db))
        statements.append(Statement(None, f"GRANT CONNECT ON DATABASE {_q(db)} TO CURRENT_USER",
                                    if_database_exists=db))
    return statements


def _schema_sql(database: str, schema: str, roles: Roles) -> list[Statement]:
    s, owner, app = _q(schema), _q(roles.owner), _q(roles.app)
    return [Statement(database, sql) for sql in (
        f"CREATE SCHEMA IF NOT EXISTS {s} AUTHORIZATION {owner}",
        f"ALTER SCHEMA {s} OWNER TO {owner}",
        f"REVOKE ALL ON SCHEMA {s} FROM PUBLIC",
        f"GRANT USAGE ON SCHEMA {s} TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {s} "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA {s} GRANT USAGE, SELECT ON SEQUENCES TO {app}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {app}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {app}",
    )]


def plan(system: System, services: Iterable[str] | None = None, env: Mapping[str, str] | None = None,
         prefix: str | None = None) -> list[ServicePlan]:
    """What provisioning would do, per service, without connecting anywhere."""
    env = system.env if env is None else env
    prefix = prefix or env.get("ISLES_ROLE_PREFIX") or system.name
    names = list(services) if services else list(system.services)
    plans = []
    for name in names:
        system.service(name)
        config = resolve_database(name, env)
        if config.dialect == "sqlite":
            plans.append(ServicePlan(name, config, None))
            continue
        roles = role_names(prefix, name)
        result = ServicePlan(name, config, roles)
        _role_sql(roles, env, name, result)
        result.statements.extend(_maintenance_sql(maintenance_databases(env)))
        db = config.url.database
        assert db is not None  # resolve_database refuses a PostgreSQL URL that names no database
        owner, migrator, app = (_q(r) for r in roles.all())
        add = result.statements.append
        if config.topology == "database-per-service":
            add(Statement(None, f"CREATE DATABASE {_q(db)} OWNER {owner}", unless_database_exists=db))
            add(Statement(None, f"ALTER DATABASE {_q(db)} OWNER TO {owner}"))
        else:
            add(Statement(None, f"CREATE DATABASE {_q(db)}", unless_database_exists=db))
        add(Statement(None, f"REVOKE ALL ON DATABASE {_q(db)} FROM PUBLIC"))
        add(Statement(None, f"GRANT CONNECT ON DATABASE {_q(db)} TO {migrator}, {app}"))
        add(Statement(None, f"ALTER ROLE {migrator} IN DATABASE {_q(db)} SET role = {_lit(roles.owner)}"))
        schema = config.schema or "public"
        for role in (migrator, app):
            add(Statement(None, f"ALTER ROLE {role} IN DATABASE {_q(db)} SET search_path = {_lit(schema)}"))
        add(Statement(db, "REVOKE CREATE ON SCHEMA public FROM PUBLIC"))
        if config.topology == "database-per-service":
            add(Statement(db, "REVOKE ALL ON SCHEMA public FROM PUBLIC"))
        result.statements.extend(_schema_sql(db, schema, roles))
        plans.append(result)
    return plans


def render_sql(plans: list[ServicePlan]) -> str:
    """The plan as a psql script, passwords masked (what ``--print-sql`` shows)."""
    lines: list[str] = []
    for p in plans:
        lines.append(f"-- service {p.service}: {p.config.topology}, {p.config.display}")
        if p.roles is None:
            lines.append(f"-- nothing to run: the SQLite file {p.config.sqlite_path} is created on provision")
            continue
        current: str | None = "\x00"
        for st in p.statements:
            if st.database != current:
                current = st.database
                lines.append(f"\\connect {current or 'postgres'}")
            note = "  -- only when the database is missing" if st.unless_database_exists else ""
            note = "  -- if the database exists" if st.if_database_exists else note
            lines.append(st.render(reveal=False) + ";" + note)
        lines.extend(f"-- warning: {w}" for w in p.warnings)
        lines.append("")
    return "\n".join(lines)


def _admin_url(config: DatabaseConfig, env: Mapping[str, str], database: str | None) -> URL:
    raw = env.get("ISLES_ADMIN_DATABASE_URL")
    if raw:
        from isles.config import parse_database_url
        base, _ = parse_database_url(raw, service=config.service, setting="ISLES_ADMIN_DATABASE_URL")
    else:
        base = config.url
    return base.set(database=database or (base.database if raw else "postgres"))


def _batches(p: ServicePlan) -> list[tuple[str | None, list[Statement], bool]]:
    """(database, statements, in_transaction): CREATE DATABASE cannot run in a transaction, so it
    runs alone; everything between runs in one transaction per database."""
    batches: list[tuple[str | None, list[Statement], bool]] = []
    for st in p.statements:
        alone = st.unless_database_exists is not None
        if alone or not batches or batches[-1][0] != st.database or not batches[-1][2]:
            batches.append((st.database, [st], not alone))
        else:
            batches[-1][1].append(st)
    return batches


async def _execute(p: ServicePlan, env: Mapping[str, str]) -> int:
    executed = 0
    for database, statements, in_transaction in _batches(p):
        url = _admin_url(p.config, env, database)
        engine = create_async_engine(url, isolation_level="READ COMMITTED" if in_transaction else "AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                for st in statements:
                    if st.unless_database_exists or st.if_database_exists:
                        found = await conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                                  {"n": st.unless_database_exists or st.if_database_exists})
                        if bool(found) == bool(st.unless_database_exists):
                            continue
                    await conn.exec_driver_sql(st.render(reveal=True))
                    executed += 1
                if in_transaction:
                    await conn.commit()
        except Exception as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            if is_connection_error(exc):
                raise DatabaseUnavailable(
                    f"cannot connect to provision it as {url.username or 'the default user'}: {reason}",
                    service=p.service,
                    fix="set ISLES_ADMIN_DATABASE_URL to a role that may create roles and databases") from None
            raise ConfigurationError(
                f"provisioning failed (the failing step was rolled back): {reason}", service=p.service,
                fix="connect as a role with CREATEROLE and CREATEDB (ISLES_ADMIN_DATABASE_URL), then run it "
                    "again: it is idempotent") from None
        finally:
            await engine.dispose()
    return executed


async def provision(system: System, services: Iterable[str] | None = None, env: Mapping[str, str] | None = None,
                    prefix: str | None = None) -> list[Provisioned]:
    """Create or converge every selected service's database, schema and roles (idempotent)."""
    env = system.env if env is None else env
    results = []
    for p in plan(system, services, env, prefix):
        if p.roles is None:
            database = Database(p.config)  # creates the folder; connecting creates the file
            try:
                async with database.engine.connect():
                    pass
            finally:
                await database.dispose()
            results.append(Provisioned(p.service, p.config.topology, p.config.display, 0, []))
            continue
        executed = await _execute(p, env)
        results.append(Provisioned(p.service, p.config.topology, p.config.display, executed, p.warnings))
    return results
