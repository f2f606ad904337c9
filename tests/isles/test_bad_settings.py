"""Every bad setting is ONE short message that names the setting and the fix, exit status 2, at once.

Each case runs the real command line in a subprocess against the MES system with a throw-away data
folder. A hang fails the case (``timeout=``) instead of hanging the suite; a traceback fails it by
its length; a password that leaks fails it by name (every password below is ``S3cretPW``).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
PASSWORD = "S3cretPW"
NO_DB = "postgresql://postgres@127.0.0.1:1/isles_nowhere"  # port 1: refused at once

# (id, settings, the setting the message must name, words the message must contain)
CASES = [
    ("redis-url-without-colon", {"REDIS_URL": f"redis//:{PASSWORD}@host:6379"}, "REDIS_URL", ()),
    ("redis-url-bad-port", {"ISLES_TRANSPORT": "redis", "REDIS_URL": f"redis://:{PASSWORD}@127.0.0.1:notaport/0"},
     "REDIS_URL", ("port",)),
    ("redis-unknown-scheme", {"REDIS_URL": f"http://:{PASSWORD}@127.0.0.1:6379/0"}, "REDIS_URL", ()),
    ("redis-without-url", {"ISLES_TRANSPORT": "redis"}, "REDIS_URL", ()),
    ("unescaped-at-in-password", {"MATERIAL_DATABASE_URL": f"postgresql://u:{PASSWORD}@ss@127.0.0.1/db"},
     "MATERIAL_DATABASE_URL", ("%40",)),
    ("unescaped-at-in-shared-url", {"DATABASE_URL": f"postgresql://u:p@{PASSWORD}@127.0.0.1/db"},
     "DATABASE_URL", ("%40",)),
    ("non-numeric-port", {"WORK_ORDER_DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:notaport/x"},
     "WORK_ORDER_DATABASE_URL", ("port",)),
    ("port-out-of-range", {"WORK_ORDER_DATABASE_URL": f"postgresql://u:{PASSWORD}@127.0.0.1:99999/x"},
     "WORK_ORDER_DATABASE_URL", ("port",)),
    ("unknown-scheme", {"AUTH_DATABASE_URL": f"mysql://u:{PASSWORD}@h/db"}, "AUTH_DATABASE_URL", ("postgresql",)),
    ("seed-003-alias", {"RESOURCE_DB_URL": f"postgres://u:{PASSWORD}@127.0.0.1:5432"}, "RESOURCE_DB_URL", ()),
    ("kafka-port-not-a-number", {"KAFKA_BROKERS": "host:notaport"}, "KAFKA_BROKERS", ("port",)),
    ("kafka-no-host", {"KAFKA_BROKERS": ":9092"}, "KAFKA_BROKERS", ()),
    ("kafka-empty-entry", {"KAFKA_BROKERS": "127.0.0.1:9092,,127.0.0.1:9093"}, "KAFKA_BROKERS", ()),
    ("kafka-no-port", {"KAFKA_BROKERS": "127.0.0.1"}, "KAFKA_BROKERS", ()),
    ("transport-nonsense", {"ISLES_TRANSPORT": "nonsense"}, "ISLES_TRANSPORT", ()),
    ("negative-pool-min", {"WORK_ORDER_DB_POOL_MIN": "-3"}, "WORK_ORDER_DB_POOL_MIN", ()),
    ("zero-pool-max", {"MATERIAL_DATABASE_URL": NO_DB, "MATERIAL_DB_POOL_MAX": "0"}, "MATERIAL_DB_POOL_MAX", ()),
    ("pool-param-in-url", {"MATERIAL_DATABASE_URL": NO_DB + "?connection_limit=-1"}, "connection_limit", ()),
    ("sqlite-synchronous", {"ISLES_SQLITE_SYNCHRONOUS": "sometimes"}, "ISLES_SQLITE_SYNCHRONOUS", ()),
    ("ping-after", {"ISLES_DB_PING_AFTER": "soon"}, "ISLES_DB_PING_AFTER", ()),
    ("short-auth-secret", {"ISLES_AUTH_SECRET": PASSWORD}, "ISLES_AUTH_SECRET", ("secrets.token_urlsafe",)),
    # mixed topology: auth on SQLite (opened first), work_order's setting wrong
    ("mixed-topology", {"MATERIAL_DATABASE_URL": NO_DB, "WORK_ORDER_DATABASE_URL": "postgresql://h:x/y"},
     "WORK_ORDER_DATABASE_URL", ()),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_IMPORT_SECONDS: list[float] = []  # measured once per session


def _import_seconds(env: dict[str, str]) -> float:
    """How long a fresh interpreter takes to import the MES here."""
    if not _IMPORT_SECONDS:
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import mes.system"], env=env, check=True, capture_output=True,
                       timeout=120)
        _IMPORT_SECONDS.append(time.monotonic() - started)
    return _IMPORT_SECONDS[0]


def _isles(args: list[str], settings: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.endswith(("_DATABASE_URL", "_DB_URL")) and not k.startswith(("ISLES_", "KAFKA_", "REDIS_"))
           and k != "DATABASE_URL"}
    env.update({"ISLES_SYSTEM": "mes.system:system", "ISLES_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200",
                "PYTHONPATH": os.pathsep.join(filter(None, [SRC, env.get("PYTHONPATH")]))})
    import_seconds = _import_seconds(env)  # with good settings: a bad one may stop the import itself
    env.update(settings)
    # 5 s for the command's own work, on top of what importing the MES costs on this machine now
    # (under a heavy load the import alone took over 5 s; a hang still fails both attempts)
    timeout = (5 if args[0] == "status" else 15) + import_seconds
    for attempt in (1, 2):  # a second chance only for a machine too busy to import in time: a hang fails both
        try:
            return subprocess.run([sys.executable, "-m", "isles.cli", *args], check=False, env=env, cwd=tmp_path,
                                  capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _assert_one_clear_error(result: subprocess.CompletedProcess, setting: str, words: tuple[str, ...]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert len(output.strip().splitlines()) <= 4, output
    assert setting in output, output
    assert "fix" in output, output
    assert PASSWORD not in output, output
    assert "Traceback" not in output, output
    for word in words:
        assert word in output, output


@pytest.mark.parametrize("settings, setting, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_status_with_a_bad_setting(tmp_path, settings, setting, words):
    _assert_one_clear_error(_isles(["status"], settings, tmp_path), setting, words)


@pytest.mark.parametrize("case", ["unescaped-at-in-password", "kafka-port-not-a-number", "redis-url-without-colon",
                                  "short-auth-secret", "mixed-topology", "negative-pool-min"])
def test_run_with_a_bad_setting(tmp_path, case):
    _, settings, setting, words = next(c for c in CASES if c[0] == case)
    result = _isles(["run", "--port", str(_free_port()), "--no-seed"], settings, tmp_path)
    _assert_one_clear_error(result, setting, words)


def test_dlq_list_with_a_bad_setting_exits(tmp_path):
    result = _isles(["dlq", "list"], {"REDIS_URL": f"redis//:{PASSWORD}@host:6379"}, tmp_path)
    _assert_one_clear_error(result, "REDIS_URL", ())


def test_run_with_an_unreachable_database_exits_at_once(tmp_path):
    """Reachable settings, absent server: one line (the service, its setting, the fix), no hang."""
    result = _isles(["run", "--port", str(_free_port()), "--no-seed"], {"WORK_ORDER_DATABASE_URL": NO_DB}, tmp_path)
    _assert_one_clear_error(result, "WORK_ORDER_DATABASE_URL", ("work_order",))


def test_status_shows_an_unreachable_service_and_goes_on(tmp_path):
    result = _isles(["status"], {"MATERIAL_DATABASE_URL": NO_DB}, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "service 'material'" in result.stderr and "fix:" in result.stderr, output
    lines = {line.split()[1]: line for line in output.splitlines() if line.startswith("│ ") and line.split()[1] != "│"}
    assert "ok" not in lines["material"], output
    assert all(" ok " in lines[name] for name in ("auth", "resource", "work_order")), output


@pytest.mark.parametrize("variable, suggestion", [("MATERAIL_DATABASE_URL", "MATERIAL_DATABASE_URL"),
                                                  ("WORKORDER_DATABASE_URL", "WORK_ORDER_DATABASE_URL"),
                                                  ("WORKORDER_DB_URL", "WORK_ORDER_DB_URL"),
                                                  ("SHIPPING_DATABASE_URL", None)])
def test_a_setting_for_no_service_is_warned_about(tmp_path, variable, suggestion):
    result = _isles(["status"], {variable: f"postgresql://u:{PASSWORD}@127.0.0.1:1/x"}, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    warning = [line for line in output.splitlines() if variable in line]
    assert len(warning) == 1, output
    assert "no service" in warning[0], output
    if suggestion:
        assert suggestion in warning[0], output
    assert PASSWORD not in output
