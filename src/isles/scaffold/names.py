"""The names a scaffolded service is made of, derived once from the service name, the entity name
and the folder it goes into - and refused early, with the fix, when Python or isles would not
accept them later (a keyword, a module the package already has, a shadowed installed module).
"""
from __future__ import annotations

import importlib.util
import keyword
import re
from dataclasses import dataclass
from pathlib import Path

from isles.config import validate_service_name
from isles.errors import ConfigurationError

_ENTITY = re.compile(r"^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]+)*$")
#: modules every scaffolded package has; the concept module must not take one of their names
_FIXED_MODULES = frozenset({"access", "api", "events", "handlers", "migrations", "models", "service_def", "tests"})
#: names the generated modules already use for something else
_TAKEN_CLASSES = frozenset({"Any", "Base", "Entity", "Event", "Field", "Guard", "Handlers", "Page", "Principal",
                            "Reader", "Service", "Snapshot", "System", "UnitOfWork", "Uow", "Writer"})


@dataclass(frozen=True)
class ServiceNames:
    """Everything the templates substitute, as plain strings."""

    service: str      # inventory
    package: str      # inventory, or mes.inventory inside the package mes
    root: Path        # the folder on the Python path that holds the top-level package
    directory: Path   # where the service package is written
    entity: str       # Item
    entity_snake: str  # item
    plural: str       # items: table, concept module and list-function name
    path: str         # items: the URL segment (work-centers for WorkCenter)
    source: str       # inventory.item (event types are <source>.created / .updated)

    def substitutions(self, *, auth_source: str | None, description: str) -> dict[str, str]:
        from isles.api import service_prefix

        if auth_source:
            auth_import = "from isles.security import api_token_replica\n"
            auth_replica = ("        # API tokens issued by the auth service, checked against this service's own copy\n"
                            f'        api_token_replica(Base.metadata, source="{auth_source}"),')
        else:
            auth_import = ""
            auth_replica = ("        # With an auth service in the system, accept its API tokens (checked in this\n"
                            "        # service's own copy): uncomment, import api_token_replica from isles.security,\n"
                            "        # then `isles migrate new`:\n"
                            '        # api_token_replica(Base.metadata, source="<system>.auth.api_token"),')
        return {
            "service": self.service, "package": self.package, "Entity": self.entity, "entity": self.entity_snake,
            "Entities": self.plural.replace("_", " ").capitalize(),
            "entities": self.plural, "module": self.plural, "table": self.plural, "path": self.path,
            "label": self.entity_snake.replace("_", " "), "source": self.source,
            "prefix": service_prefix(self.service), "description": description.replace('"', "'"),
            "auth_import": auth_import, "auth_replica": auth_replica,
        }


def snake(camel: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", camel).lower()


def plural(word: str) -> str:
    """English plural of a snake_case noun's last word, good enough for table names (ISL101)."""
    if re.search(r"[^aeiou]y$", word):
        return word[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", word):
        return word + "es"
    return word + "s"


def package_prefix(into: Path) -> tuple[Path, str]:
    """The folder on the Python path and the dotted package ``into`` is (``""`` when it is a plain
    folder): ``src/mes`` with ``src/mes/__init__.py`` is ``(src, "mes")``."""
    parts: list[str] = []
    here = into
    while (here / "__init__.py").is_file():
        parts.insert(0, here.name)
        here = here.parent
    return here, ".".join(parts)


def derive(name: str, into: Path, *, entity: str = "Item", namespace: str | None = None) -> ServiceNames:
    """The names of service ``name`` written into the folder ``into``; ConfigurationError if unusable."""
    validate_service_name(name)
    if keyword.iskeyword(name):
        raise ConfigurationError(f"{name!r} is a Python keyword, so no module can be called that",
                                 fix="choose another service name (e.g. 'imports' instead of 'import')")
    if not _ENTITY.match(entity or ""):
        raise ConfigurationError(f"--entity {entity!r} is not a CamelCase class name",
                                 fix="name the example entity like Item or WorkCenter (letters and digits)")
    if entity in _TAKEN_CLASSES:
        raise ConfigurationError(f"--entity {entity!r} would clash with a name the generated code imports",
                                 fix=f"choose another entity name (taken: {', '.join(sorted(_TAKEN_CLASSES))})")
    entity_snake = snake(entity)
    many = plural(entity_snake)
    if many in _FIXED_MODULES or keyword.iskeyword(entity_snake):
        raise ConfigurationError(f"--entity {entity!r} would name its module {many}.py, which the package already has",
                                 fix="choose another entity name")
    into = into.absolute()
    root, prefix = package_prefix(into)
    package = f"{prefix}.{name}" if prefix else name
    directory = into / name
    if not prefix:
        _refuse_shadowing(name, directory)
    space = namespace if namespace is not None else package
    source = f"{space}.{entity_snake}"
    if not re.match(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$", source):
        raise ConfigurationError(f"--namespace {namespace!r} does not make valid event types ({source}.created)",
                                 fix="use lower-case dotted words, e.g. --namespace shop.inventory")
    return ServiceNames(service=name, package=package, root=root, directory=directory, entity=entity,
                        entity_snake=entity_snake, plural=many, path=many.replace("_", "-"), source=source)


def _refuse_shadowing(name: str, directory: Path) -> None:
    """A top-level package named like an installed or standard module would hide it (or be hidden)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return
    if spec is None:
        return
    where = Path(spec.origin or (list(spec.submodule_search_locations or []) or [""])[0])
    if spec.origin in ("built-in", "frozen") or directory.absolute() not in (where, *where.parents):
        raise ConfigurationError(
            f"a top-level package {name!r} would shadow the installed module {name!r} ({spec.origin})",
            fix="choose another name, or put it inside your project's package (--into src/<project>)")
