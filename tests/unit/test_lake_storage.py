"""The lake's storage helpers: one code path for a local folder and for S3 (moto's S3 server).

Each check has a control that shows it can fail: a write that is not atomic loses the old file,
fsspec's own glob misreads a folder name, an unreachable endpoint fails the upload.
"""

from __future__ import annotations

import hashlib
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.lake import storage
from tests.ports import free_port

# --- local folder -------------------------------------------------------------------------------


@pytest.mark.parametrize("relative", [False, True], ids=["absolute-root", "relative-root"])
def test_local_round_trip_keeps_the_path_form_the_caller_used(tmp_path, monkeypatch, relative):
    monkeypatch.chdir(tmp_path)
    root = "lake" if relative else str(tmp_path / "lake")
    target = storage.join(root, "raw", "t", "interval=a", "blob.bin")
    assert target == str(Path(root) / "raw" / "t" / "interval=a" / "blob.bin")  # what pathlib gave

    storage.write_bytes_atomic(target, b"first")
    assert storage.read_bytes(target) == b"first"
    assert storage.exists(target) and storage.is_file(target)
    assert storage.sha256(target) == hashlib.sha256(b"first").hexdigest()
    assert storage.glob(storage.join(root, "raw", "t"), "interval=*/*.bin") == [target]
    assert storage.ls(storage.join(root, "raw", "t")) == [storage.join(root, "raw", "t", "interval=a")]

    # control: a second write is what is read back (not a stale or constant value), and a missing
    # file is an error, not empty bytes
    storage.write_bytes_atomic(target, b"second")
    assert storage.read_bytes(target) == b"second"
    missing = storage.join(root, "raw", "t", "interval=b", "blob.bin")
    assert not storage.exists(missing)
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(missing)
    assert storage.glob(storage.join(root, "nowhere"), "interval=*/*.bin") == []
    assert storage.ls(storage.join(root, "nowhere")) == []


def test_glob_takes_the_folder_literally(tmp_path):
    root = str(tmp_path / "lake[1]")
    target = storage.join(root, "interval=x", "part-0.parquet")
    storage.write_bytes_atomic(target, b"x")
    assert storage.glob(root, "interval=*/part-0.parquet") == [target]
    assert storage.glob(root, "interval=*/part-1.parquet") == []
    assert storage.glob(root, "*") == []  # `*` never crosses a folder
    # control: fsspec's own glob reads "[1]" as a character class and finds nothing
    fs, path = storage.resolve(root)
    assert fs.glob(f"{path}/interval=*/part-0.parquet") == []


def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    target = tmp_path / "zone" / "reason.json"
    storage.write_bytes_atomic(target, b"old content")

    def disk_full(fd: int) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr(storage.os, "fsync", disk_full)  # the new bytes are written, not yet durable
    with pytest.raises(OSError, match="No space left"):
        storage.write_bytes_atomic(target, b"new content, longer than the old")
    assert target.read_bytes() == b"old content"
    assert [p.name for p in target.parent.iterdir()] == ["reason.json"]

    # control: the same failure in a write to the final path (not atomic) loses the old content
    naive = tmp_path / "zone" / "naive.json"
    naive.write_bytes(b"old content")
    with pytest.raises(OSError, match="No space left"), open(naive, "wb") as fh:
        fh.write(b"new cont")
        fh.flush()
        storage.os.fsync(fh.fileno())
    assert naive.read_bytes() != b"old content"


# --- byte identity ------------------------------------------------------------------------------


# --- S3 (moto's S3 server on loopback) ----------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory) -> Iterator[str]:
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


def _aws_env(monkeypatch, tmp_path: Path, endpoint: str) -> None:
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
def s3_lake(s3_endpoint, monkeypatch, tmp_path) -> Iterator[tuple[str, str]]:
    """(lake root URL, bucket) in a fresh bucket of the S3 server."""
    import boto3
    import s3fs

    _aws_env(monkeypatch, tmp_path, s3_endpoint)
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=bucket)
    yield f"s3://{bucket}/lake", bucket
    s3fs.S3FileSystem.clear_instance_cache()


def _keys(bucket: str) -> list[str]:
    import boto3

    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def test_s3_bytes_round_trip_with_urls_in_and_out(s3_lake):
    root, bucket = s3_lake
    target = storage.join(root + "/", "raw", "t", "interval=a", "blob.bin")
    assert target == f"s3://{bucket}/lake/raw/t/interval=a/blob.bin"
    storage.write_bytes_atomic(target, b"first")
    assert storage.read_bytes(target) == b"first"
    assert storage.exists(target) and storage.is_file(target)
    assert not storage.is_file(storage.join(root, "raw", "t"))  # a prefix is not a file
    assert storage.sha256(target) == hashlib.sha256(b"first").hexdigest()
    assert storage.glob(storage.join(root, "raw", "t"), "interval=*/*.bin") == [target]
    assert storage.ls(storage.join(root, "raw", "t")) == [storage.join(root, "raw", "t", "interval=a")]
    assert _keys(bucket) == ["lake/raw/t/interval=a/blob.bin"]  # no folder markers, no temp objects
    # control: the second write is what is read back, and a missing object is an error
    storage.write_bytes_atomic(target, b"second")
    assert storage.read_bytes(target) == b"second"
    missing = storage.join(root, "raw", "t", "interval=b", "blob.bin")
    assert not storage.exists(missing)
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(missing)
    assert storage.glob(storage.join(root, "nowhere"), "*/*.bin") == []
    assert storage.ls(storage.join(root, "nowhere")) == []


def test_control_an_unreachable_endpoint_fails_the_write(monkeypatch, tmp_path):
    """The S3 tests above go where AWS_ENDPOINT_URL says: with nothing listening there, they fail."""
    _aws_env(monkeypatch, tmp_path, f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(Exception, match="Could not connect"):
            storage.write_bytes_atomic("s3://lake-nowhere/lake/x.json", b"{}")
    finally:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()
