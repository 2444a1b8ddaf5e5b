"""The lake's storage helpers: one code path for a local folder and for S3 (moto's S3 server).

Each check has a control that shows it can fail: a write that is not atomic loses the old file,
a changed frame changes the bytes, an unreachable endpoint fails the upload, a cached listing
misses another writer's partition.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from include.lake import partitions as lake
from include.lake import storage
from include.lake.partitions import (
    conform,
    every_partition,
    every_partition_url,
    file_sha256,
    interval_of,
    partition_path,
    partition_url,
    partition_urls_between,
    partitions_between,
    read_partition,
    write_partition,
    write_text_atomic,
)
from include.source.dataset import FLIGHT_SCHEDULES, WEATHER_OBSERVATIONS
from tests.ports import free_port

from .conftest import aws_env, utc, weather_rows

START, END = utc(2026, 11, 10), utc(2026, 11, 11)


def schedules_frame() -> pd.DataFrame:
    """Three flights out of order, one without a tail number: strings, ints, timestamps, a null."""
    dep = [utc(2026, 11, 10, h) for h in (9, 7, 8)]
    return pd.DataFrame(
        {
            "flight_id": [30, 10, 20],
            "carrier": ["UA", "AA", "B6"],
            "flight_number": [1545, 1141, 725],
            "tailnum": ["N14228", None, "N804JB"],
            "origin": ["EWR", "JFK", "JFK"],
            "dest": ["IAH", "MIA", "BQN"],
            "scheduled_departure": dep,
            "scheduled_arrival": [d + timedelta(hours=3) for d in dep],
            "distance_mi": [1400, 1089, 1576],
            "published_at": [d - timedelta(days=2) for d in dep],
        }
    )


# sha256 and size of the partition file the pre-storage write_partition (temp file + os.replace,
# pq.write_table straight into the file) wrote for these frames with the pinned pyarrow (25.0.1).
# A pyarrow upgrade changes the writer's "created_by" and so these bytes: re-measure them then,
# after test_the_buffer_is_the_bytes_a_file_sink_gets passes on the new version.
OLD_CODE_PATH = {
    "weather_3_rows": ("094c64657558eccca00898925cdd5083de140f493b7d9aeaf7d323c52348169a", 2929),
    "weather_empty": ("17d9379622ce68388defa4c636f57e69b98df191dd63b11b93b2bb75b72a48fd", 2050),
    "schedules_3_rows": ("a75b9066507abd9d2d1378b3271afffda3e02613f8d435775db46a4398b89f84", 3297),
}


VALUE_COLUMN = {WEATHER_OBSERVATIONS.name: "temp_f", FLIGHT_SCHEDULES.name: "distance_mi"}


def fixed_frame(name: str):
    if name == "weather_3_rows":
        return weather_rows([utc(2026, 11, 10, h) for h in (5, 1, 3)]), WEATHER_OBSERVATIONS
    if name == "weather_empty":
        return weather_rows([]), WEATHER_OBSERVATIONS
    return schedules_frame(), FLIGHT_SCHEDULES


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


@pytest.mark.parametrize("relative", [False, True], ids=["absolute-root", "relative-root"])
def test_partitions_keep_the_names_pathlib_gave(tmp_path, monkeypatch, relative):
    monkeypatch.chdir(tmp_path)
    root = "lake" if relative else str(tmp_path / "lake")
    frame = conform(weather_rows([utc(2026, 11, 10, 1)]), WEATHER_OBSERVATIONS)
    info = write_partition(frame, WEATHER_OBSERVATIONS, root, "raw", START, END)
    assert info.path == str(partition_path(root, "raw", WEATHER_OBSERVATIONS.name, START, END))
    assert every_partition_url(root, "raw", WEATHER_OBSERVATIONS.name) == [info.path]
    assert every_partition(root, "raw", WEATHER_OBSERVATIONS.name) == [Path(info.path)]
    assert partitions_between(root, "raw", WEATHER_OBSERVATIONS.name, START, END) == [Path(info.path)]
    assert interval_of(info.path) == (START, END)
    back = read_partition(info.path)
    pd.testing.assert_frame_equal(back, pq.read_table(info.path).to_pandas())  # what the old read gave
    assert list(back.columns) == WEATHER_OBSERVATIONS.column_names and back["temp_f"].tolist() == [40.0]


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


def test_text_is_written_as_utf8_through_the_same_atomic_write(tmp_path):
    target = tmp_path / "a" / "b.json"
    write_text_atomic(target, '{"airport": "Zürich"}')
    assert target.read_bytes() == '{"airport": "Zürich"}'.encode()


def test_path_functions_refuse_a_url_root_instead_of_mangling_it():
    with pytest.raises(ValueError, match="partition_url"):
        partition_path("s3://bucket/lake", "raw", "t", START, END)
    with pytest.raises(ValueError, match="every_partition_url"):
        every_partition("s3://bucket/lake", "raw", "t")
    with pytest.raises(ValueError, match="partition_urls_between"):
        partitions_between("s3://bucket/lake", "raw", "t", START, END)
    assert partition_url("s3://bucket/lake/", "raw", "t", START, END) == (
        "s3://bucket/lake/raw/t/interval=20261110T0000Z_20261111T0000Z/part-0.parquet"
    )
    # control: a local root (also as a file:// URL) is a path, as before
    assert partition_path("file:///lake", "raw", "t", START, END) == partition_path(
        "/lake", "raw", "t", START, END
    )


# --- byte identity ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OLD_CODE_PATH))
def test_write_partition_gives_the_bytes_the_old_code_path_gave(tmp_path, name):
    frame, table = fixed_frame(name)
    info = write_partition(conform(frame, table), table, tmp_path, "raw", START, END)
    assert (info.sha256, info.bytes) == OLD_CODE_PATH[name]
    assert file_sha256(info.path) == info.sha256 and Path(info.path).stat().st_size == info.bytes  # on disk
    rerun = write_partition(conform(frame.iloc[::-1], table), table, tmp_path, "raw", START, END)
    assert rerun == info  # a rerun on the same rows, whatever their order, is byte-identical

    # control: the pinned hash notices one changed value, and the pandas metadata the old code dropped
    changed = frame.copy()
    changed[VALUE_COLUMN[table.name]] += 1
    if len(frame):
        other = write_partition(conform(changed, table), table, tmp_path / "other", "raw", START, END)
        assert other.sha256 != info.sha256
    with_metadata = pa.Table.from_pandas(
        conform(frame, table), schema=lake.arrow_schema(table), preserve_index=False
    )
    sink = pa.BufferOutputStream()
    pq.write_table(with_metadata, sink, compression="zstd")
    assert hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest() != info.sha256


def test_the_buffer_is_the_bytes_a_file_sink_gets(tmp_path):
    """What the old code did (pq.write_table into the open file) and the buffer give the same bytes."""
    frame, table = fixed_frame("schedules_3_rows")
    arrow = pa.Table.from_pandas(conform(frame, table), schema=lake.arrow_schema(table), preserve_index=False)
    arrow = arrow.replace_schema_metadata(None)
    with open(tmp_path / "file.parquet", "wb") as fh:
        pq.write_table(arrow, fh, compression="zstd")
    assert lake._parquet_bytes(arrow) == (tmp_path / "file.parquet").read_bytes()
    # control: another codec gives other bytes, so the equality above is not vacuous
    pq.write_table(arrow, tmp_path / "snappy.parquet", compression="snappy")
    assert lake._parquet_bytes(arrow) != (tmp_path / "snappy.parquet").read_bytes()


# --- S3 (moto's S3 server on loopback: the s3_endpoint and s3_lake fixtures of conftest.py) -----


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


def test_s3_round_trip_gives_the_local_bytes_and_one_object_per_file(s3_lake, tmp_path):
    root, bucket = s3_lake
    frame, table = fixed_frame("schedules_3_rows")
    info = write_partition(conform(frame, table), table, root, "validated", START, END)
    local = write_partition(conform(frame, table), table, tmp_path, "validated", START, END)

    assert info.path == partition_url(root, "validated", table.name, START, END)
    assert info.path.startswith(f"s3://{bucket}/lake/validated/flight_schedules/interval=")
    assert (info.sha256, info.bytes) == (local.sha256, local.bytes) == OLD_CODE_PATH["schedules_3_rows"]
    assert file_sha256(info.path) == info.sha256  # what the server stored
    assert storage.read_bytes(info.path) == Path(local.path).read_bytes()
    pd.testing.assert_frame_equal(read_partition(info.path), read_partition(local.path))
    assert every_partition_url(root, "validated", table.name) == [info.path]
    assert partition_urls_between(root, "validated", table.name, START, END) == [info.path]
    assert partition_urls_between(root, "validated", table.name, END, END + timedelta(days=1)) == []
    assert interval_of(info.path) == (START, END)

    reason = storage.join(root, "quarantine", table.name, info.path.split("/")[-2], "reason.json")
    write_text_atomic(reason, '{"why": "late"}')
    assert storage.read_bytes(reason) == b'{"why": "late"}'
    assert storage.exists(reason) and storage.is_file(reason)
    rerun = write_partition(conform(frame.iloc[::-1], table), table, root, "validated", START, END)
    assert rerun == info
    # one object per file, no temporary objects left behind
    assert _keys(bucket) == sorted(
        [
            info.path.removeprefix(f"s3://{bucket}/"),
            reason.removeprefix(f"s3://{bucket}/"),
        ]
    )
    # control: a missing object is an error, not empty bytes
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(root, "validated", "nothing.parquet"))


def test_a_failed_partition_write_to_s3_keeps_the_previous_object(s3_lake, monkeypatch):
    root, bucket = s3_lake
    good = conform(weather_rows([utc(2026, 11, 10, 1)]), WEATHER_OBSERVATIONS)
    info = write_partition(good, WEATHER_OBSERVATIONS, root, "raw", START, END)

    def write_half_then_fail(table, sink, **kwargs):
        sink.write(b"PAR1 half a file")
        raise OSError("worker killed")

    monkeypatch.setattr(lake.pq, "write_table", write_half_then_fail)
    with pytest.raises(OSError, match="worker killed"):
        write_partition(good.iloc[:0], WEATHER_OBSERVATIONS, root, "raw", START, END)
    assert file_sha256(info.path) == info.sha256
    assert len(_keys(bucket)) == 1


def test_a_long_lived_reader_lists_what_another_writer_added(s3_lake):
    import boto3
    import s3fs

    root, bucket = s3_lake
    day2 = (END, END + timedelta(days=1))
    good = conform(weather_rows([utc(2026, 11, 10, 1)]), WEATHER_OBSERVATIONS)
    first = write_partition(good, WEATHER_OBSERVATIONS, root, "raw", START, END)
    folder = storage.join(root, "raw", WEATHER_OBSERVATIONS.name)
    cached = s3fs.S3FileSystem(skip_instance_cache=True)  # fsspec's default: listings cached
    cached_view = cached.ls(storage.resolve(folder)[1])
    assert every_partition_url(root, "raw", WEATHER_OBSERVATIONS.name) == [first.path]

    # another worker publishes the next day (its own client, straight to the bucket)
    second = partition_url(root, "raw", WEATHER_OBSERVATIONS.name, *day2)
    key = second.removeprefix(f"s3://{bucket}/")
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=storage.read_bytes(first.path))
    assert every_partition_url(root, "raw", WEATHER_OBSERVATIONS.name) == [first.path, second]
    assert storage.ls(folder) == [first.path.rsplit("/", 1)[0], second.rsplit("/", 1)[0]]
    # control: a filesystem that caches listings still answers with the old one
    assert cached.ls(storage.resolve(folder)[1]) == cached_view and len(cached_view) == 1


def test_control_an_unreachable_endpoint_fails_the_write(monkeypatch, tmp_path):
    """The S3 tests above go where AWS_ENDPOINT_URL says: with nothing listening there, they fail."""
    aws_env(monkeypatch, tmp_path, f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(Exception, match="Could not connect"):
            storage.write_bytes_atomic("s3://lake-nowhere/lake/x.json", b"{}")
    finally:
        import s3fs

        s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_find_lists_files_at_any_depth_and_remove_deletes_one(kind, request, tmp_path):
    """What the Great Expectations store backend (include/quality/gx_store.py) lists and deletes."""
    root = request.getfixturevalue("s3_lake")[0] if kind == "s3" else str(tmp_path / "site")
    for rel in ("index.html", "validations/s/k/t/page.html", "static/a.css"):
        storage.write_bytes_atomic(storage.join(root, *rel.split("/")), b"x")
    if kind == "local":  # a write under way in another process: not a file yet
        (tmp_path / "site" / "validations" / ".page.html.abc123.tmp").write_bytes(b"half")
    assert storage.find(root) == ["index.html", "static/a.css", "validations/s/k/t/page.html"]
    assert storage.find(storage.join(root, "validations")) == ["s/k/t/page.html"]
    assert storage.remove(storage.join(root, "static", "a.css")) is True
    assert storage.find(root) == ["index.html", "validations/s/k/t/page.html"]
    # control: nothing to remove is said, a missing folder lists nothing
    assert storage.remove(storage.join(root, "static", "a.css")) is False
    assert storage.find(storage.join(root, "nowhere")) == []


def test_an_unreachable_object_store_is_an_error_never_nothing_there(s3_lake, monkeypatch, tmp_path):
    """fsspec's exists/isfile answer False on any error: a store that cannot be reached must not
    look like a missing partition or record (the lake fails closed)."""
    from tests.ports import free_port
    from tests.unit.conftest import aws_env

    root, _ = s3_lake
    written = storage.join(root, "raw", "t", "interval=x", "part-0.parquet")
    storage.write_bytes_atomic(written, b"bytes")
    missing = storage.join(root, "raw", "t", "interval=y", "part-0.parquet")
    # control: the store answers, and a missing key is "not there"
    assert storage.is_file(written) and storage.exists(storage.join(root, "raw"))
    assert not storage.is_file(missing) and not storage.exists(missing)
    aws_env(monkeypatch, tmp_path, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    for call in (storage.is_file, storage.exists):
        with pytest.raises(Exception, match="Could not connect to the endpoint URL"):
            call(written)
        with pytest.raises(Exception, match="Could not connect to the endpoint URL"):
            call(missing)
