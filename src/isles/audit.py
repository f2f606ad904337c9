"""``isles audit-isolation``: read PostgreSQL's catalogs and report what breaks the isolation promise.

Provisioning sets isolation up; this checks it is still there, because a single hand-typed
``GRANT`` or a foreign key added by a superuser silently couples two services. For each
PostgreSQL service it reports: a database or schema not owned by the service's owner role,
PUBLIC privileges (CONNECT on a database, CREATE on ``public``, anything on a service schema or
table), grants to roles that are not the service's own, other roles made members of its owner,
foreign keys that cross schemas, and a service login role that may connect to (or create
temporary tables in) a maintenance database (``ISLES_MAINTENANCE_DATABASES``, default
``postgres,template1``; see :mod:`isles.provision`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from isles.config import DatabaseConfig, resolve_database
from isles.database import is_connection_error
from isles.errors import DatabaseUnavailable
from isles.provision import Roles, _admin_url, maintenance_databases, role_names
from isles.system import System


@dataclass(frozen=True)
class Violation:
    service: str
    kind: str  # owner | public | grant | membership | foreign-key | maintenance
    object: str
    detail: str
    fix: str


_SUPERUSERS = "SELECT rolname FROM pg_roles WHERE rolsuper"
#: what the app role may hold: on tables (False) and on sequences (True)
_APP_PRIVILEGES = {False: {"SELECT", "INSERT", "UPDATE", "DELETE"}, True: {"USAGE", "SELECT", "UPDATE"}}

_DATABASE = text("""
SELECT d.datname, pg_get_userbyid(d.datdba) AS owner, d.datacl IS NULL AS default_acl,
       COALESCE((SELECT array_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
                                  || ':' || a.privilege_type)
                 FROM aclexplode(d.datacl) a), '{}') AS grants
FROM pg_database d WHERE d.datname = current_database()""")

_SCHEMA = text("""
SELECT n.nspname, pg_get_userbyid(n.nspowner) AS owner,
       COALESCE((SELECT array_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
                                  || ':' || a.privilege_type)
                 FROM aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a), '{}') AS grants
FROM pg_namespace n WHERE n.nspname = :schema""")

_RELATIONS = text("""
SELECT c.relname, c.relkind::text AS relkind, pg_get_userbyid(c.relowner) AS owner,
       COALESCE((SELECT array_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
                                  || ':' || a.privilege_type)
                 FROM aclexplode(c.relacl) a), '{}') AS grants
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = :schema AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')""")

_FOREIGN_KEYS = text("""
SELECT con.conname, src_ns.nspname AS src_schema, src.relname AS src_table,
       dst_ns.nspname AS dst_schema, dst.relname AS dst_table
FROM pg_constraint con
JOIN pg_class src ON src.oid = con.conrelid JOIN pg_namespace src_ns ON src_ns.oid = src.relnamespace
JOIN pg_class dst ON dst.oid = con.confrelid JOIN pg_namespace dst_ns ON dst_ns.oid = dst.relnamespace
WHERE con.contype = 'f' AND src_ns.nspname <> dst_ns.nspname
  AND (src_ns.nspname = :schema OR dst_ns.nspname = :schema)""")

_MEMBERS = text("""
SELECT pg_get_userbyid(m.member) AS member FROM pg_auth_members m
WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = :role)""")

_ROLE_EXISTS = text("SELECT 1 FROM pg_roles WHERE rolname = :role")

#: what a login role may do in a database: privileges through PUBLIC and memberships count
_MAINTENANCE = text("""
SELECT d.datname, has_database_privilege(r.oid, d.oid, 'CONNECT') AS can_connect,
       has_database_privilege(r.oid, d.oid, 'TEMPORARY') AS can_temp
FROM pg_database d, pg_roles r
WHERE r.rolname = :role AND d.datname = :database""")


def _grants(rows: list[str]) -> list[tuple[str, str]]:
    return [tuple(g.rsplit(":", 1)) for g in rows]  # type: ignore[misc]


async def _audit_service(conn: AsyncConnection, config: DatabaseConfig, roles: Roles,
                         system_roles: set[str], superusers: set[str]) -> list[Violation]:
    name, found = config.service, []
    own = set(roles.all()) | superusers
    schema = config.schema or "public"
    shared = config.topology == "schema-per-service"

    def add(kind: str, obj: str, detail: str, fix: str) -> None:
        found.append(Violation(name, kind, obj, detail, fix))

    for role in roles.all():
        if not await conn.scalar(_ROLE_EXISTS, {"role": role}):
            add("owner", f"role {role}", "the role does not exist", "run `isles db provision`")
    db = (await conn.execute(_DATABASE)).one()
    if db.default_acl:
        add("public", f"database {db.datname}", "PUBLIC may connect (default privileges)",
            f'REVOKE ALL ON DATABASE "{db.datname}" FROM PUBLIC (isles db provision does)')
    allowed_db = (system_roles | superusers) if shared else own
    for grantee, privilege in _grants(db.grants):
        if grantee == "PUBLIC":
            add("public", f"database {db.datname}", f"PUBLIC has {privilege}",
                f'REVOKE {privilege} ON DATABASE "{db.datname}" FROM PUBLIC')
        elif grantee not in allowed_db and grantee != db.owner:
            add("grant", f"database {db.datname}", f"{grantee} has {privilege}",
                f'REVOKE {privilege} ON DATABASE "{db.datname}" FROM "{grantee}"')
    if not shared and db.owner != roles.owner:
        add("owner", f"database {db.datname}", f"owned by {db.owner}, not {roles.owner}",
            f'ALTER DATABASE "{db.datname}" OWNER TO "{roles.owner}"')
    public = (await conn.execute(_SCHEMA, {"schema": "public"})).one_or_none()
    if public is not None:
        for grantee, privilege in _grants(public.grants):
            if grantee == "PUBLIC" and privilege == "CREATE":
                add("public", "schema public", "PUBLIC may CREATE in schema public",
                    "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    row = (await conn.execute(_SCHEMA, {"schema": schema})).one_or_none()
    if row is None:
        add("owner", f"schema {schema}", "the schema does not exist", "run `isles db provision`")
        return found
    if row.owner != roles.owner:
        add("owner", f"schema {schema}", f"owned by {row.owner}, not {roles.owner}",
            f'ALTER SCHEMA "{schema}" OWNER TO "{roles.owner}"')
    for grantee, privilege in _grants(row.grants):
        if grantee == "PUBLIC" and (shared or schema != "public" or privilege == "CREATE"):
            add("public", f"schema {schema}", f"PUBLIC has {privilege}", f'REVOKE ALL ON SCHEMA "{schema}" FROM PUBLIC')
        elif grantee != "PUBLIC" and grantee not in own:
            add("grant", f"schema {schema}", f"{grantee} has {privilege}",
                f'REVOKE {privilege} ON SCHEMA "{schema}" FROM "{grantee}"')
        elif grantee == roles.app and privilege != "USAGE":
            add("grant", f"schema {schema}", f"the app role {grantee} has {privilege} (it may only use the schema)",
                f'REVOKE {privilege} ON SCHEMA "{schema}" FROM "{grantee}"')
    for rel in (await conn.execute(_RELATIONS, {"schema": schema})).all():
        obj = f"{schema}.{rel.relname}"
        if rel.owner != roles.owner:
            add("owner", obj, f"owned by {rel.owner}, not {roles.owner}",
                f'ALTER TABLE "{schema}"."{rel.relname}" OWNER TO "{roles.owner}"')
        for grantee, privilege in _grants(rel.grants):
            target = "PUBLIC" if grantee == "PUBLIC" else f'"{grantee}"'
            revoke = f'REVOKE {privilege} ON "{schema}"."{rel.relname}" FROM {target}'
            if grantee == "PUBLIC" or grantee not in own:
                add("public" if grantee == "PUBLIC" else "grant", obj, f"{grantee} has {privilege}", revoke)
            elif grantee == roles.app and privilege not in _APP_PRIVILEGES[rel.relkind == "S"]:
                add("grant", obj, f"the app role {grantee} has {privilege} (only reads and writes rows)", revoke)
    for fk in (await conn.execute(_FOREIGN_KEYS, {"schema": schema})).all():
        add("foreign-key", f"{fk.src_schema}.{fk.src_table}",
            f"foreign key {fk.conname} references {fk.dst_schema}.{fk.dst_table} across the service boundary",
            f'ALTER TABLE "{fk.src_schema}"."{fk.src_table}" DROP CONSTRAINT "{fk.conname}"; keep the id column '
            f"and replicate what you need through events")
    for member in (await conn.scalars(_MEMBERS, {"role": roles.owner})).all():
        if member not in (roles.migrator, *superusers):
            add("membership", f"role {roles.owner}", f"{member} is a member and acts with its rights",
                f'REVOKE "{roles.owner}" FROM "{member}"')
    return found


async def _audit_maintenance(conn: AsyncConnection, service: str, roles: Roles,
                             databases: Iterable[str]) -> list[Violation]:
    """A service login role that can open a session in (or write temp tables to) a maintenance database."""
    found = []
    for database in databases:
        for role in (roles.migrator, roles.app):
            row = (await conn.execute(_MAINTENANCE, {"role": role, "database": database})).one_or_none()
            if row is None or not (row.can_connect or row.can_temp):
                continue  # no such role (reported above) or database, or nothing to report
            may = " and ".join(what for what, yes in (("connect", row.can_connect),
                                                       ("create temporary tables", row.can_temp)) if yes)
            found.append(Violation(
                service, "maintenance", f"database {database}", f"{role} may {may} there",
                f'REVOKE CONNECT, TEMPORARY ON DATABASE "{database}" FROM PUBLIC, "{role}"; then GRANT CONNECT '
                f"to the roles that need it (isles db provision does both, for the role it runs as)"))
    return found


async def audit(system: System, services: Iterable[str] | None = None, env: Mapping[str, str] | None = None,
                prefix: str | None = None) -> list[Violation]:
    """Every isolation problem of the selected PostgreSQL services (SQLite services are skipped)."""
    env = system.env if env is None else env
    prefix = prefix or env.get("ISLES_ROLE_PREFIX") or system.name
    names = list(services) if services else list(system.services)
    system_roles = {r for n in system.services for r in role_names(prefix, n).all()}
    found: list[Violation] = []
    for name in names:
        system.service(name)
        config = resolve_database(name, env)
        if config.dialect != "postgresql":
            continue
        url = _admin_url(config, env, config.url.database)
        engine = create_async_engine(url)
        try:
            async with engine.connect() as conn:
                superusers = set((await conn.scalars(text(_SUPERUSERS))).all())
                found += await _audit_service(conn, config, role_names(prefix, name), system_roles, superusers)
                found += await _audit_maintenance(conn, name, role_names(prefix, name), maintenance_databases(env))
        except Exception as exc:
            if is_connection_error(exc):
                raise DatabaseUnavailable(f"cannot read the catalogs of {config.display}: "
                                          f"{str(getattr(exc, 'orig', None) or exc).strip().splitlines()[0]}",
                                          service=name, fix="check the URL, or set ISLES_ADMIN_DATABASE_URL") from None
            raise
        finally:
            await engine.dispose()
    return found
