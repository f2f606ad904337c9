"""Provisioning on real PostgreSQL, both topologies: roles, grants, isolation and the audit."""
from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from isles.audit import audit
from isles.errors import IslesError
from isles.migrations import upgrade
from isles.provision import plan, provision, render_sql

from .conftest import mes_system

SECRET = "s3cret-'quoted'"
PASSWORDS = {"MATERIAL_APP_PASSWORD": SECRET, "MATERIAL_MIGRATOR_PASSWORD": SECRET,
             "WORK_ORDER_APP_PASSWORD": SECRET, "WORK_ORDER_MIGRATOR_PASSWORD": SECRET}


def test_print_sql_masks_passwords_and_names_roles():
    system = mes_system({"DATABASE_URL": "postgresql://admin:adminpw@db.example/mes", **PASSWORDS})
    sql = render_sql(plan(system, prefix="acme"))
    assert SECRET not in sql and "adminpw" not in sql
    assert "PASSWORD '***'" in sql
    for role in ("acme_material_owner", "acme_material_migrator", "acme_work_order_app"):
        assert f'"{role}"' in sql
    assert "REVOKE ALL ON DATABASE \"mes\" FROM PUBLIC" in sql
    assert "REVOKE CREATE ON SCHEMA public FROM PUBLIC" in sql


def test_missing_password_is_a_warning_not_a_default():
    system = mes_system({"DATABASE_URL": "postgresql://admin@db.example/mes"})
    plans = plan(system, prefix="acme")
    assert any("MATERIAL_APP_PASSWORD is not set" in w for w in plans[0].warnings)
    assert "PASSWORD" not in render_sql(plans).replace("_PASSWORD", "")


async def test_sqlite_provision_creates_the_files(tmp_path):
    system = mes_system({"ISLES_DATA_DIR": str(tmp_path / "data")})
    results = await provision(system)
    assert [r.topology for r in results] == ["sqlite-file", "sqlite-file"]
    assert (tmp_path / "data" / "material.db").exists() and (tmp_path / "data" / "work_order.db").exists()


async def _as(cluster, database: str, user: str, sql: str):
    conn = await cluster.connect(database, user)
    try:
        return await conn.fetch(sql)
    finally:
        await conn.close()


@pytest.mark.postgres
async def test_schema_per_service_isolation(cluster, pg_database):
    url = await pg_database()
    db = make_url(url).database
    cluster.shared.append(db)
    env = {"DATABASE_URL": url, **PASSWORDS}
    system = mes_system(env)
    await provision(system, prefix=cluster.prefix)
    await provision(system, prefix=cluster.prefix)  # idempotent

    migrators = {f"{s.upper()}_DATABASE_URL": cluster.url(db, cluster.role(s, "migrator"), s)
                 for s in ("material", "work_order")}
    results = await upgrade(mes_system(migrators))
    assert all(r.ok and r.applied for r in results), results
    assert await audit(system, prefix=cluster.prefix) == []

    wo_app, wo_migrator = cluster.role("work_order", "app"), cluster.role("work_order", "migrator")
    assert await _as(cluster, db, wo_app, "SELECT count(*) FROM work_orders")  # its own table
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _as(cluster, db, wo_app, "SELECT * FROM material.parts")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _as(cluster, db, wo_app, "CREATE TABLE sneaky (id int)")  # the app role has no DDL
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _as(cluster, db, wo_migrator, "ALTER TABLE work_orders ADD CONSTRAINT fk_part "
                                            "FOREIGN KEY (part_id) REFERENCES material.parts (id)")
    owner = (await _as(cluster, db, wo_migrator, "SELECT current_user AS u"))[0]["u"]
    assert owner == cluster.role("work_order", "owner")  # the migrator acts as the owner

    # a superuser couples the services by hand: the audit names both problems
    await _as(cluster, db, "postgres", f'GRANT SELECT ON material.parts TO "{wo_app}"')
    await _as(cluster, db, "postgres", "ALTER TABLE work_order.work_orders ADD CONSTRAINT fk_part "
                                       "FOREIGN KEY (part_id) REFERENCES material.parts (id)")
    await _as(cluster, db, "postgres", f'GRANT TRUNCATE ON work_order.work_orders TO "{wo_app}"')
    found = await audit(system, prefix=cluster.prefix)
    kinds = {(v.service, v.kind, v.object) for v in found}
    assert ("material", "grant", "material.parts") in kinds
    assert ("work_order", "foreign-key", "work_order.work_orders") in kinds
    assert ("work_order", "grant", "work_order.work_orders") in kinds  # the app role may not TRUNCATE
    assert all(v.fix for v in found)


@pytest.mark.postgres
async def test_database_per_service_isolation(cluster):
    dbs = {s: f"{cluster.prefix}_{s}" for s in ("material", "work_order")}
    cluster.databases.extend(dbs.values())
    env = {f"{s.upper()}_DATABASE_URL": cluster.url(d) for s, d in dbs.items()} | PASSWORDS
    system = mes_system(env)
    await provision(system, prefix=cluster.prefix)
    await provision(system, prefix=cluster.prefix)

    migrators = {f"{s.upper()}_DATABASE_URL": cluster.url(d, cluster.role(s, "migrator")) for s, d in dbs.items()}
    assert all(r.ok for r in await upgrade(mes_system(migrators)))
    assert await audit(system, prefix=cluster.prefix) == []

    wo_app = cluster.role("work_order", "app")
    assert await _as(cluster, dbs["work_order"], wo_app, "SELECT count(*) FROM work_orders")
    for user in (wo_app, cluster.role("work_order", "migrator")):
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # no CONNECT on the other database
            await _as(cluster, dbs["material"], user, "SELECT 1")

    await _as(cluster, dbs["material"], "postgres", f'GRANT CONNECT ON DATABASE "{dbs["material"]}" TO PUBLIC')
    found = await audit(system, prefix=cluster.prefix)
    assert [(v.service, v.kind) for v in found] == [("material", "public")]


@pytest.mark.postgres
async def test_missing_role_is_a_clear_error(cluster, pg_database):
    url = await pg_database()
    db = make_url(url).database
    env = {"MATERIAL_DATABASE_URL": cluster.url(db, cluster.role("material", "migrator"), "material")}
    with pytest.raises(IslesError) as caught:
        await upgrade(mes_system(env), ["material"])
    assert caught.value.service == "material" and "isles db provision" in caught.value.fix
    assert "does not exist" in caught.value.problem
    violations = await audit(mes_system({"DATABASE_URL": url}), ["material"], prefix=cluster.prefix)
    roles = {"role " + cluster.role("material", k) for k in ("owner", "migrator", "app")}
    assert roles <= {v.object for v in violations}


@pytest.mark.postgres
async def test_unprivileged_admin_is_a_clear_error_and_changes_nothing(cluster, pg_database):
    url = await pg_database()
    db = make_url(url).database
    weak = f"{cluster.prefix}_weak_admin"
    await _as(cluster, "postgres", "postgres", f'CREATE ROLE "{weak}" LOGIN')
    env = {"DATABASE_URL": url, "ISLES_ADMIN_DATABASE_URL": cluster.url(db, weak)}
    with pytest.raises(IslesError) as caught:
        await provision(mes_system(env), prefix=cluster.prefix)
    assert caught.value.service == "material" and "ISLES_ADMIN_DATABASE_URL" in caught.value.fix
    roles = await _as(cluster, "postgres", "postgres",
                      f"SELECT rolname FROM pg_roles WHERE rolname LIKE '{cluster.prefix}\\_material%'")
    assert roles == []


async def _owners(cluster, database: str, schema: str) -> set[str]:
    rows = await _as(cluster, database, "postgres",
                     f"SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = '{schema}'")
    return {r["tableowner"] for r in rows}


@pytest.mark.postgres
@pytest.mark.parametrize("topology", ["database-per-service", "schema-per-service"])
async def test_migrate_as_superuser_after_provision_leaves_the_owner_owning(cluster, pg_database, topology):
    """provision -> migrate up with the superuser's URL (what a first-time user runs) -> audit is
    clean: the runner acts as the schema's owner role, so default privileges reach the app role."""
    if topology == "database-per-service":
        dbs = {s: f"{cluster.prefix}_{s}" for s in ("material", "work_order")}
        cluster.databases.extend(dbs.values())
        env = {f"{s.upper()}_DATABASE_URL": cluster.url(d) for s, d in dbs.items()} | PASSWORDS
        schemas = {s: "public" for s in dbs}
    else:
        url = await pg_database()
        db = make_url(url).database
        cluster.shared.append(db)
        env = {"DATABASE_URL": url, **PASSWORDS}
        dbs = {s: db for s in ("material", "work_order")}
        schemas = {s: s for s in dbs}
    system = mes_system(env)
    await provision(system, prefix=cluster.prefix)

    results = await upgrade(system)  # logged in as postgres
    assert all(r.ok and r.applied for r in results), results
    for service in dbs:
        assert await _owners(cluster, dbs[service], schemas[service]) == {cluster.role(service, "owner")}
    assert await audit(system, prefix=cluster.prefix) == []
    app = cluster.role("material", "app")
    rows = await _as(cluster, dbs["material"], app, f"SELECT count(*) AS n FROM {schemas['material']}.parts")
    assert rows[0]["n"] == 0  # no "permission denied for table parts"


@pytest.mark.postgres
async def test_migrating_as_the_app_role_says_who_must_migrate(cluster):
    """`isles serve` migrates by default; with the app role's URL on a fresh database the error must
    point at `isles migrate up` as migrator/superuser and --no-migrate, not at the revision."""
    from isles.migrations import MigrationError, ensure_head
    db = f"{cluster.prefix}_material"
    cluster.databases.append(db)
    await provision(mes_system({"MATERIAL_DATABASE_URL": cluster.url(db), **PASSWORDS}), ["material"],
                    prefix=cluster.prefix)
    app_url = f"postgresql://{cluster.role('material', 'app')}:{SECRET.replace(chr(39), '%27')}@127.0.0.1:5432/{db}"
    with pytest.raises(MigrationError) as caught:
        await ensure_head(mes_system({"MATERIAL_DATABASE_URL": app_url}), ["material"])
    error = caught.value
    assert error.service == "material" and "permission denied" in error.problem
    assert cluster.role("material", "app") in error.problem
    assert "isles migrate up --service material" in error.fix and "--no-migrate" in error.fix
    assert "fix the revision" not in error.fix


# -- maintenance databases ---------------------------------------------------------------------------------
def test_provision_plan_keeps_service_roles_out_of_the_maintenance_databases():
    system = mes_system({"DATABASE_URL": "postgresql://admin@db.example/mes"})
    env = {"DATABASE_URL": "postgresql://admin@db.example/mes"}  # the default: postgres and template1
    sql = render_sql(plan(system, env=env, prefix="acme"))
    for db in ("postgres", "template1"):
        assert f'REVOKE CONNECT, TEMPORARY ON DATABASE "{db}" FROM PUBLIC;  -- if the database exists' in sql
        assert f'GRANT CONNECT ON DATABASE "{db}" TO CURRENT_USER;' in sql  # the admin keeps reaching it
    left_alone = render_sql(plan(system, env={**env, "ISLES_MAINTENANCE_DATABASES": ""}, prefix="acme"))
    assert "TEMPORARY" not in left_alone


async def _can_use(cluster, database: str, user: str) -> bool:
    """Can ``user`` connect to ``database`` and create a temporary table there?"""
    try:
        await _as(cluster, database, user, "CREATE TEMP TABLE probe (id int)")
        return True
    except asyncpg.InsufficientPrivilegeError:
        return False


@pytest.mark.postgres
async def test_service_roles_cannot_use_the_maintenance_database(cluster, pg_database):
    """A scratch database stands in for ``postgres``: the shared server's own is left alone."""
    maintenance = make_url(await pg_database()).database
    url = await pg_database()
    cluster.shared.append(make_url(url).database)
    passwords = {"MATERIAL_APP_PASSWORD": SECRET, "MATERIAL_MIGRATOR_PASSWORD": SECRET}
    app, migrator = cluster.role("material", "app"), cluster.role("material", "migrator")

    # without the step (PostgreSQL's defaults), the service roles may use it - and the audit says so
    await provision(mes_system({"DATABASE_URL": url, **passwords}), ["material"], prefix=cluster.prefix)
    assert await _can_use(cluster, maintenance, app)
    system = mes_system({"DATABASE_URL": url, "ISLES_MAINTENANCE_DATABASES": maintenance, **passwords})
    found = await audit(system, ["material"], prefix=cluster.prefix)
    assert {(v.kind, v.object, v.detail.split()[0]) for v in found} == {
        ("maintenance", f"database {maintenance}", app), ("maintenance", f"database {maintenance}", migrator)}
    assert all("connect and create temporary tables" in v.detail and "REVOKE" in v.fix for v in found)

    await provision(system, ["material"], prefix=cluster.prefix)
    await provision(system, ["material"], prefix=cluster.prefix)  # idempotent
    for role in (app, migrator):
        assert not await _can_use(cluster, maintenance, role)
    assert await _can_use(cluster, maintenance, "postgres")
    acl = await _as(cluster, maintenance, "postgres",
                    f"SELECT datacl::text AS acl FROM pg_database WHERE datname = '{maintenance}'")
    entries = {e.split("=")[0]: e.split("=")[1].split("/")[0] for e in acl[0]["acl"].strip("{}").split(",")}
    assert "" not in entries and "c" in entries["postgres"]  # PUBLIC ("") has nothing; the admin connects
    assert await audit(system, ["material"], prefix=cluster.prefix) == []

    # the database names stay visible: pg_database is readable by every role
    assert await _as(cluster, make_url(url).database, app,
                     f"SELECT 1 FROM pg_database WHERE datname = '{maintenance}'")


@pytest.mark.postgres
async def test_create_database_still_copies_a_template_after_the_step(cluster, pg_database):
    """What template1 gets: a role with CREATEDB can still copy it, and the copy is usable."""
    template = make_url(await pg_database()).database
    url = await pg_database()
    cluster.shared.append(make_url(url).database)
    creator, copy = f"{cluster.prefix}_creator", f"{cluster.prefix}_copy"
    cluster.databases.append(copy)
    await _as(cluster, "postgres", "postgres", f'ALTER DATABASE "{template}" IS_TEMPLATE true')
    try:
        await provision(mes_system({"DATABASE_URL": url, "ISLES_MAINTENANCE_DATABASES": template}), ["material"],
                        prefix=cluster.prefix)
        await _as(cluster, "postgres", "postgres", f'CREATE ROLE "{creator}" LOGIN CREATEDB')
        assert not await _can_use(cluster, template, creator)
        await _as(cluster, "postgres", creator, f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
        assert await _can_use(cluster, copy, creator)  # a new database starts with the default privileges
    finally:
        await _as(cluster, "postgres", "postgres", f'ALTER DATABASE "{template}" IS_TEMPLATE false')
