"""Free loopback ports for the servers the tests start (shared by every tier)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A port nobody listens on right now, on 127.0.0.1 only."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
