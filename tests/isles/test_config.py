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
