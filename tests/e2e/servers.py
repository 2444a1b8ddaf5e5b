"""Servers the e2e tests start on loopback from what `make test` installs: any command that
listens on a port (redis-server, moto's S3 server), stopped when the test is done."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _wait_listening(port: int, proc: subprocess.Popen, what: str, log: Path) -> None:
    import socket

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert proc.poll() is None, f"{what} exited: {log.read_text()[-2000:]}"
        time.sleep(0.2)
    pytest.fail(f"{what} did not listen on {port}: {log.read_text()[-2000:]}")


@contextmanager
def serving(command: list[str], port: int, what: str) -> Iterator[None]:
    """`command` running (its own temp folder as cwd) until it listens on `port`; stopped on exit."""
    root = Path(tempfile.mkdtemp(prefix="airflow-mlops-server-"))
    log = root / "server.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=root, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, proc, what, log)
        yield
    finally:
        proc.terminate()
        proc.wait(30)
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def redis_server() -> Iterator[str]:
    """Debian's redis-server (make test installs it) on a free loopback port, nothing on disk."""
    from tests.ports import free_port

    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: run `make system` (make test does)"
    port = free_port()
    args = ["--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    with serving([binary, *args], port, "redis-server"):
        yield f"redis://127.0.0.1:{port}/0"


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3 server (from the lock) on a free loopback port; its endpoint URL."""
    import sys

    from tests.ports import free_port

    port = free_port()
    moto = str(Path(sys.executable).parent / "moto_server")
    with serving([moto, "-H", "127.0.0.1", "-p", str(port)], port, "moto_server"):
        yield f"http://127.0.0.1:{port}"


def processes_with_home(home: Path) -> list[int]:
    """Processes (other than this one) started with AIRFLOW_HOME=home."""
    found = []
    for env_file in Path("/proc").glob("[0-9]*/environ"):
        try:
            env = env_file.read_bytes().split(b"\0")
        except OSError:
            continue
        if f"AIRFLOW_HOME={home}".encode() in env and int(env_file.parent.name) != os.getpid():
            found.append(int(env_file.parent.name))
    return found
