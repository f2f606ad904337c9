"""Rules on a service's code: it reaches only its own modules and its own database.

The checks read the source (``ast``), never import it: a static import or ``import_module`` of
another service's package, an engine or connection opened on another service's URL setting,
SQLite file or ``resolve_database("other")``, and raw SQL that names another service's schema.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

from isles.config import env_prefix
from isles.lint.findings import Finding

_ENGINE_CALLS = {"create_engine", "create_async_engine", "connect", "Database", "resolve_database",
                 "create_pool", "engine_from_config"}
_SQL_WORDS = re.compile(r"\b(select|insert|update|delete|from|join|into|table|alter|create|drop|truncate)\b",
                        re.IGNORECASE)


@dataclass(frozen=True)
class ServiceCode:
    """What the boundary rules need to know about a service: its name, package and source folder."""

    name: str
    package: str
    directory: Path
    schema: str | None = None  # its schema under schema-per-service (default: the service name)

    @property
    def schema_name(self) -> str:
        return self.schema or self.name


def _owner(module: str, services: list[ServiceCode]) -> ServiceCode | None:
    for s in services:
        if module == s.package or module.startswith(s.package + "."):
            return s
    return None


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Attribute):
        return func.attr
    if isinstance(func, ast.Name):
        return func.id
    return ""


def _strings(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            for stmt in body:
                if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
                    ids.add(id(stmt.value))
    return ids


def check_file(path: Path, me: ServiceCode, services: list[ServiceCode]) -> list[Finding]:
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError):
        return []
    others = [s for s in services if s.name != me.name]
    found: list[Finding] = []

    def add(code: str, node: ast.AST, message: str, symbol: str) -> None:
        found.append(Finding(code, message, me.name, path, getattr(node, "lineno", None), symbol))

    module_name = me.package + "." + ".".join(path.relative_to(me.directory).with_suffix("").parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                other = _owner(alias.name, others)
                if other:
                    add("ISL301", node, f"imports {alias.name}, a module of service '{other.name}'; consume "
                                        f"its events (or call its API) instead", f"import:{alias.name}")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module_name.split(".")[: -node.level]
                base = ".".join(parts + ([node.module] if node.module else []))
            candidates = [base] + [f"{base}.{a.name}" for a in node.names]
            hit = next(((c, o) for c in candidates if (o := _owner(c, others))), None)
            if hit:
                target, other = hit
                add("ISL301", node, f"imports {target}, a module of service '{other.name}'; consume its "
                                    f"events (or call its API) instead", f"import:{target}")
        elif isinstance(node, ast.Call):
            name = _call_name(node)
            if name in ("import_module", "__import__") and node.args:
                args = [a.value for a in node.args[:2] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                target = args[0] if args else ""
                if target.startswith(".") and len(args) > 1:
                    target = args[1] + target
                other = _owner(target, others) if target else None
                if other:
                    add("ISL302", node, f"imports {target} of service '{other.name}' dynamically",
                        f"import:{target}")
            if name in _ENGINE_CALLS:
                for text in _strings(node):
                    other = _engine_target(text, others, name)
                    if other:
                        add("ISL303", node, f"{name}(...) reaches the database of service '{other.name}' "
                                            f"({text!r}); a service opens only its own", f"engine:{other.name}")
                        break
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for other in others:
                if f"{env_prefix(other.name)}_DATABASE_URL" in node.value:
                    add("ISL303", node, f"reads {env_prefix(other.name)}_DATABASE_URL, the database setting of "
                                        f"service '{other.name}'", f"engine:{other.name}")
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Constant) and isinstance(node.value, str)) or id(node) in docstrings:
            continue
        if not _SQL_WORDS.search(node.value):
            continue
        for other in others:
            pattern = re.compile(rf'(?<![\w."]){re.escape(other.schema_name)}"?\s*\.\s*"?[a-z_]', re.IGNORECASE)
            if pattern.search(node.value):
                add("ISL304", node, f"raw SQL names schema '{other.schema_name}' of service '{other.name}'",
                    f"sql:{other.schema_name}")
    return found


def _engine_target(text: str, others: list[ServiceCode], call: str) -> ServiceCode | None:
    for other in others:
        if call == "resolve_database" and text == other.name:
            return other
        if re.search(rf"(^|[/\\]){re.escape(other.name)}\.(db|sqlite3?)$", text):
            return other
        if "://" in text and re.search(rf"/(\w+_)?{re.escape(other.name)}(\?|$)", text):
            return other
    return None


def check(services: list[ServiceCode]) -> tuple[list[Finding], set[Path]]:
    """Every boundary rule over every Python file of every service; also the files it read."""
    found: list[Finding] = []
    files: set[Path] = set()
    for me in services:
        for path in sorted(me.directory.rglob("*.py")):
            files.add(path)
            found += check_file(path, me, services)
    return found, files
