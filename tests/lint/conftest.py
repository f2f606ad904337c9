"""Helpers to lint fixture files without importing them as part of a real service."""
from __future__ import annotations

import importlib.util
import shutil
import sys
import uuid
from pathlib import Path

from isles import Service
from isles.config import resolve_database
from isles.lint import finalize, migration_sql, models
from isles.lint.boundaries import ServiceCode
from isles.lint.boundaries import check as check_boundaries
from isles.migrations.render import render_all
from isles.migrations.scripts import Target

FIXTURES = Path(__file__).parent / "fixtures"


def load(path: Path):
    spec = importlib.util.spec_from_file_location(f"isles_lint_fixture_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # so inspect can find the source of its classes
    spec.loader.exec_module(module)
    return module


def lint_model_file(path: Path, options=None):
    module = load(path)
    found = models.check("widgets", module.metadata, models.Locator([path]))
    return finalize(found, {path}, options)


def lint_migration_case(case: str, tmp_path: Path):
    directory = tmp_path / "versions"
    directory.mkdir()
    shutil.copy(FIXTURES / "migrations" / "base.py", directory / "0001_base.py")
    shutil.copy(FIXTURES / "migrations" / f"{case}.py", directory / "0002_case.py")
    from sqlalchemy import MetaData
    target = Target(Service("widgets", metadata=MetaData()),
                    resolve_database("widgets", {"ISLES_DATA_DIR": str(tmp_path)}), directory)
    found = []
    for rendered in render_all(target):
        found += migration_sql.check(rendered)
    return finalize(found, set(directory.glob("*.py")))


def shop(kind: str) -> list[ServiceCode]:
    root = FIXTURES / "boundary" / kind / "shop"
    return [ServiceCode("orders", "shop.orders", root / "orders"),
            ServiceCode("billing", "shop.billing", root / "billing")]


def lint_shop(kind: str):
    found, files = check_boundaries(shop(kind))
    return finalize(found, files)
