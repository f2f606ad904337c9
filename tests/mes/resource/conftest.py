"""The resource tests share the auth tests' fixtures (a System with both services, since every
resource endpoint needs a token from auth)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("mes_auth_test_fixtures", Path(__file__).parents[1] / "auth" / "conftest.py")
_fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_fixtures)

mes_env = _fixtures.mes_env
make_system = _fixtures.make_system
system = _fixtures.system
client = _fixtures.client
api = _fixtures.api
