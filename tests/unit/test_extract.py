"""Extraction of one interval from a real SQLite source: edges, clock, schema and emptiness."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from include.lake.partitions import read_partition
from include.source.database import SourceUnavailableError, ensure_reachable
from include.source.dataset import AIRLINES, WEATHER_OBSERVATIONS
from include.source.extract import (
    IntervalNotClosedError,
    SourceSchemaError,
    extract_to_lake,
    read_interval,
)

from .conftest import utc, weather_rows

START, END, NOW = utc(2026, 11, 10), utc(2026, 11, 11), utc(2026, 11, 12)


def test_interval_is_half_open(source_engine, insert):
    times = [utc(2026, 11, 9, 23), START, utc(2026, 11, 10, 12), utc(2026, 11, 10, 23), END]
    insert(WEATHER_OBSERVATIONS, weather_rows(times))
    frame = read_interval(source_engine, WEATHER_OBSERVATIONS, START, END, NOW)
    got = list(frame["observed_at"])
    assert got == [START, utc(2026, 11, 10, 12), utc(2026, 11, 10, 23)]
    assert str(frame["observed_at"].dtype) == "datetime64[us, UTC]"


def test_rows_after_the_clock_are_invisible_and_open_intervals_refused(source_engine, insert):
    inside = [START, utc(2026, 11, 10, 20), utc(2026, 11, 10, 23, 59, 59)]
    later_before_now = [END, utc(2026, 11, 11, 18)]  # after the interval, before the clock's now
    after_now = [NOW + timedelta(microseconds=1), utc(2026, 11, 12, 6), utc(2026, 11, 20)]
    insert(WEATHER_OBSERVATIONS, weather_rows([*inside, *later_before_now, *after_now]))
    frame = read_interval(source_engine, WEATHER_OBSERVATIONS, START, END, NOW)
    assert list(frame["observed_at"]) == inside  # control: the interval's rows are all there
    # An interval that ends exactly at the clock's now is closed: rows after now stay invisible.
    frame = read_interval(source_engine, WEATHER_OBSERVATIONS, END, NOW, NOW)
    assert list(frame["observed_at"]) == later_before_now
    assert not set(frame["observed_at"]) & set(after_now)
    # The clock inside the interval: refused, although rows before the clock exist.
    with pytest.raises(IntervalNotClosedError, match="ends after the source clock"):
        read_interval(source_engine, WEATHER_OBSERVATIONS, START, END, utc(2026, 11, 10, 12))


def test_empty_interval_writes_a_zero_row_partition(source_engine, tmp_path, caplog):
    info = extract_to_lake(source_engine, WEATHER_OBSERVATIONS, START, END, NOW, tmp_path)
    assert info.rows == 0
    frame = read_partition(info.path)
    assert list(frame.columns) == WEATHER_OBSERVATIONS.column_names
    assert "holds no rows" in caplog.text


def test_reference_tables_are_snapshotted_whole(source_engine, insert):
    import pandas as pd

    insert(AIRLINES, pd.DataFrame({"carrier": ["UA", "AA"], "name": ["United", "American"]}))
    frame = read_interval(source_engine, AIRLINES, START, END, NOW)
    assert list(frame["carrier"]) == ["AA", "UA"]  # sorted by key


def test_missing_column_fails_with_table_interval_expected_and_found(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'changed.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE airlines (carrier TEXT, airline_name TEXT)"))
    with pytest.raises(SourceSchemaError) as err:
        read_interval(engine, AIRLINES, START, END, NOW)
    message = str(err.value)
    assert "'airlines'" in message
    assert "missing columns ['name']" in message
    assert "unexpected columns ['airline_name']" in message
    assert "Expected columns: ['carrier', 'name']" in message
    assert "found: ['carrier', 'airline_name']" in message
    assert "2026-11-10T00:00:00+00:00" in message and "2026-11-11T00:00:00+00:00" in message
    assert "include/source/dataset.py" in message


def test_extra_columns_are_tolerated_with_a_warning(tmp_path, caplog):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'wider.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE airlines (carrier TEXT, name TEXT, alliance TEXT)"))
        conn.execute(sa.text("INSERT INTO airlines VALUES ('UA', 'United', 'Star')"))
    frame = read_interval(engine, AIRLINES, START, END, NOW)
    assert list(frame.columns) == ["carrier", "name"]
    assert "alliance" in caplog.text


def test_missing_table_and_missing_file_are_clear(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE other (x INTEGER)"))
    with pytest.raises(SourceUnavailableError, match="'airlines' does not exist"):
        read_interval(engine, AIRLINES, START, END, NOW)

    absent = tmp_path / "absent.db"
    with pytest.raises(SourceUnavailableError, match=r"file not found.*make source"):
        ensure_reachable(sa.create_engine(f"sqlite:///{absent}"), "flights_source")
    assert not absent.exists(), "checking a missing SQLite source must not create it"


def test_unreachable_server_names_the_connection():
    engine = sa.create_engine("postgresql+psycopg2://u:secret@127.0.0.1:1/flights")
    with pytest.raises(SourceUnavailableError) as err:
        ensure_reachable(engine, "flights_source")
    assert "flights_source" in str(err.value)
    assert "secret" not in str(err.value)


def test_a_locked_source_is_a_retryable_error_that_says_so(source_engine, insert):
    import sqlite3

    insert(WEATHER_OBSERVATIONS, weather_rows([START]))
    path = source_engine.url.database
    impatient = sa.create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.1})
    assert len(read_interval(impatient, WEATHER_OBSERVATIONS, START, END, NOW)) == 1  # control
    locker = sqlite3.connect(path)
    locker.execute("BEGIN EXCLUSIVE")  # another writer holds the database
    try:
        with pytest.raises(SourceUnavailableError) as err:
            read_interval(impatient, WEATHER_OBSERVATIONS, START, END, NOW)
    finally:
        locker.rollback()
        locker.close()
        impatient.dispose()
    message = str(err.value)
    assert "'weather_observations'" in message and "20261110T0000Z_20261111T0000Z" in message
    assert "locked by another writer" in message and "On call" in message and "retries" in message
    assert not isinstance(err.value, SourceSchemaError)  # not a contract error: it is retried
