"""The corruption corpus through Airflow (issue 17): a source day broken as upstream writers
break it, ingested by ingest_flights itself (dag.test, real SQLite, real Great Expectations).

Every case is one row (or one day) of a copy of the demo source corrupted by SQL. For each:
where its row ends (the raw zone and then validated, the extraction's quarantine, the checks'
quarantine, or the table's unplaced rows), with which reason code, what the task log says, and
that nothing is lost: rows read = published + quarantined, and rows read = the source's count
for the interval, counted by this test's own SQL, plus the rows placed by their parsed time.
The untouched rows of the same day are the control. The corpus has its own lake.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from include.lake.partitions import interval_folder, parquet_rows, partition_url, read_partition
from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES, WEATHER_OBSERVATIONS

from .conftest import day, source_count

ROW_DAY = day(2026, 11, 12)  # row-level cases, one row each: the day is published, split
HISTORY_DAY, VOLUME_DAY = day(2026, 11, 6), day(2026, 11, 13)  # same weekday, a week apart
SHARE_DAY = day(2026, 11, 14)
FMT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Case:
    """One corrupted row of `table`: `change` is the SET clause (or, starting with INSERT, a
    whole statement) run with :id bound to the row's key (flight_id; a weather row's rowid);
    `where` the row must end in; `reason` its code; `column`/`value` what the published row
    holds (codes made canonical)."""

    name: str
    table: str
    change: str
    where: str  # validated | extract | split | unplaced
    reason: str | None = None
    column: str | None = None
    value: object = None

    @property
    def sql(self) -> str:
        if self.change.startswith("INSERT"):
            return self.change
        key = "rowid" if self.table == WX else "flight_id"
        return f"UPDATE {self.table} SET {self.change} WHERE {key} = :id"


SCH, OUT, WX = FLIGHT_SCHEDULES.name, FLIGHT_OUTCOMES.name, WEATHER_OBSERVATIONS.name
SCHEDULE_COLUMNS = ", ".join(FLIGHT_SCHEDULES.column_names[1:])
CASES = [
    # values that cannot be read as their type: quarantined at extraction, value kept as sent
    Case("timestamp_text", SCH, "scheduled_departure = 'soon'", "extract", "unparseable_timestamp"),
    Case("carrier_not_utf8", SCH, "carrier = CAST(X'55FF' AS TEXT)", "extract", "not_utf8"),
    Case("distance_text", SCH, "distance_mi = 'far'", "extract", "unparseable_number"),
    Case("distance_fraction", SCH, "distance_mi = 1012.5", "extract", "not_integer"),
    Case("delay_infinite", OUT, "dep_delay_min = 9e999", "extract", "not_finite"),
    Case("delay_text", OUT, "arr_delay_min = 'late'", "extract", "unparseable_number"),
    Case("weather_text", WX, "temp_f = 'hot'", "extract", "unparseable_number"),
    # event times the database cannot compare with the day's bounds: placed by their parsed
    # time, or kept as unplaced (they belong to no interval)
    Case(
        "event_time_other_format",
        SCH,
        "published_at = replace(substr(published_at, 1, 16), '-', '/')",
        "validated",
    ),
    Case("event_time_unreadable", SCH, "published_at = 'someday'", "unplaced", "unparseable_timestamp"),
    Case(
        "event_time_us_format", OUT, "reported_at = '11/12/2026 10:00'", "unplaced", "unparseable_timestamp"
    ),
    # codes made canonical (trim, case), then checked: published under the canonical code
    Case("origin_spaces_case", SCH, "origin = ' ' || lower(origin) || ' '", "validated", column="origin"),
    Case("carrier_lower", SCH, "carrier = lower(carrier)", "validated", column="carrier"),
    Case("status_upper", OUT, "status = upper(status) || ' '", "validated", column="status", value="arrived"),
    Case("weather_origin_lower", WX, "origin = lower(origin)", "validated", column="origin"),
    # values of the right type that break a rule of the row: quarantined by the checks
    Case("unknown_airport", SCH, "origin = 'ZZZ'", "split", "unknown_airport"),
    Case(
        "arrival_before_departure",
        SCH,
        "scheduled_arrival = datetime(scheduled_departure, '-1 hour')",
        "split",
        "arrival_before_departure",
    ),
    Case("distance_negative", SCH, "distance_mi = -5", "split", "out_of_range"),
    Case("arrived_without_delay", OUT, "arr_delay_min = NULL", "split", "inconsistent_status"),
    Case("cancelled_but_departed", OUT, "status = 'cancelled'", "split", "inconsistent_status"),
    Case("status_unknown", OUT, "status = 'landed'", "split", "bad_status"),
    Case(
        "landed_before_takeoff",
        OUT,
        "actual_arrival = datetime(actual_departure, '-5 minutes')",
        "split",
        "arrival_before_departure",
    ),
    Case("air_time_absurd", OUT, "air_time_min = 1", "split", "out_of_range"),
    Case(
        "air_time_beyond_block",
        OUT,
        "air_time_min = (julianday(actual_arrival) - julianday(actual_departure)) * 1440 + 30",
        "split",
        "air_time_exceeds_block",
    ),
    Case("humidity_absurd", WX, "humidity_pct = 150", "split", "out_of_range"),
    # the same flight under a new id: every copy quarantined
    Case(
        "duplicate_content",
        SCH,
        f"INSERT INTO flight_schedules SELECT (SELECT max(flight_id) + 1 FROM flight_schedules), "
        f"{SCHEDULE_COLUMNS} FROM flight_schedules WHERE flight_id = :id",
        "split",
        "duplicate_content",
    ),
]


def day_bounds(start: datetime) -> tuple[str, str]:
    return start.strftime(FMT), (start + timedelta(days=1)).strftime(FMT)


def pick_rows(db: Path, start: datetime) -> dict[str, list[int]]:
    """Keys of the day's rows per table, in key order (arrived outcomes: the cases need them)."""
    lo, hi = day_bounds(start)
    queries = {
        SCH: "SELECT flight_id FROM flight_schedules WHERE published_at >= ? AND published_at < ?",
        OUT: "SELECT flight_id FROM flight_outcomes WHERE reported_at >= ? AND reported_at < ? "
        "AND status = 'arrived'",
        WX: "SELECT rowid FROM weather_observations WHERE observed_at >= ? AND observed_at < ?",
    }
    with sqlite3.connect(db) as conn:
        return {
            table: [r[0] for r in conn.execute(f"{sql} ORDER BY 1", (lo, hi))]
            for table, sql in queries.items()
        }


@pytest.fixture(scope="module")
def corpus_lake(tmp_path_factory):
    """The corpus's own lake, so its broken days touch no other test's."""
    lake = tmp_path_factory.mktemp("corpus") / "lake"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_LAKE_ROOT", str(lake))
        yield lake


def copy_source(source_db: Path, folder: Path, name: str) -> Path:
    copy = folder / f"{name}.db"
    shutil.copy(source_db, copy)
    return copy


def lake_counts(lake: Path, table: str, start: datetime) -> dict[str, int]:
    """Where the interval's rows of `table` went, read from the lake's files."""
    end = start + timedelta(days=1)
    qdir = Path(interval_folder(lake, "quarantine", table, start, end))
    validated = Path(partition_url(lake, "validated", table, start, end))
    extract = json.loads((qdir / "extract.json").read_text()) if (qdir / "extract.json").exists() else {}
    reason = json.loads((qdir / "reason.json").read_text()) if (qdir / "reason.json").exists() else {}
    split = parquet_rows(qdir / "rows.parquet") if (qdir / "rows.parquet").exists() else 0
    return {
        "raw": parquet_rows(partition_url(lake, "raw", table, start, end)),
        "extract": extract.get("quarantined_rows", 0),
        "split": split,
        "validated": parquet_rows(validated) if validated.exists() else 0,
        "reason_rows": reason.get("rows", -1),
        "reason_published": reason.get("published_rows", -1),
        "reason_quarantined": reason.get("quarantined_rows", -1),
    }


@pytest.fixture(scope="module")
def row_day(corpus_lake, source_db, ingest_dag, tmp_path_factory):
    """The row-level cases applied to one day (each to its own row), ingested once."""
    copy = copy_source(source_db, tmp_path_factory.mktemp("row_day"), "rows")
    rows = pick_rows(copy, ROW_DAY)
    used: dict[str, int] = {SCH: 0, OUT: 0, WX: 0}
    targets: dict[str, int] = {}
    with sqlite3.connect(copy) as conn:
        for case in CASES:
            key = rows[case.table][used[case.table] * 7]  # spread over the day
            used[case.table] += 1
            targets[case.name] = key
            conn.execute(case.sql, {"id": key})
            assert conn.execute("SELECT changes()").fetchone()[0] == 1, case.name
    return copy, targets


@pytest.fixture
def run_day(ingest_dag, capfd, caplog, monkeypatch):
    """Ingest one day from `db` through Airflow; the run and what its task logs said."""

    def _run(start: datetime, db: Path):
        monkeypatch.setenv("AIRFLOW_CONN_FLIGHTS_SOURCE", f"sqlite:///{db}")
        capfd.readouterr()
        caplog.clear()
        # Explicit Params: a forced publish of another test's run must not carry over (dag.test
        # keeps the last run_conf's values on the DAG object).
        conf = {"force_publish": False, "reason": ""}
        dag_run = ingest_dag.test(logical_date=start + timedelta(days=1), run_conf=conf)
        return dag_run, "".join(capfd.readouterr()) + caplog.text

    return _run


def row_of(frame: pd.DataFrame, table: str, key: int, copy: Path) -> pd.DataFrame:
    if table != WX:
        return frame[frame["flight_id"].astype("int64") == key]
    with sqlite3.connect(copy) as conn:
        origin, observed = conn.execute(
            "SELECT origin, observed_at FROM weather_observations WHERE rowid = ?", (key,)
        ).fetchone()
    stamp = pd.Timestamp(observed[:19], tz="UTC") if observed else None
    times = pd.to_datetime(frame["observed_at"], utc=True, errors="coerce")
    return frame[(frame["origin"].str.strip().str.upper() == origin.strip().upper()) & (times == stamp)]


def test_every_corrupted_row_ends_where_it_should_and_none_is_lost(row_day, corpus_lake, run_day):
    copy, targets = row_day
    dag_run, text = run_day(ROW_DAY, copy)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", states
    end = ROW_DAY + timedelta(days=1)
    problems = []
    for case in CASES:
        qdir = Path(interval_folder(corpus_lake, "quarantine", case.table, ROW_DAY, end))
        key = targets[case.name]
        if case.where == "validated":
            found = row_of(
                read_partition(partition_url(corpus_lake, "validated", case.table, ROW_DAY, end)),
                case.table,
                key,
                copy,
            )
            if len(found) != 1:
                problems.append(f"{case.name}: not published ({len(found)} rows)")
            elif case.column and found[case.column].iloc[0] != (
                case.value or found[case.column].iloc[0].strip().upper()
            ):
                problems.append(f"{case.name}: published {found[case.column].iloc[0]!r}")
            continue
        file = {"extract": qdir / "extract_rows.parquet", "split": qdir / "rows.parquet"}.get(case.where)
        if case.where == "unplaced":
            file = corpus_lake / "quarantine" / case.table / "unplaced" / "extract_rows.parquet"
        assert file is not None
        if not file.exists():
            problems.append(f"{case.name}: {file.name} missing")
            continue
        found = (
            row_of(read_partition(file), case.table, key, copy)
            if case.table != WX or case.where != "extract"
            else read_partition(file)
        )
        if len(found) < 1 or case.reason not in set(found["quarantine_reason"]):
            problems.append(f"{case.name}: not in {case.where} with {case.reason}")
        if case.reason not in text:
            problems.append(f"{case.name}: the log does not name {case.reason}")
    assert not problems, problems
    # messages for people: where the rows are and the runbook row
    assert "QUARANTINED at extraction" in text and "row 'QUARANTINED at extraction'" in text
    assert "belong to no interval" in text and "placed by their parsed time" in text
    assert "code values made canonical" in text
    # nothing lost, per table: read = published + quarantined = the source's count + placed
    for table in (SCH, OUT, WX):
        counts = lake_counts(corpus_lake, table, ROW_DAY)
        placed = sum(1 for c in CASES if c.table == table and c.name == "event_time_other_format")
        source = source_count(copy, table, ROW_DAY, end) + placed
        read = counts["raw"] + counts["extract"]
        assert read == source == counts["validated"] + counts["extract"] + counts["split"], (table, counts)
        assert counts["reason_rows"] == read and counts["reason_published"] == counts["validated"], counts
        assert counts["reason_quarantined"] == counts["extract"] + counts["split"], counts
        # control: the day is mostly clean and published
        assert counts["validated"] > 0.9 * read


def multiply_day(db: Path, start: datetime, schedules: int, outcomes: int) -> None:
    """The day's schedules and outcomes loaded `schedules` and `outcomes` times, under new ids;
    the schedules' copies get their own flight numbers (a double feed, not duplicates)."""
    lo, hi = day_bounds(start)
    with sqlite3.connect(db) as conn:
        top = conn.execute("SELECT max(flight_id) FROM flight_schedules").fetchone()[0]
        for k in range(1, schedules):
            conn.execute(
                f"INSERT INTO flight_schedules SELECT flight_id + :off, carrier, flight_number + :k * 10000, "
                f"{SCHEDULE_COLUMNS.split(', ', 2)[2]} FROM flight_schedules "
                "WHERE published_at >= :lo AND published_at < :hi AND flight_id <= :top",
                {"off": k * (top + 1), "k": k, "lo": lo, "hi": hi, "top": top},
            )
        outcome_columns = ", ".join(FLIGHT_OUTCOMES.column_names[1:])
        for k in range(1, outcomes):
            conn.execute(
                f"INSERT INTO flight_outcomes SELECT flight_id + :off, {outcome_columns} "
                "FROM flight_outcomes "
                "WHERE reported_at >= :lo AND reported_at < :hi AND flight_id <= :top",
                {"off": k * (top + 1), "lo": lo, "hi": hi, "top": top},
            )


def test_ten_times_a_day_blocks_three_times_warns(corpus_lake, source_db, run_day, tmp_path):
    assert run_day(HISTORY_DAY, source_db)[0].state == "success"  # the same weekday's history
    copy = copy_source(source_db, tmp_path, "volume")
    multiply_day(copy, VOLUME_DAY, schedules=10, outcomes=3)
    dag_run, text = run_day(VOLUME_DAY, copy)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["validate_flight_schedules"] == "failed" and states["validate_flight_outcomes"] == "success"
    assert "volume_spike" in text and "QUARANTINED" in text and "volume_high" in text
    end = VOLUME_DAY + timedelta(days=1)
    assert not Path(partition_url(corpus_lake, "validated", SCH, VOLUME_DAY, end)).exists()
    counts = lake_counts(corpus_lake, SCH, VOLUME_DAY)
    assert counts["raw"] == source_count(copy, SCH, VOLUME_DAY, end) == counts["reason_quarantined"]
    outcomes = lake_counts(corpus_lake, OUT, VOLUME_DAY)  # warned, published
    assert outcomes["validated"] == outcomes["raw"] == source_count(copy, OUT, VOLUME_DAY, end)


def test_too_many_unreadable_values_block_the_day(corpus_lake, source_db, run_day, tmp_path):
    copy = copy_source(source_db, tmp_path, "share")
    lo, hi = day_bounds(SHARE_DAY)
    with sqlite3.connect(copy) as conn:
        conn.execute(
            "UPDATE flight_outcomes SET dep_delay_min = 'n/a' "
            "WHERE reported_at >= ? AND reported_at < ? AND flight_id % 10 = 0",
            (lo, hi),
        )
    dag_run, text = run_day(SHARE_DAY, copy)
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["extract_flight_outcomes"] == "success" and states["validate_flight_outcomes"] == "failed"
    assert states["validate_flight_schedules"] == "success"  # control: the other tables publish
    assert "row_share_exceeded" in text and "unparseable_number" in text
    counts = lake_counts(corpus_lake, OUT, SHARE_DAY)
    end = SHARE_DAY + timedelta(days=1)
    assert (
        counts["raw"] + counts["extract"]
        == source_count(copy, OUT, SHARE_DAY, end)
        == counts["reason_quarantined"]
    )
    assert counts["extract"] > 0.05 * counts["reason_rows"]


def test_a_changed_schema_fails_at_once_without_retrying(corpus_lake, source_db, run_day, tmp_path):
    copy = copy_source(source_db, tmp_path, "schema")
    with sqlite3.connect(copy) as conn:
        conn.execute("ALTER TABLE weather_observations DROP COLUMN visibility_mi")
    dag_run, text = run_day(SHARE_DAY + timedelta(days=1), copy)
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    assert tis["extract_weather_observations"].state == "failed"
    assert tis["extract_weather_observations"].try_number == 1  # retries=2 in the DAG: none used
    assert tis["extract_flight_schedules"].state == "success"  # control
    assert "missing columns ['visibility_mi']" in text
