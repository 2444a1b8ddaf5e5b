"""ingest_flights run through Airflow itself against a real SQLite source."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from include.core.settings import get_settings
from include.lake.partitions import file_sha256, partition_path, read_partition
from include.source.dataset import SOURCE_TABLES

from .conftest import day, source_count

D1, D2 = day(2026, 11, 10), day(2026, 11, 11)


def raw(table, start):
    return partition_path(get_settings().lake_root, "raw", table, start, start + timedelta(days=1))


@pytest.fixture(scope="module")
def two_days(run_interval):
    runs = [run_interval(D1), run_interval(D2)]
    return runs


def test_two_intervals_succeed_with_the_source_row_counts(two_days, source_db):
    assert [r.state for r in two_days] == ["success", "success"]
    for start in (D1, D2):
        for table in SOURCE_TABLES:
            frame = read_partition(raw(table.name, start))
            expected = source_count(source_db, table.name, start, start + timedelta(days=1))
            assert len(frame) == expected, f"{table.name} {start:%F}"
            assert frame.set_index(list(table.key)).index.is_unique
    # The demo day is a real day of flights, not an empty partition.
    assert len(read_partition(raw("flight_schedules", D1))) > 800


def test_rerun_gives_a_byte_identical_partition(two_days, run_interval):
    before = {t.name: file_sha256(raw(t.name, D1)) for t in SOURCE_TABLES}
    assert run_interval(D1).state == "success"
    after = {t.name: file_sha256(raw(t.name, D1)) for t in SOURCE_TABLES}
    assert after == before


def test_late_outcomes_land_in_the_next_interval(two_days, source_db):
    day1 = read_partition(raw("flight_outcomes", D1))
    day2 = read_partition(raw("flight_outcomes", D2))
    assert not set(day1["flight_id"]) & set(day2["flight_id"]), "an outcome is extracted once"
    with sqlite3.connect(source_db) as conn:
        departures = (
            pd.read_sql(
                "SELECT flight_id, scheduled_departure FROM flight_schedules",
                conn,
                parse_dates=["scheduled_departure"],
            )
            .set_index("flight_id")["scheduled_departure"]
            .dt.tz_localize("UTC")
        )
    dep_of_day2_outcomes = departures.loc[day2["flight_id"]]
    late = dep_of_day2_outcomes[(dep_of_day2_outcomes >= D1) & (dep_of_day2_outcomes < D2)]
    assert len(late) > 10, "evening flights of day 1 report their outcome on day 2"
    assert (day2["reported_at"] >= D2).all() and (day2["reported_at"] < D2 + timedelta(days=1)).all()


def test_asset_events_carry_rows_and_hash(run_interval):
    """A day of its own (no other test ingests it): the event its run emitted, and only that one."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    own_day = day(2026, 11, 16)
    dag_run = run_interval(own_day)
    assert dag_run.state == "success"
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "raw_flight_schedules", AssetEvent.source_run_id == dag_run.run_id)
        ).all()
        extras = [e.extra for e in events]
    assert len(extras) == 1, extras
    path = raw("flight_schedules", own_day)
    assert extras[0]["interval_start"] == own_day.isoformat()
    assert extras[0]["rows"] == len(read_partition(path)) > 800
    assert extras[0]["sha256"] == file_sha256(path)


def test_empty_interval_succeeds_with_zero_rows(run_interval):
    quiet = day(2026, 8, 1)  # maps onto July 2013, outside the test source's months
    assert run_interval(quiet).state == "success"
    assert len(read_partition(raw("flight_schedules", quiet))) == 0
    assert len(read_partition(raw("airlines", quiet))) > 0  # reference snapshots still taken


def test_changed_source_schema_fails_and_writes_nothing(
    no_retries, run_interval, source_db, source_connection, tmp_path, capfd
):
    changed = tmp_path / "changed.db"
    shutil.copy(source_db, changed)
    with sqlite3.connect(changed) as conn:
        conn.execute("ALTER TABLE flight_outcomes RENAME COLUMN arr_delay_min TO arrival_delay")
    source_connection(f"sqlite:///{changed}")
    start = day(2026, 11, 12)
    dag_run = run_interval(start)
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["extract_flight_outcomes"] == "failed"
    assert states["extract_flight_schedules"] == "success"
    assert not raw("flight_outcomes", start).exists()
    log = capfd.readouterr()
    text = log.out + log.err
    assert "source table 'flight_outcomes' changed: missing columns ['arr_delay_min']" in text
    assert "unexpected columns ['arrival_delay']" in text
    assert "2026-11-12T00:00:00+00:00" in text


def test_missing_source_fails_with_the_next_step(
    no_retries, run_interval, source_connection, tmp_path, capfd
):
    source_connection(f"sqlite:///{tmp_path / 'nowhere.db'}")
    dag_run = run_interval(day(2026, 11, 13))
    assert dag_run.state == "failed"
    text = "".join(capfd.readouterr())
    assert "source database file not found" in text and "make source" in text


def validated(table, start):
    return partition_path(get_settings().lake_root, "validated", table, start, start + timedelta(days=1))


def quarantine_dir(table, start):
    end = start + timedelta(days=1)
    return partition_path(get_settings().lake_root, "quarantine", table, start, end).parent


def test_good_days_are_validated_and_no_row_disappears(two_days):
    import pyarrow.parquet as pq

    for start in (D1, D2):
        for table in ("flight_schedules", "flight_outcomes", "weather_observations"):
            raw_rows = len(read_partition(raw(table, start)))
            published = len(read_partition(validated(table, start)))
            rows_file = quarantine_dir(table, start) / "rows.parquet"
            quarantined = pq.read_metadata(rows_file).num_rows if rows_file.exists() else 0
            assert published + quarantined == raw_rows, f"{table} {start:%F}"
            assert published > 0


def validated_extras(asset_name: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return [
            e.extra
            for e in session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.name == asset_name)
            ).all()
        ]


def test_each_validation_has_a_data_docs_page_listed_in_the_index(two_days):
    docs = Path(get_settings().data_docs_root)
    pages = [x["data_docs_page"] for x in validated_extras("validated_flight_outcomes")]
    assert len(pages) >= 2
    index = (docs / "index.html").read_text()
    for page in pages:
        assert Path(page).is_file() and Path(page).is_relative_to(docs)
        assert Path(page).relative_to(docs).as_posix() in index


def test_corrupted_day_is_quarantined_then_force_published(
    no_retries, run_interval, ingest_dag, source_db, source_connection, tmp_path, capfd, caplog
):

    bad_day = day(2026, 11, 15)
    corrupted = tmp_path / "corrupted.db"
    shutil.copy(source_db, corrupted)
    with sqlite3.connect(corrupted) as conn:
        conn.execute(
            "UPDATE flight_schedules SET carrier = 'Q9' WHERE published_at >= ? AND published_at < ?",
            ("2026-11-15 00:00:00", "2026-11-16 00:00:00"),
        )
    source_connection(f"sqlite:///{corrupted}")
    dag_run = run_interval(bad_day)
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["validate_flight_schedules"] == "failed"
    assert states["validate_flight_outcomes"] == "success"
    text = "".join(capfd.readouterr())
    assert "PartitionQuarantinedError" in text and "QUARANTINED" in text
    assert "unknown_carrier" in text and "20261115T0000Z_20261116T0000Z" in text and "force_publish" in text
    # the failure block ends the failed task's log (the failure callback logs it)
    block = caplog.text
    assert "FAILED: ingest_flights.validate_flight_schedules" in block
    assert "Kept safe: the partition is in quarantine" in block and "interval 2026-11-15 00:00" in block
    record = json.loads((quarantine_dir("flight_schedules", bad_day) / "reason.json").read_text())
    assert record["decision"] == "block" and "unknown_carrier" in record["failed"]
    assert not validated("flight_schedules", bad_day).exists()
    page = re.search(r"Data Docs: (\S+\.html)", text).group(1)
    assert page == record["data_docs_page"] and "/20261115T0000Z_20261116T0000Z/" in page
    html = Path(page).read_text()
    assert "Q9" in html and "values must belong to this set" in html

    forced = ingest_dag.test(
        logical_date=bad_day + timedelta(days=1),
        run_conf={"force_publish": True, "reason": "carrier Q9 is a new airline, ticket OPS-1"},
    )
    assert forced.state == "success"
    assert validated("flight_schedules", bad_day).exists()
    record = json.loads((quarantine_dir("flight_schedules", bad_day) / "reason.json").read_text())
    assert record["forced_publish_reason"] == "carrier Q9 is a new airline, ticket OPS-1"


def test_validated_asset_events_only_for_published_days(two_days):
    extras = validated_extras("validated_flight_schedules")
    assert extras and all(x["decision"] in ("publish", "split", "forced") for x in extras)
    assert {x["interval_start"] for x in extras if x["decision"] != "forced"} >= {
        D1.isoformat(),
        D2.isoformat(),
    }


def test_openlineage_events_name_each_tasks_source_and_partitions(two_days):
    """The OpenLineage provider (on in every Airflow of the project) wrote a COMPLETE event per task
    of the run, its inputs and outputs the assets the task reads and writes."""
    from tests.e2e.lineage_events import events_dir, task_lineage

    lineage = task_lineage("ingest_flights", two_days[1].run_id)
    assert {f"extract_{t.name}" for t in SOURCE_TABLES} <= lineage.keys(), (sorted(lineage), events_dir())
    for table in SOURCE_TABLES:
        assert lineage[f"extract_{table.name}"] == {
            "inputs": {f"source://flights/{table.name}"},
            "outputs": {f"lake://raw/{table.name}"},
        }
    validate = lineage["validate_flight_schedules"]
    assert validate["outputs"] == {"lake://validated/flight_schedules"}
    assert validate["inputs"] == {
        f"lake://raw/{t}" for t in ("flight_schedules", "airports", "airlines", "planes")
    }
