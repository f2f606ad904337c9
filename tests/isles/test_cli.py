"""The isles command line, run as a user runs it."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent
ISLES = [sys.executable, "-m", "isles.cli"]


def isles(*args: str, env: dict[str, str], system: str | None = "mes.system:system") -> subprocess.CompletedProcess:
    """Run ``isles`` in a folder with no pyproject.toml, on ``system`` (given as ISLES_SYSTEM)."""
    full_env = {**os.environ, **env, "COLUMNS": "200",
                "PYTHONPATH": f"{Path(__file__).parent}{os.pathsep}{ROOT / 'src'}"}
    full_env.pop("ISLES_SYSTEM", None)
    if system:
        full_env["ISLES_SYSTEM"] = system
    return subprocess.run([*ISLES, *args], env=full_env, capture_output=True, text=True, timeout=120,
                          cwd=str(Path(env["ISLES_DATA_DIR"]).parent))


def test_demo_renames_the_part_and_exits_zero(env):
    result = isles("demo", env=env)
    assert result.returncode == 0, result.stderr
    assert "P-99999" in result.stdout and "demo passed" in result.stdout


def test_status_lists_every_service(env):
    result = isles("status", env=env)
    assert result.returncode == 0, result.stderr
    assert "material" in result.stdout and "work_order" in result.stdout and "backlog" in result.stdout


def test_a_bad_database_url_is_a_clear_error_without_the_password(env):
    result = isles("status", env={**env, "MATERIAL_DATABASE_URL": "postgresql://app:hunter2@127.0.0.1:1/mes"})
    assert result.returncode == 1  # the other services are still shown (see test_bad_settings)
    assert "service 'material'" in result.stderr and "fix:" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_a_wrong_system_path_says_how_to_fix_it(env):
    result = isles("status", env=env, system="nowhere.system:system")
    assert result.returncode == 2 and "ISLES_SYSTEM" in result.stderr


async def test_dead_letters_listed_and_retried_from_the_command_line(env):
    import toy_shop

    system = toy_shop.build_system(env=env, consumer_options={"max_attempts": 1})
    await system.start()
    bad = await toy_shop.create_item("bad")
    toy_shop.FAIL_KEYS.add(str(bad))
    await toy_shop.rename(bad, "bad-2")
    await system.drain()
    await system.stop()
    toy_shop.FAIL_KEYS.clear()
    listed = isles("dlq", "list", env=env, system="toy_shop:build_system")
    assert listed.returncode == 0 and "injected failure" in listed.stdout and "dead" in listed.stdout
    retried = isles("dlq", "retry", "--all", env=env, system="toy_shop:build_system")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "2 event(s) applied over 1 key(s)" in retried.stdout
    assert "no dead letters" in isles("dlq", "list", env=env, system="toy_shop:build_system").stdout


def test_help_teaches(env):
    result = isles("--help", env=env)
    assert result.returncode == 0
    for command in ("run", "demo", "status", "dlq", "resync"):
        assert command in result.stdout


@pytest.mark.parametrize("command", [["run"], ["serve", "--service", "material"]])
def test_a_busy_port_is_one_line_before_anything_starts(env, command):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = isles(*command, "--port", str(port), env=env, system="mes.system:system")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "PORT=9000 make run" in result.stderr and "--port" in result.stderr
    assert "running" not in result.stdout and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_with_no_system_named_the_error_names_the_three_ways_to_name_one(env):
    result = isles("status", env=env, system=None)
    assert result.returncode == 2, result.stdout + result.stderr
    for way in ("--system", "ISLES_SYSTEM", "[tool.isles]", "pyproject.toml"):
        assert way in result.stderr
    assert "Traceback" not in result.stderr and "mes" not in result.stderr


def test_the_system_named_in_pyproject_is_the_default(env):
    folder = Path(env["ISLES_DATA_DIR"]).parent
    (folder / "pyproject.toml").write_text('[tool.isles]\nsystem = "mes.system:system"\n')
    result = isles("status", env=env, system=None)
    assert result.returncode == 0, result.stderr
    assert "work_order" in result.stdout
