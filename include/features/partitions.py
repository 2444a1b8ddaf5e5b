"""Feature partitions in the lake: read the window a day needs, write the day's feature rows.

`<lake>/features/<feature table>/interval=<start>_<end>/part-0.parquet`, atomic and sorted like
every partition, so recomputing an interval gives the same bytes. Feast's sources read these
folders (include/features/feature_repo/sources.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from include.features.engineering import (
    FEATURE_TABLES,
    LONGEST_WINDOW,
    SCHEDULE_LOOKBACK,
    features_for_interval,
)
from include.lake import storage
from include.lake.partitions import (
    PartitionInfo,
    conform,
    every_partition_url,
    interval_key,
    interval_of,
    partition_url,
    partition_urls_between,
    read_partition,
    write_partition,
)
from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES, WEATHER_OBSERVATIONS, SourceTable


class MissingValidatedPartitionError(RuntimeError):
    """The interval's own validated partition is not in the lake (not ingested, or quarantined)."""


def feature_source_dir(lake_root: str | Path, feature_table: str) -> str:
    """The folder (a path or a URL) of a feature table's partitions: a Feast source reads it."""
    return storage.join(lake_root, "features", feature_table)


def offline_store_path(location: str) -> str:
    """A lake location as Feast's DuckDB offline store must be given it.

    Local paths are unchanged. For an S3 lake, ibis would load DuckDB's httpfs extension for any
    `s3://` path, and that extension is downloaded at run time (nothing may download here; it is
    not in the wheel). The same objects named `s3a://` (an alias fsspec's S3 filesystem answers
    too) are read through the fsspec filesystem that `features.store.open_store` registers in
    DuckDB: one S3 client, the same credentials and endpoint as the rest of the lake."""
    return "s3a://" + location.removeprefix("s3://") if location.startswith("s3://") else location


def read_validated(lake_root: str | Path, table: SourceTable, start: datetime, end: datetime) -> pd.DataFrame:
    """Every validated row of `table` in the partitions inside [start, end)."""
    parts = partition_urls_between(lake_root, "validated", table.name, start, end)
    frames = [read_partition(p) for p in parts]
    frames = [f for f in frames if len(f)]
    if not frames:
        return conform(pd.DataFrame(columns=table.column_names), table)
    return pd.concat(frames, ignore_index=True)


def write_interval_features(
    lake_root: str | Path, start: datetime, end: datetime
) -> dict[str, PartitionInfo]:
    """Compute and write every feature table's partition for [start, end).

    Reads only the window the statistics need: outcomes of the last LONGEST_WINDOW, their
    schedules (SCHEDULE_LOOKBACK earlier), and the interval's weather."""
    for table in (FLIGHT_OUTCOMES, WEATHER_OBSERVATIONS):
        path = partition_url(lake_root, "validated", table.name, start, end)
        if not storage.is_file(path):
            raise MissingValidatedPartitionError(
                f"no validated {table.name} partition for interval {interval_key(start, end)} "
                f"(expected {path}). Run or clear ingest_flights for that interval (or release its "
                "quarantine), then clear this task."
            )
    outcomes = read_validated(lake_root, FLIGHT_OUTCOMES, end - LONGEST_WINDOW, end)
    schedules = read_validated(lake_root, FLIGHT_SCHEDULES, end - LONGEST_WINDOW - SCHEDULE_LOOKBACK, end)
    weather = read_validated(lake_root, WEATHER_OBSERVATIONS, start, end)
    tables = features_for_interval(schedules, outcomes, weather, start, end)
    return {
        name: write_partition(
            conform(frame, FEATURE_TABLES[name]), FEATURE_TABLES[name], lake_root, "features", start, end
        )
        for name, frame in tables.items()
    }


def intervals_to_process(
    event_extras: list[dict], interval_start: str | None, days: int
) -> list[tuple[datetime, datetime]]:
    """The intervals a features run handles, oldest first.

    From the triggering validated-asset events (their `interval_start`/`interval_end`), or, for
    a manual run, `days` daily intervals from the date `interval_start`."""
    found = {
        (datetime.fromisoformat(x["interval_start"]), datetime.fromisoformat(x["interval_end"]))
        for x in event_extras
        if x and x.get("interval_start") and x.get("interval_end")
    }
    if interval_start:
        first = datetime.fromisoformat(interval_start).replace(tzinfo=UTC)
        found |= {(first + timedelta(days=k), first + timedelta(days=k + 1)) for k in range(days)}
    return sorted(found)


def with_dependents(
    lake_root: str | Path, intervals: list[tuple[datetime, datetime]]
) -> list[tuple[datetime, datetime]]:
    """`intervals` plus every later interval whose features read them and already exist.

    A day validated late (a backfill, a released quarantine) changes the statistics of the days
    after it that were computed without it: those are recomputed too, so the feature partitions
    end the same whatever order the days arrived in."""
    if not intervals:
        return []
    first_table = next(iter(FEATURE_TABLES))
    existing = [interval_of(p) for p in every_partition_url(lake_root, "features", first_table)]
    found = set(intervals)
    for start, _ in intervals:
        found |= {(s, e) for s, e in existing if start < s < start + LONGEST_WINDOW}
    return sorted(found)


def stale_intervals(lake_root: str | Path, lookback: int = 60) -> list[tuple[datetime, datetime]]:
    """Intervals among the newest `lookback` validated ones whose features are missing or older.

    Asset-triggered runs receive the events Airflow associates with them, and events that land
    while a run is being created can end up in none (seen under a 14-day backfill): every run
    therefore also catches up on whatever the lake says is not done yet."""
    intervals = [interval_of(p) for p in every_partition_url(lake_root, "validated", FLIGHT_OUTCOMES.name)]
    stale = []
    for start, end in intervals[-lookback:]:
        inputs = [
            partition_url(lake_root, "validated", t.name, start, end)
            for t in (FLIGHT_OUTCOMES, WEATHER_OBSERVATIONS)
        ]
        if not all(storage.is_file(p) for p in inputs):
            continue
        newest_input = max(storage.modified(p) for p in inputs)
        outputs = [partition_url(lake_root, "features", name, start, end) for name in FEATURE_TABLES]
        done = all(storage.is_file(p) for p in outputs)
        if not done or min(storage.modified(p) for p in outputs) < newest_input:
            stale.append((start, end))
    return stale
