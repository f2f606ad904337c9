"""Where each service's database is, and the errors for settings that are wrong."""
from __future__ import annotations

import pytest

from isles.config import mask_url, resolve_database
from isles.errors import ConfigurationError


def test_default_is_a_sqlite_file_per_service(tmp_path):
    config = resolve_database("work_order", {"ISLES_DATA_DIR": str(tmp_path)})
    assert config.topology == "sqlite-file"
    assert config.url.drivername == "sqlite+aiosqlite"
    assert config.sqlite_path == tmp_path.absolute() / "work_order.db"


def test_plain_postgresql_url_from_the_seeds_gets_the_async_driver():
    env = {"MATERIAL_DATABASE_URL": "postgresql://mes_material_user:s3cret@localhost:5435/mes_material"}
    config = resolve_database("material", env)
    assert config.topology == "database-per-service"
    assert config.url.drivername == "postgresql+asyncpg"
    assert config.url.database == "mes_material" and config.schema is None
    assert "s3cret" not in config.display and "***" in config.display


def test_shared_database_url_gives_each_service_its_own_schema():
    env = {"DATABASE_URL": "postgresql://u:p@db/chiro_erp"}
    assert resolve_database("work_order", env).schema == "work_order"
    assert resolve_database("work_order", env).topology == "schema-per-service"


def test_service_url_wins_over_the_shared_one_and_current_schema_is_honoured():
    env = {"DATABASE_URL": "postgresql://u:p@db/shared",
           "AUTH_DATABASE_URL": "postgresql://localhost:5432/chiro_erp?currentSchema=core_schema"}
    config = resolve_database("auth", env)
    assert (config.schema, config.topology, config.url.database) == ("core_schema", "schema-per-service", "chiro_erp")
    assert "currentSchema" not in str(config.url)


def test_pool_sizes_are_per_service():
    config = resolve_database("material", {"MATERIAL_DB_POOL_SIZE": "12", "MATERIAL_DB_MAX_OVERFLOW": "3"})
    assert (config.pool_size, config.max_overflow) == (12, 3)


@pytest.mark.parametrize("env, words", [
    ({"MATERIAL_DATABASE_URL": "not a url"}, ["MATERIAL_DATABASE_URL", "postgresql://USER"]),
    ({"MATERIAL_DATABASE_URL": "mysql://u:hunter2@h/db"}, ["unsupported database", "postgresql://"]),
    ({"MATERIAL_DATABASE_URL": "postgresql://u:hunter2@h"}, ["names no database"]),
    ({"MATERIAL_DATABASE_URL": "postgresql://u:hunter2@h/db?foo=1"}, ["foo", "remove them"]),
    ({"MATERIAL_DATABASE_URL": "postgresql://u:p@h/db?currentSchema=Bad-Name"}, ["Bad-Name"]),
    ({"DATABASE_URL": "sqlite:///x.db"}, ["no schemas", "MATERIAL_DATABASE_URL"]),
    ({"MATERIAL_DB_POOL_SIZE": "lots"}, ["MATERIAL_DB_POOL_SIZE", "whole number"]),
])
def test_bad_settings_name_the_service_the_problem_and_the_fix(env, words):
    with pytest.raises(ConfigurationError) as info:
        resolve_database("material", env)
    text = str(info.value)
    assert "service 'material'" in text and "fix:" in text
    for word in words:
        assert word in text
    assert "hunter2" not in text


def test_mask_url_hides_passwords_even_in_unparseable_urls():
    assert "pw" not in mask_url("postgresql://user:pw@host/db")
    assert "pw" not in mask_url("post gres://user:pw@host/db")


# -- seed 004's URL parameters -------------------------------------------------------------------------
def test_prisma_pool_parameters_set_the_pool_and_leave_the_url():
    env = {"MATERIAL_DATABASE_URL": "postgresql://u:p@h:5432/db?connection_limit=10&pool_timeout=10"}
    config = resolve_database("material", env)
    assert (config.pool.min, config.pool.max, config.pool.timeout) == (5, 10, 10.0)
    assert (config.pool_size, config.max_overflow) == (5, 5)
    assert config.url.query == {} and config.topology == "database-per-service"


def test_a_small_connection_limit_lowers_the_min_with_it():
    config = resolve_database("material", {"MATERIAL_DATABASE_URL": "postgresql://u:p@h/db?connection_limit=2"})
    assert (config.pool.min, config.pool.max) == (2, 2)


def test_schema_parameter_is_current_schema():
    config = resolve_database("material", {"MATERIAL_DATABASE_URL": "postgresql://u:p@h:5432/db?schema=public"})
    assert (config.schema, config.topology) == ("public", "schema-per-service")
    assert "schema" not in str(config.url)


def test_pool_parameters_on_the_shared_url_apply_to_each_service():
    config = resolve_database("work_order", {"DATABASE_URL": "postgresql://u:p@h/db?connection_limit=4&schema=public"})
    assert (config.pool.max, config.schema) == (4, "work_order")


# -- seed 003's variable names and pool minimums ---------------------------------------------------------
def test_db_url_is_an_alias_of_database_url():
    config = resolve_database("work_order", {"WORK_ORDER_DB_URL": "postgresql://u:p@h/wo"})
    assert config.url.database == "wo" and config.source == "WORK_ORDER_DB_URL"


def test_database_url_wins_over_the_alias_with_a_warning(caplog):
    env = {"SAMPLES_DB_URL": "postgresql://u:hunter2@h/old", "SAMPLES_DATABASE_URL": "postgresql://u:hunter2@h/new"}
    config = resolve_database("samples", env)
    assert config.url.database == "new" and config.source == "SAMPLES_DATABASE_URL"
    assert "SAMPLES_DB_URL" in caplog.text and "hunter2" not in caplog.text


def test_pool_min_and_max_per_service():
    config = resolve_database("samples", {"SAMPLES_DB_POOL_MIN": "5", "SAMPLES_DB_POOL_MAX": "20",
                                          "SAMPLES_DB_POOL_TIMEOUT": "2.5"})
    assert (config.pool.min, config.pool.max, config.pool.timeout) == (5, 20, 2.5)
    assert (config.pool_size, config.max_overflow) == (5, 15)
    url = resolve_database("ai", {"AI_DB_URL": "postgresql://u:p@h/ai?pool_min=3&connection_limit=15"})
    assert (url.pool.min, url.pool.max) == (3, 15)


@pytest.mark.parametrize("env, words", [
    ({"MATERIAL_DB_POOL_MIN": "8", "MATERIAL_DB_POOL_MAX": "4"}, ["min (8) is above its max (4)"]),
    ({"MATERIAL_DB_POOL_MAX": "0"}, ["no room", "MATERIAL_DB_POOL_MAX"]),
    ({"MATERIAL_DATABASE_URL": "postgresql://u:hunter2@h/db?connection_limit=10", "MATERIAL_DB_POOL_MAX": "12"},
     ["connection_limit in MATERIAL_DATABASE_URL gives 10", "MATERIAL_DB_POOL_MAX gives 12", "one place"]),
    ({"MATERIAL_DATABASE_URL": "postgresql://u:hunter2@h/db?pool_timeout=soon"}, ["pool_timeout", "seconds"]),
    ({"MATERIAL_DB_POOL_MAX": "9", "MATERIAL_DB_MAX_OVERFLOW": "3"}, ["MATERIAL_DB_MAX_OVERFLOW", "max alone"]),
    ({"ISLES_SQLITE_SYNCHRONOUS": "sometimes"}, ["ISLES_SQLITE_SYNCHRONOUS", "normal"]),
])
def test_bad_pool_and_sqlite_settings_name_the_setting_and_the_fix(env, words):
    with pytest.raises(ConfigurationError) as info:
        resolve_database("material", env)
    text = str(info.value)
    assert "service 'material'" in text and "fix:" in text and "hunter2" not in text
    for word in words:
        assert word in text


# -- SQLite durability -----------------------------------------------------------------------------------
@pytest.mark.parametrize("env, expected", [({}, 2), ({"ISLES_SQLITE_SYNCHRONOUS": "normal"}, 1)])
async def test_sqlite_is_full_synchronous_unless_normal_is_asked_for(tmp_path, env, expected):
    from sqlalchemy import text

    from isles.database import Database

    database = Database(resolve_database("material", {"ISLES_DATA_DIR": str(tmp_path), **env}))
    try:
        async with database.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == expected  # FULL=2, NORMAL=1
    finally:
        await database.dispose()
