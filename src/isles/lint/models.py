"""Rules on a service's models (seed 004's review checklist, applied by the machine).

Tables are found in the service's metadata; each is traced back to the ORM class (or the
``Table(...)`` call) that declares it so findings point at a file and line where an ignore
comment can go. isles' own tables (``isles_*``) are exempt: the framework owns their shape.
Read models (:class:`isles.ReadModel`, copies of another service's data) need no timestamps.
"""
from __future__ import annotations

import ast
import inspect
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

from sqlalchemy import DateTime, MetaData, Table, Uuid
from sqlalchemy.orm import mapperlib

from isles.lint.findings import Finding
from isles.orm import is_read_model

SNAKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
FRAMEWORK_PREFIX = "isles_"
#: plural nouns that do not end in "s"
_PLURALS = {"data", "people", "children", "men", "women", "media", "criteria", "equipment", "information",
            "inventory", "metadata", "staff", "feedback", "history"}
MAX_IDENTIFIER = 63


def is_plural(name: str) -> bool:
    last = name.rsplit("_", 1)[-1]
    return last.endswith("s") and not last.endswith("ss") or last in _PLURALS


def _mappers() -> Iterable[Any]:
    for registry in list(mapperlib._mapper_registries):
        yield from registry.mappers


def class_for(table: Table) -> type | None:
    for mapper in _mappers():
        if mapper.local_table is table:
            cls: type = mapper.class_
            return cls
    return None


@lru_cache(maxsize=256)
def _source(path: str) -> tuple[str, ...]:
    try:
        return tuple(Path(path).read_text().splitlines())
    except OSError:
        return ()


def _class_location(cls: type) -> tuple[Path | None, int | None]:
    try:
        return Path(inspect.getsourcefile(cls) or ""), inspect.getsourcelines(cls)[1]
    except (OSError, TypeError):
        return None, None


def _attribute_line(cls: type, key: str) -> tuple[Path | None, int | None]:
    """Where ``key`` is assigned in ``cls`` or the first class of its MRO that declares it."""
    for klass in cls.__mro__:
        if key not in vars(klass):
            continue
        path, start = _class_location(klass)
        if path is None or start is None:
            return None, None
        try:
            tree = ast.parse(inspect.getsource(klass))
        except (OSError, SyntaxError, TypeError):
            return path, start
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node in body:
            targets = [node.target] if isinstance(node, ast.AnnAssign) else getattr(node, "targets", [])
            if any(isinstance(t, ast.Name) and t.id == key for t in targets):
                return path, start + node.lineno - 1
        return path, start
    return _class_location(cls)


class Locator:
    """Maps tables, columns and indexes to a file and line of the service's source."""

    def __init__(self, files: list[Path]):
        self.files = files

    def _search(self, needle: str) -> tuple[Path | None, int | None]:
        for path in self.files:
            for number, line in enumerate(_source(str(path)), 1):
                if needle in line:
                    return path, number
        return None, None

    def table(self, table: Table) -> tuple[Path | None, int | None]:
        cls = class_for(table)
        if cls is not None:
            path, line = _class_location(cls)
            if path is not None:
                return path, line
        for quote in ('"', "'"):
            found = self._search(f"{quote}{table.name}{quote}")
            if found[0] is not None:
                return found
        return None, None

    def column(self, table: Table, column: Any) -> tuple[Path | None, int | None]:
        cls = class_for(table)
        if cls is not None:
            mapper = inspect_mapper(cls)
            key = next((prop.key for prop in mapper.column_attrs if column in prop.columns), column.key)
            return _attribute_line(cls, key)
        for quote in ('"', "'"):
            found = self._search(f"{quote}{column.name}{quote}")
            if found[0] is not None:
                return found
        return self.table(table)

    def named(self, table: Table, name: str | None) -> tuple[Path | None, int | None]:
        if name:
            for quote in ('"', "'"):
                found = self._search(f"{quote}{name}{quote}")
                if found[0] is not None:
                    return found
        return self.table(table)


def inspect_mapper(cls: type) -> Any:
    from sqlalchemy import inspect as sa_inspect
    return sa_inspect(cls)


def _is_uuid(column: Any) -> bool:
    return isinstance(column.type, Uuid) or type(column.type).__name__.upper() == "UUID"


def _index_leaders(table: Table) -> set[str]:
    leaders = set()
    for index in table.indexes:
        cols = [c for c in index.columns]
        if cols:
            leaders.add(cols[0].name)
    for constraint in table.constraints:
        cols = list(getattr(constraint, "columns", []))
        if cols and type(constraint).__name__ in ("PrimaryKeyConstraint", "UniqueConstraint"):
            leaders.add(cols[0].name)
    return leaders


def check(service: str, metadata: MetaData, locator: Locator) -> list[Finding]:
    """Every model rule over every non-framework table of one service."""
    found: list[Finding] = []
    own = set(metadata.tables)

    def add(code: str, message: str, where: tuple[Path | None, int | None], symbol: str) -> None:
        found.append(Finding(code, message, service, where[0], where[1], symbol))

    for _key, table in sorted(metadata.tables.items()):  # in key order
        if table.name.startswith(FRAMEWORK_PREFIX):
            continue
        at = locator.table(table)
        name = table.name
        if not SNAKE.match(name):
            add("ISL101", f"table {name!r} is not snake_case", at, name)
        elif not is_plural(name):
            add("ISL101", f"table {name!r} is not plural (e.g. {name}s)", at, name)
        identifiers = [(name, at, name)]
        for column in table.columns:
            where = locator.column(table, column)
            if not SNAKE.match(column.name):
                add("ISL102", f"column {name}.{column.name} is not snake_case", where, f"{name}.{column.name}")
            identifiers.append((column.name, where, f"{name}.{column.name}"))
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            cols = [c.name for c in index.columns]
            expected = f"idx_{name}_{'_'.join(cols)}" if cols and len(cols) == len(index.expressions) else None
            where = locator.named(table, index.name)
            if index.name is None:
                add("ISL103", f"an index on {name}({', '.join(cols)}) has no name; "
                              f"call it {expected or f'idx_{name}_...'}",
                    where, f"{name}:index:{','.join(cols)}")
            elif expected and index.name != expected or not index.name.startswith(f"idx_{name}_"):
                add("ISL103", f"index {index.name!r} should be named {expected or f'idx_{name}_<columns>'}",
                    where, f"{name}:index:{index.name}")
            if index.name:
                identifiers.append((index.name, where, f"{name}:index:{index.name}"))
        for constraint in table.constraints:
            if isinstance(constraint.name, str):
                identifiers.append((constraint.name, at, f"{name}:constraint:{constraint.name}"))
        for ident, where, symbol in identifiers:
            if len(ident.encode()) > MAX_IDENTIFIER:
                add("ISL104", f"identifier {ident!r} is {len(ident.encode())} bytes; PostgreSQL truncates "
                              f"it to {MAX_IDENTIFIER}", where, f"{symbol}:length")
        pk = list(table.primary_key.columns)
        if len(pk) != 1 or not _is_uuid(pk[0]):
            desc = ", ".join(f"{c.name} {c.type}" for c in pk) or "none"
            add("ISL105", f"table {name} has primary key ({desc}); use one UUID column (isles.Entity / HasUuid)",
                at, f"{name}:pk")
        cls = class_for(table)
        for stamp in () if is_read_model(table, cls) else ("created_at", "updated_at"):
            stamped = table.columns.get(stamp)
            if stamped is None:
                add("ISL106", f"table {name} has no {stamp} "
                              f"(use isles.Timestamped; a copy of another service's data: isles.ReadModel)",
                    at, f"{name}.{stamp}")
            elif not (isinstance(stamped.type, DateTime) and stamped.type.timezone):
                add("ISL106", f"{name}.{stamp} is not a timestamp with time zone (DateTime(timezone=True))",
                    locator.column(table, stamped), f"{name}.{stamp}")
        leaders = _index_leaders(table)
        for column in table.columns:
            if column.name.endswith("_id") and column.name not in leaders:
                add("ISL107", f"{name}.{column.name} references another entity but leads no index; add "
                              f"Index('idx_{name}_{column.name}', '{column.name}')",
                    locator.column(table, column), f"{name}.{column.name}")
        for fk in sorted(table.foreign_keys, key=lambda f: f.target_fullname):
            target = fk.target_fullname.rsplit(".", 1)[0]
            if target not in own:
                add("ISL108", f"{name}.{fk.parent.name} has a foreign key to {target}, which this service does "
                              f"not own; keep the id column and replicate what you need through events",
                    locator.column(table, fk.parent), f"{name}.{fk.parent.name}->{target}")
        if cls is not None:
            try:
                relationships = list(inspect_mapper(cls).relationships)
            except Exception as exc:  # an unresolvable target is itself a boundary problem
                add("ISL109", f"relationships of {cls.__name__} cannot be resolved in this service: {exc}",
                    at, f"{name}:relationships")
                relationships = []
            for rel in relationships:
                target_table = getattr(rel.mapper, "local_table", None)
                if target_table is not None and target_table.key not in own:
                    add("ISL109", f"{cls.__name__}.{rel.key} is a relationship to {rel.mapper.class_.__name__} "
                                  f"({target_table.key}) of another service", _attribute_line(cls, rel.key),
                        f"{name}.{rel.key}")
    return found
