"""Every rule: its failing fixture is caught, its passing fixture is clean."""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Column, String, Table, Uuid
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from isles import ReadModel
from isles.lint import RULES
from isles.lint.models import Locator, check

from .conftest import FIXTURES, lint_migration_case, lint_model_file, lint_shop

MODEL_RULES = [c for c in RULES if c.startswith("ISL1")]
MIGRATION_RULES = [c for c in RULES if c.startswith("ISL2")]


def codes(report) -> list[str]:
    return [f.code for f in report.findings]


@pytest.mark.parametrize("code", MODEL_RULES)
def test_model_rule_fails(code):
    report = lint_model_file(FIXTURES / "models" / f"{code}_fail.py")
    assert code in codes(report), report.findings
    hit = next(f for f in report.findings if f.code == code)
    assert hit.path is not None and hit.line, "findings point at a line an ignore comment can go on"


@pytest.mark.parametrize("code", MODEL_RULES)
def test_model_rule_passes(code):
    report = lint_model_file(FIXTURES / "models" / f"{code}_pass.py")
    assert report.findings == []


@pytest.mark.parametrize("code", MIGRATION_RULES)
def test_migration_rule_fails(code, tmp_path):
    report = lint_migration_case(f"{code}_fail", tmp_path)
    assert code in codes(report), report.findings
    hit = next(f for f in report.findings if f.code == code)
    assert hit.path.name == "0002_case.py" and "case0002" in hit.message


@pytest.mark.parametrize("code", MIGRATION_RULES)
def test_migration_rule_passes(code, tmp_path):
    report = lint_migration_case(f"{code}_pass", tmp_path)
    assert report.findings == []


def test_boundary_rules_catch_every_way_across():
    report = lint_shop("fail")
    found = {(f.code, f.path.name, f.line) for f in report.findings}
    assert {("ISL301", "static_import.py", n) for n in (2, 3, 4, 6)} <= found  # module, package, absolute, relative
    assert {("ISL302", "dynamic_import.py", 4), ("ISL302", "dynamic_import.py", 5)} <= found
    assert {("ISL303", "engine.py", n) for n in (10, 11, 12, 13)} <= found  # setting, URL, SQLite file, config
    assert ("ISL304", "raw_sql.py", 4) in found
    assert all(f.service == "orders" for f in report.findings)


def test_boundary_rules_pass_own_modules_and_event_names():
    assert lint_shop("pass").findings == []


def test_the_mes_lints_clean(monkeypatch, tmp_path):
    from isles.lint import lint_system
    from mes.system import system
    monkeypatch.setenv("ISLES_DATA_DIR", str(tmp_path))
    report = lint_system(system)
    assert report.findings == [], [f"{f.path}:{f.line} {f.code} {f.message}" for f in report.findings]
    # each ignore carries its reason: personnel (ISL101, already plural); traceability's graph tables
    # (ISL105 integer keys, ISL107 no foreign keys: the in-memory index is keyed by compact ints and
    # loads by COPY); two indexes on existing work_order tables (ISL204: not built concurrently, which
    # SQLite's migration cannot do). Read models need no ignore (isles.ReadModel).
    assert {f.code for f in report.suppressed} == {"ISL101", "ISL105", "ISL107", "ISL204"}


def test_read_models_need_no_timestamps():
    class Base(DeclarativeBase):
        pass

    class ReplicatedGadget(ReadModel, Base):
        __tablename__ = "replicated_gadgets"
        name: Mapped[str | None] = mapped_column(String(64))

    class Gadget(Base):
        __tablename__ = "gadgets"
        id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)

    Table("copied_widgets", Base.metadata, Column("id", Uuid, primary_key=True),
          Column("widget_version", String(8)), info={"isles_read_model": True})
    found = {(f.code, f.symbol.split(".")[0]) for f in check("shop", Base.metadata, Locator([]))}
    assert ("ISL106", "gadgets") in found
    assert not {t for code, t in found if code == "ISL106"} & {"replicated_gadgets", "copied_widgets"}
    assert [c.name for c in ReplicatedGadget.__table__.columns] == ["id", "name", "version"]


def test_a_revision_that_cannot_be_rendered_is_a_finding_not_a_crash(tmp_path):
    report = lint_migration_case("ISL004_fail", tmp_path)
    assert codes(report) == ["ISL004"]
    assert "exceeds maximum length of 63" in report.findings[0].message
    assert report.findings[0].path.name == "0002_case.py"
