"""Extraction never drops or crashes on a value (issue 17, item 1), on a real SQLite source.

Each case corrupts one row of a real table by SQL, as a broken upstream writer would, then
extracts the interval: the row is in the raw partition, in the interval's quarantine with its
reason code and its value as sent, or unplaced; never gone, never a crash. The control of every
case is the untouched row in the same interval.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from include.lake.partitions import interval_folder, read_partition
from include.source.conformance import REASON_COLUMN, conform_source_rows
from include.source.dataset import AIRLINES, WEATHER_OBSERVATIONS
from include.source.extract import EXTRACT_RECORD, EXTRACT_ROWS, extract_to_lake, unplaced_folder

from .conftest import utc, weather_rows

START, END, NOW = utc(2026, 11, 10), utc(2026, 11, 11), utc(2026, 11, 12)
ORIGINS = ["JFK", "LGA", "EWR", "BOS", "ORD", "ATL"]


@pytest.fixture
def six_rows(insert):
    """Six origins observed at noon of the interval, one row each; tests corrupt one of them."""
    frame = pd.concat([weather_rows([utc(2026, 11, 10, 12)], origin=o) for o in ORIGINS], ignore_index=True)
    insert(WEATHER_OBSERVATIONS, frame)


def corrupt(engine: sa.Engine, column: str, sql_value: str, origin: str = "LGA") -> None:
    """Overwrite one cell with a raw SQL expression (SQLite stores whatever it is given)."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"UPDATE weather_observations SET {column} = {sql_value} WHERE origin = :o"),
            {"o": origin},
        )


def qfolder(tmp_path) -> str:
    return interval_folder(tmp_path, "quarantine", "weather_observations", START, END)


def rejected(tmp_path) -> pd.DataFrame:
    return read_partition(Path(qfolder(tmp_path), EXTRACT_ROWS))


@pytest.mark.parametrize(
    ("column", "sql_value", "reason", "kept_as"),
    [
        ("temp_f", "'warm'", "unparseable_number", "warm"),
        ("temp_f", "9e999", "not_finite", "inf"),
        ("temp_f", "'-inf'", "not_finite", "-inf"),
        ("origin", "CAST(X'4C47FF41' AS TEXT)", "not_utf8", "LG\\xffA"),
        ("pressure_mb", "X'C3'", "not_utf8", "\\xc3"),
    ],
)
def test_a_bad_value_quarantines_its_row_with_the_value_and_the_reason(
    source_engine, six_rows, tmp_path, caplog, column, sql_value, reason, kept_as
):
    corrupt(source_engine, column, sql_value)
    info = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, START, END, NOW, tmp_path)
    assert info.rows == 5 and info.quarantined_rows == 1 and info.source_rows == 6
    assert info.rows + info.quarantined_rows == info.source_rows  # nothing lost
    assert info.reasons == {reason: 1}
    bad = rejected(tmp_path)
    assert bad[REASON_COLUMN].tolist() == [reason] and bad["quarantine_column"].tolist() == [column]
    assert bad[column].tolist() == [kept_as]
    raw = read_partition(info.path)
    assert "LGA" not in set(raw["origin"]) and set(raw["origin"]) == set(ORIGINS) - {"LGA"}  # control
    record = json.loads(Path(qfolder(tmp_path), EXTRACT_RECORD).read_text())
    assert record["read_rows"] == 6 and record["raw_rows"] == 5 and record["reasons"] == {reason: 1}
    assert "QUARANTINED at extraction" in caplog.text and "row 'QUARANTINED at extraction'" in caplog.text


def test_nulls_beside_numbers_are_nulls_and_numbers_keep_every_bit(source_engine, six_rows, tmp_path):
    corrupt(source_engine, "temp_f", "NULL")  # the other rows hold numbers: a float column
    corrupt(source_engine, "pressure_mb", "0.1 + 0.2", origin="JFK")  # SQLite's text of it has 15 digits
    info = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, START, END, NOW, tmp_path)
    assert info.rows == 6 and info.quarantined_rows == 0
    raw = read_partition(info.path).set_index("origin")
    assert pd.isna(raw.loc["LGA", "temp_f"]) and raw.loc["JFK", "pressure_mb"] == 0.1 + 0.2


def test_an_event_time_in_another_format_is_placed_by_its_time(source_engine, six_rows, tmp_path, caplog):
    # was: 972 source rows -> 924 raw, no message (SQLite compares the text with the bounds)
    corrupt(source_engine, "observed_at", "'2026/11/10 12:00'")
    corrupt(source_engine, "observed_at", "'2026-11-10T12:00:00Z'", origin="EWR")
    corrupt(source_engine, "observed_at", "'2026-11-11T12:00:00+00:00'", origin="BOS")  # the next day
    info = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, START, END, NOW, tmp_path)
    assert info.rows == 5 and info.placed_rows == 2 and info.quarantined_rows == 0
    # The database's own count compares text: the 'T' form falls inside, the '/' form outside.
    # Recorded beside what was extracted, the difference is visible.
    assert info.source_rows == 4
    raw = read_partition(info.path)
    assert set(raw["origin"]) == set(ORIGINS) - {"BOS"}
    assert set(raw["observed_at"]) == {pd.Timestamp("2026-11-10 12:00", tz="UTC")}
    assert "placed by their parsed time" in caplog.text
    nextday = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, END, NOW, NOW, tmp_path)
    assert nextday.rows == 1 and read_partition(nextday.path)["origin"].tolist() == ["BOS"]


@pytest.mark.parametrize(
    ("sql_value", "reason"),
    [
        ("'yesterday'", "unparseable_timestamp"),
        ("1762776000", "unparseable_timestamp"),
        ("X'FF'", "not_utf8"),
    ],
)
def test_an_unreadable_event_time_is_unplaced_not_lost(
    source_engine, six_rows, tmp_path, caplog, sql_value, reason
):
    corrupt(source_engine, "observed_at", sql_value)
    info = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, START, END, NOW, tmp_path)
    assert info.rows == 5 and info.unplaced_rows == 1 and info.quarantined_rows == 0
    unplaced = read_partition(unplaced_folder(tmp_path, WEATHER_OBSERVATIONS) + "/" + EXTRACT_ROWS)
    assert unplaced["origin"].tolist() == ["LGA"] and unplaced[REASON_COLUMN].tolist() == [reason]
    assert "belong to no interval" in caplog.text
    # every interval's extraction sees it and writes the same file; fixed, it is cleared
    again = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, END, NOW, NOW, tmp_path)
    assert again.unplaced_rows == 1
    corrupt(source_engine, "observed_at", "'2026-11-10 12:00:00.000000'")
    fixed = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, START, END, NOW, tmp_path)
    assert fixed.rows == 6 and fixed.unplaced_rows == 0 and fixed.unplaced_path is None


def test_a_fixed_source_clears_the_interval_quarantine_and_reruns_are_byte_identical(
    source_engine, six_rows, tmp_path
):
    corrupt(source_engine, "temp_f", "'warm'")
    first = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, START, END, NOW, tmp_path)
    folder = Path(qfolder(tmp_path))
    files = {name: (folder / name).read_bytes() for name in (EXTRACT_ROWS, EXTRACT_RECORD)}
    second = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, START, END, NOW, tmp_path)
    assert second.sha256 == first.sha256
    assert {name: (folder / name).read_bytes() for name in files} == files
    corrupt(source_engine, "temp_f", "41.0")
    fixed = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, START, END, NOW, tmp_path)
    assert fixed.rows == 6 and fixed.quarantine_path is None
    assert not (folder / EXTRACT_ROWS).exists() and not (folder / EXTRACT_RECORD).exists()


def test_reference_snapshots_are_conformed_the_same_way(source_engine, insert, tmp_path):
    insert(AIRLINES, pd.DataFrame({"carrier": ["AA", "B6", "DL"], "name": ["American", "JetBlue", "Delta"]}))
    with source_engine.begin() as conn:
        conn.execute(sa.text("UPDATE airlines SET name = CAST(X'FF' AS TEXT) WHERE carrier = 'B6'"))
    info = extract_to_lake(source_engine, AIRLINES, START, END, NOW, tmp_path)
    assert info.rows == 2 and info.quarantined_rows == 1 and info.reasons == {"not_utf8": 1}


def test_conforming_is_pure_and_never_raises():
    raw = pd.DataFrame(
        {
            "origin": [b"JFK", b"L\xff", None, b"EWR"],
            "observed_at": [b"2026-11-10 12:00:00.000000", b"2026-11-10 12:00:00", b"noon", None],
            **{c.name: [None, "1.5", "2", "x"] for c in WEATHER_OBSERVATIONS.columns[2:]},
        }
    )
    out = conform_source_rows(raw, WEATHER_OBSERVATIONS)
    assert out.rows["origin"].tolist() == ["JFK"]  # control: a clean row conforms
    # the event time's failure comes first: it decides where a row goes
    assert dict(out.reasons) == {"not_utf8": 1, "unparseable_timestamp": 1, "missing_event_time": 1}
    assert out.rejected["quarantine_column"].tolist().count("observed_at") == 2


def test_validation_counts_the_rows_quarantined_at_extraction():
    from include.quality.validation import ValidationOutcome, with_extraction

    clean = ValidationOutcome("weather_observations", "publish", rows=95)
    assert with_extraction(clean, None) is clean  # control: nothing quarantined, nothing changes
    record = {
        "quarantined_rows": 3,
        "reasons": {"not_utf8": 1, "unparseable_number": 2},
        "columns": {"temp_f": 3},
    }
    split = with_extraction(clean, record)
    summary = split.summary()
    assert split.decision == "split" and summary["rows"] == 98 and summary["quarantined_rows"] == 3
    assert summary["published_rows"] == 95 and summary["failed"] == ["not_utf8", "unparseable_number"]
    record = {"quarantined_rows": 6, "reasons": {"not_finite": 6}, "columns": {"temp_f": 6}}
    blocked = with_extraction(clean, record)  # 6 of 101 rows > 5 %
    assert blocked.decision == "block" and "row_share_exceeded" in blocked.summary()["failed"]
