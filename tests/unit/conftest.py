from __future__ import annotations

import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from include.source.database import insert_frame, sa_table
from include.source.dataset import SOURCE_TABLES, WEATHER_OBSERVATIONS
from tests.ports import free_port


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def weather_rows(times: list[datetime], origin: str = "JFK") -> pd.DataFrame:
    rows = []
    for i, ts in enumerate(times):
        row = {c.name: None for c in WEATHER_OBSERVATIONS.columns}
        row.update(origin=origin, observed_at=ts, temp_f=40.0 + i)
        rows.append(row)
    return pd.DataFrame(rows, columns=WEATHER_OBSERVATIONS.column_names)


@pytest.fixture
def source_engine(tmp_path: Path) -> sa.Engine:
    """A real, empty SQLite source database with every declared table."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'source.db'}")
    metadata = sa.MetaData()
    for table in SOURCE_TABLES:
        sa_table(table, metadata)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def insert(source_engine):
    def _insert(table, frame: pd.DataFrame) -> None:
        with source_engine.begin() as conn:
            insert_frame(conn, table, frame)

    return _insert


# --- S3: a real S3 API (moto's server, from the venv) on a free loopback port ----------------


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory) -> Iterator[str]:
    """One moto S3 server for the session (each test takes a fresh bucket): its URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    moto = str(Path(sys.executable).parent / "moto_server")
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, f"moto_server exited: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, f"moto_server did not listen: {log.read_text()[-2000:]}"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(30)


def aws_env(monkeypatch, tmp_path: Path, endpoint: str) -> None:
    """The standard AWS variables only, as a deployment sets them; no shared config files."""
    import s3fs

    for name, value in {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    s3fs.S3FileSystem.clear_instance_cache()  # the filesystem read its endpoint when it was made


@pytest.fixture
def s3_bucket(s3_endpoint, monkeypatch, tmp_path) -> Iterator[str]:
    """A fresh, empty bucket of the S3 server, with the AWS variables pointing at it: its name."""
    import boto3
    import s3fs

    aws_env(monkeypatch, tmp_path, s3_endpoint)
    bucket = f"t-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    yield bucket
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.fixture
def s3_lake(s3_bucket) -> tuple[str, str]:
    """(lake root URL, bucket) in a fresh bucket of the S3 server."""
    return f"s3://{s3_bucket}/lake", s3_bucket
