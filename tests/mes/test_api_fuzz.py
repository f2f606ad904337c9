"""Property-based run of schemathesis over the four services' OpenAPI schemas: no server error.

The MES runs as `isles run` does (a real uvicorn process on SQLite files, migrations and example
data); schemathesis generates requests from /openapi.json for every operation - schema examples,
boundary values and random data, with hostile values put into generated bodies by
hostile_hooks.py - with an admin's API token, and fails on any 5xx answer.
The token is an API token rather than a session's access token so that a generated
``POST /logout`` cannot end the run's session halfway; path parameters that name one entity get
the ids of the example data, so those operations reach their logic rather than a 404.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ADMIN_PASSWORD = "Fuzzing-boss-Secret-77"
EXAMPLES = 10  # per operation and phase; ~8,000 requests over ~160 operations in under a minute


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _st() -> str:
    path = Path(sys.executable).parent / "st"
    return str(path) if path.exists() else (shutil.which("st") or "")


@pytest.fixture
def mes_server(tmp_path):
    port = free_port()
    env = {**os.environ, "ISLES_DATA_DIR": str(tmp_path / "data"), "MES_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "MES_DEMO_PASSWORD": "Demo-users-Secret-77", "MES_AUTH_ARGON2_TIME_COST": "1",
           "MES_AUTH_ARGON2_MEMORY_KIB": "8", "MES_AUTH_ARGON2_PARALLELISM": "1", "PORT": str(port),
           "ISLES_SYSTEM": "mes.system:system"}
    for key in [k for k in env if k.endswith("DATABASE_URL") or k in ("KAFKA_BROKERS", "REDIS_URL", "ISLES_TRANSPORT")]:
        del env[key]
    log = (tmp_path / "server.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "isles.cli", "run"], cwd=tmp_path, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"isles run did not come up:\n{(tmp_path / 'server.log').read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, tmp_path / "server.log"
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def test_no_operation_of_the_four_services_answers_with_a_server_error(mes_server, tmp_path):
    base, server_log = mes_server
    if not _st():
        pytest.fail("schemathesis (st) is not installed: pip install -e '.[test]'")
    access = httpx.post(f"{base}/api/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD}).json()
    token = httpx.post(f"{base}/api/auth/api-tokens", json={"name": "fuzz", "scopes": ["*"]},
                       headers={"Authorization": f"Bearer {access['accessToken']}"}).json()["token"]
    # Ids of the example data, so operations on one entity reach their logic instead of a 404.
    auth = {"Authorization": f"Bearer {token}"}
    known = {name: httpx.get(f"{base}{path}", headers=auth).json()["items"][index]["id"] for name, path, index in (
        ("part_id", "/api/material/parts", 0), ("lot_id", "/api/material/lots", 0),
        ("location_id", "/api/material/locations", 0), ("work_order_id", "/api/work-order/work-orders", -1),
        ("routing_id", "/api/resource/routings", 0))}
    (tmp_path / "schemathesis.toml").write_text(
        "[parameters]\n" + "".join(f'{name} = "{value}"\n' for name, value in known.items()))
    run = subprocess.run(
        [_st(), "run", f"{base}/openapi.json", "--header", f"Authorization: Bearer {token}",
         "--checks", "not_a_server_error", "--phases", "examples,coverage,fuzzing",
         # one worker: with two, hypothesis parses lambdas' source in two threads at once and
         # CPython 3.11's ast fails now and then ("AST constructor recursion depth mismatch")
         "--max-examples", str(EXAMPLES), "--workers", "1", "--generation-deterministic",
         "--exclude-path", "/api/auth/me/password",  # a wrong current password counts towards lockout
         "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        # hostile values (lone surrogates, NUL, bidi overrides, huge integers) in generated bodies
        env={**os.environ, "SCHEMATHESIS_HOOKS": "hostile_hooks",
             "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])})
    # what went wrong comes before the summary: keep the head and the tail of a long report
    report = run.stdout if len(run.stdout) < 12000 else f"{run.stdout[:6000]}\n[...]\n{run.stdout[-6000:]}"
    assert run.returncode == 0, f"{report}\n--- server log ---\n{server_log.read_text()[-4000:]}"
    assert "Server error" not in run.stdout
