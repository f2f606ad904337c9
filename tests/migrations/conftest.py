"""Toy services whose migrations live in a temporary folder, on SQLite files under tmp_path."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Uuid

from isles import Service, System


def alpha_metadata(extra_column: bool = False) -> MetaData:
    metadata = MetaData()
    columns = [Column("id", Uuid, primary_key=True), Column("name", String(64), nullable=False),
               Column("created_at", DateTime(timezone=True), nullable=False),
               Column("updated_at", DateTime(timezone=True), nullable=False)]
    if extra_column:
        columns.append(Column("colour", String(16)))
    Table("widgets", metadata, *columns, Index("idx_widgets_name", "name"))
    return metadata


def beta_metadata() -> MetaData:
    metadata = MetaData()
    Table("gadgets", metadata, Column("id", Uuid, primary_key=True), Column("widget_id", Uuid, nullable=False),
          Index("idx_gadgets_widget_id", "widget_id"))
    return metadata


def make_system(tmp_path: Path, env: dict[str, str], *, extra_column: bool = False) -> System:
    alpha = Service("alpha", metadata=alpha_metadata(extra_column))
    beta = Service("beta", metadata=beta_metadata())
    alpha.migrations_dir = tmp_path / "alpha_migrations"
    beta.migrations_dir = tmp_path / "beta_migrations"
    return System("toy", [alpha, beta], env=env)


@pytest.fixture
def sqlite_env(tmp_path) -> dict[str, str]:
    return {"ISLES_DATA_DIR": str(tmp_path / "data")}
