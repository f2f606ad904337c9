"""Shared constants for the transport test modules (kept out of conftest so modules can import them)."""
from __future__ import annotations

import os
import socket

REQUIRE_SERVERS = os.environ.get("CI") == "true" or os.environ.get("ISLES_REQUIRE_SERVERS") == "1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
