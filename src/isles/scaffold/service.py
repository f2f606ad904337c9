"""Write a new service package in the one shape every isles service has (``isles new service``).

The files come from the templates next to this module (``templates/*.tmpl``, ``string.Template``
with ``${name}`` placeholders). The initial migration is not a template: the new package is
imported and ``isles migrate new`` autogenerates it from the models on a scratch SQLite database,
so it is exactly what the models say, in isles' one revision format, with
``framework_tables.upgrade(op)`` first.
"""
from __future__ import annotations

import asyncio
import importlib
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from string import Template

from isles.errors import ConfigurationError
from isles.scaffold.names import ServiceNames, derive

TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Scaffold:
    """What ``new_service`` wrote: the names it derived and every file, the revision last."""

    names: ServiceNames
    files: list[Path] = field(default_factory=list)

    @property
    def test_file(self) -> Path:
        return self.names.directory / "tests" / f"test_{self.names.service}.py"


def _layout(names: ServiceNames) -> dict[str, str]:
    """Target path (relative to the package) -> template name."""
    return {
        "__init__.py": "__init__.py.tmpl",
        "service_def.py": "service_def.py.tmpl",
        "models.py": "models.py.tmpl",
        "events.py": "events.py.tmpl",
        "access.py": "access.py.tmpl",
        "api.py": "api.py.tmpl",
        f"{names.plural}.py": "concept.py.tmpl",
        "handlers.py": "handlers.py.tmpl",
        "tests/__init__.py": "tests_init.py.tmpl",
        f"tests/test_{names.service}.py": "test_service.py.tmpl",
    }


def render(template: str, values: dict[str, str]) -> str:
    """One template with ``values`` substituted; a placeholder without a value is a bug, not a blank."""
    return Template((TEMPLATES / template).read_text()).substitute(values)


def new_service(name: str, into: Path, *, entity: str = "Item", namespace: str | None = None,
                auth_source: str | None = None, description: str | None = None, force: bool = False) -> Scaffold:
    """Write the package ``<into>/<name>`` and its initial migration; refuse to replace an existing
    one unless ``force`` (which deletes it first). Raises ConfigurationError naming the fix."""
    names = derive(name, into, entity=entity, namespace=namespace)
    directory = names.directory
    if (directory.exists() or directory.is_symlink()) and not force:
        raise ConfigurationError(f"{directory} already exists; nothing was written", service=name,
                                 fix="choose another name or --into, or pass --force to replace it "
                                     "(its files are deleted)")
    values = names.substitutions(auth_source=auth_source,
                                 description=description or f"{names.plural.replace('_', ' ').capitalize()} "
                                                            f"(scaffolded by isles new service)")
    # rendered before anything is deleted: a template error must not cost the package --force replaces
    rendered = {directory / target: render(template, values) for target, template in _layout(names).items()}
    if force and directory.is_dir() and not directory.is_symlink():
        shutil.rmtree(directory)
    elif force and (directory.exists() or directory.is_symlink()):
        directory.unlink()
    written: list[Path] = []
    try:
        for path, text in rendered.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            written.append(path)
        revision = initial_revision(names)
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # no half-made package left behind
        raise
    migrations = directory / "migrations"
    return Scaffold(names, [*written, migrations / "__init__.py", revision])


def initial_revision(names: ServiceNames) -> Path:
    """Import the new package and autogenerate its first revision against a scratch SQLite database."""
    from isles.migrations import new_revision
    from isles.system import System

    for module in [m for m in sys.modules if m == names.package or m.startswith(names.package + ".")]:
        del sys.modules[module]  # a package replaced with --force in this process
    if str(names.root) not in sys.path:
        sys.path.insert(0, str(names.root))
    importlib.invalidate_caches()
    try:
        service = importlib.import_module(names.package).service
    except Exception as exc:
        raise ConfigurationError(f"the generated package {names.package} does not import from {names.root} "
                                 f"({type(exc).__name__}: {exc})", service=names.service,
                                 fix="check that --into is a folder of your project's source tree") from exc
    with tempfile.TemporaryDirectory(prefix="isles-new-") as scratch:
        env = {"ISLES_DATA_DIR": scratch}
        system = System(names.service, [service], env=env)
        path = asyncio.run(new_revision(system, names.service, "initial", env=env))
    if path is None:  # cannot happen with a model in the package; say so rather than write nothing
        raise ConfigurationError("autogenerate found no tables to create", service=names.service,
                                 fix="report this as a bug in isles new service")
    return path
