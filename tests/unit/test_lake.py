"""Partitions: keys, atomic writes, byte-identical reruns."""

from __future__ import annotations

from datetime import datetime

import pytest

from include.lake import partitions as lake
from include.lake.partitions import (
    conform,
    file_sha256,
    interval_key,
    partition_path,
    read_partition,
    write_partition,
)
from include.source.dataset import WEATHER_OBSERVATIONS

from .conftest import utc, weather_rows

START, END = utc(2026, 11, 10), utc(2026, 11, 11)


def test_interval_key_and_path():
    assert interval_key(START, END) == "20261110T0000Z_20261111T0000Z"
    path = partition_path("/lake", "raw", "weather_observations", START, END)
    assert str(path) == "/lake/raw/weather_observations/interval=20261110T0000Z_20261111T0000Z/part-0.parquet"
    with pytest.raises(ValueError, match="naive"):
        interval_key(datetime(2026, 11, 10), END)


def test_rewrite_is_byte_identical_whatever_the_input_order(tmp_path):
    frame = weather_rows([utc(2026, 11, 10, h) for h in (5, 1, 3)])
    first = write_partition(
        conform(frame, WEATHER_OBSERVATIONS), WEATHER_OBSERVATIONS, tmp_path, "raw", START, END
    )
    shuffled = frame.iloc[[2, 0, 1]]
    second = write_partition(
        conform(shuffled, WEATHER_OBSERVATIONS), WEATHER_OBSERVATIONS, tmp_path, "raw", START, END
    )
    assert first.sha256 == second.sha256 and first.path == second.path
    assert first.rows == 3
    assert list(read_partition(first.path)["observed_at"].dt.hour) == [1, 3, 5]


def test_crash_mid_write_keeps_the_previous_partition_and_no_temp_file(tmp_path, monkeypatch):
    good = conform(weather_rows([utc(2026, 11, 10, 1)]), WEATHER_OBSERVATIONS)
    info = write_partition(good, WEATHER_OBSERVATIONS, tmp_path, "raw", START, END)

    def write_half_then_fail(table, sink, **kwargs):
        sink.write(b"PAR1 half a file")
        raise OSError("No space left on device")

    monkeypatch.setattr(lake.pq, "write_table", write_half_then_fail)
    bigger = conform(weather_rows([utc(2026, 11, 10, h) for h in range(5)]), WEATHER_OBSERVATIONS)
    with pytest.raises(OSError, match="No space left"):
        write_partition(bigger, WEATHER_OBSERVATIONS, tmp_path, "raw", START, END)
    folder = partition_path(tmp_path, "raw", "weather_observations", START, END).parent
    assert [p.name for p in folder.iterdir()] == ["part-0.parquet"]
    assert file_sha256(info.path) == info.sha256
    assert len(read_partition(info.path)) == 1


def test_conform_names_the_column_that_cannot_be_cast():
    frame = weather_rows([utc(2026, 11, 10, 1)])
    frame["temp_f"] = ["warm"]
    with pytest.raises(ValueError, match="'weather_observations', column 'temp_f'"):
        conform(frame, WEATHER_OBSERVATIONS)


def test_a_lake_root_of_an_unknown_scheme_is_refused_not_written_to_a_local_folder_named_after_it(
    monkeypatch, tmp_path
):
    from include.core.settings import get_settings

    monkeypatch.setenv("MLOPS_LAKE_ROOT", "gs://bucket/lake")
    with pytest.raises(ValueError, match=r"gs://bucket/lake.*other schemes are not installed"):
        get_settings()
    # control: an s3:// URL is the object-store lake; a path, and a file:// URL of one, the local lake
    monkeypatch.setenv("MLOPS_LAKE_ROOT", "s3://bucket/lake")
    assert get_settings().lake_root == "s3://bucket/lake"
    monkeypatch.setenv("MLOPS_LAKE_ROOT", str(tmp_path / "lake"))
    assert get_settings().lake_root == str(tmp_path / "lake")
    monkeypatch.setenv("MLOPS_LAKE_ROOT", f"file://{tmp_path / 'lake'}")
    assert get_settings().lake_root == str(tmp_path / "lake")
