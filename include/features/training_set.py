"""Point-in-time training sets: one row per flight, features as of its prediction time, its label.

Entity rows come from the validated schedules (flight id, keys, prediction time = scheduled
departure - lead); labels from the validated outcomes reported later. Feast joins each row to the
newest feature row at or before its prediction time (within the view's ttl). Feast does not keep
row order, and its `file` store drops or collapses rows (feast-dev/feast#6787), so the builder
carries the flight id, asserts the counts and merges back on it. Missing features are filled
explicitly: 0 plus a `<view>_missing` indicator, so a model sees "unknown" rather than a guess.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from include.features.engineering import (
    EVENT_TIMESTAMP,
    FEATURE_TABLES,
    calendar_features,
    is_late,
    prediction_time,
)
from include.features.partitions import read_validated
from include.lake.partitions import file_sha256, frame_sha256, parquet_rows, partition_urls_between
from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES

log = logging.getLogger(__name__)

LABEL = "late"
UNKNOWN_KEY = "UNKNOWN"  # join key of flights with no tail number: never matches a feature row
ENTITY_KEYS = ("tailnum", "carrier", "origin", "dest")
# A schedule is published a day ahead; an outcome is reported up to ~2 days after departure.
SCHEDULE_READ_BEFORE = timedelta(days=2)
LABEL_READ_AFTER = timedelta(days=3)
FEATURE_READ_BEFORE = timedelta(days=2)  # the longest ttl of the service's views (the statistics)
LABEL_TOLERANCE_MIN = 5.0  # arrival delay vs actual - scheduled arrival (the source rounds to minutes)


class TrainingSetError(RuntimeError):
    """The point-in-time join lost, duplicated or reordered rows it should have kept."""


@dataclass
class TrainingSet:
    frame: pd.DataFrame
    feature_columns: list[str]
    meta: dict[str, Any] = field(default_factory=dict)


def label_consistent(labelled: pd.DataFrame, tolerance_min: float = LABEL_TOLERANCE_MIN) -> pd.Series:
    """Whether a flight's label can be trusted: an arrived flight's delay agrees with its times
    (arrival delay = actual arrival - scheduled arrival, within `tolerance_min`). Validation checks
    each table alone; this needs the schedule beside the outcome, so it is checked where they meet.
    Other statuses are labelled late whatever their delay (`is_late`)."""
    arrived = labelled["status"].astype("string") == "arrived"
    measured = (labelled["actual_arrival"] - labelled["scheduled_arrival"]).dt.total_seconds() / 60
    delay = pd.to_numeric(labelled["arr_delay_min"], errors="coerce")
    agrees = ((delay - measured).abs() <= tolerance_min).fillna(False)
    return (~arrived.fillna(False) | agrees).astype(bool)


def entity_rows(schedules: pd.DataFrame, outcomes: pd.DataFrame, lead: timedelta) -> pd.DataFrame:
    """Flights with a known, consistent outcome: keys, prediction time (`event_timestamp`) and the
    label. How many labels were left out as inconsistent is in `.attrs["inconsistent_labels"]`."""
    labelled = schedules.merge(
        outcomes[["flight_id", "status", "arr_delay_min", "actual_arrival"]],
        on="flight_id",
        how="inner",
        validate="one_to_one",
    )
    consistent = label_consistent(labelled)
    labelled = labelled[consistent.to_numpy()]
    rows = labelled[["flight_id", *ENTITY_KEYS, "scheduled_departure"]].copy()
    rows["tailnum"] = rows["tailnum"].astype("string").fillna(UNKNOWN_KEY)
    rows[EVENT_TIMESTAMP] = prediction_time(rows["scheduled_departure"], lead)
    rows[LABEL] = is_late(labelled).astype("int64").to_numpy()
    rows = rows.sort_values([EVENT_TIMESTAMP, "flight_id"], kind="mergesort").reset_index(drop=True)
    rows.attrs["inconsistent_labels"] = int((~consistent).sum())
    return rows


def fill_missing(frame: pd.DataFrame, views: dict[str, list[str]]) -> tuple[pd.DataFrame, list[str]]:
    """`<view>_missing` = 1 where the view had no row in time; its features then 0."""
    out = frame.copy()
    columns = []
    for view, features in views.items():
        present = [f for f in features if f in out.columns]
        indicator = f"{view}_missing"
        out[indicator] = out[present].isna().all(axis=1).astype("int64")
        out[present] = out[present].astype("float64").fillna(0.0)
        columns += [*present, indicator]
    return out, columns


def join_features(
    entity_df: pd.DataFrame, historical: pd.DataFrame, views: dict[str, list[str]]
) -> TrainingSet:
    """Merge Feast's output back onto the entity rows by flight id, checking counts."""
    if len(historical) != len(entity_df) or historical["flight_id"].duplicated().any():
        raise TrainingSetError(
            f"point-in-time join returned {len(historical)} rows for {len(entity_df)} entity rows "
            f"({int(historical['flight_id'].duplicated().sum())} duplicated flight ids). The offline store "
            "dropped or collapsed rows: use the duckdb offline store (feature_store.yaml)."
        )
    feature_cols = [f for fs in views.values() for f in fs if f in historical.columns]
    frame = entity_df.merge(
        historical[["flight_id", *feature_cols]], on="flight_id", how="left", validate="one_to_one"
    )
    frame, columns = fill_missing(frame, views)
    calendar = calendar_features(frame["scheduled_departure"])
    frame = pd.concat([frame, calendar], axis=1)
    return TrainingSet(frame, [*columns, *calendar.columns])


def build_training_set(
    store: Any, lake_root: str, start: datetime, end: datetime, service_name: str, lead: timedelta
) -> TrainingSet:
    """Flights scheduled to depart in [start, end) with their labels and point-in-time features."""
    schedules = read_validated(lake_root, FLIGHT_SCHEDULES, start - SCHEDULE_READ_BEFORE, end)
    schedules = schedules[
        (schedules["scheduled_departure"] >= start) & (schedules["scheduled_departure"] < end)
    ]
    outcomes = read_validated(lake_root, FLIGHT_OUTCOMES, start, end + LABEL_READ_AFTER)
    entity_df = entity_rows(schedules, outcomes, lead)
    inconsistent = int(entity_df.attrs.get("inconsistent_labels", 0))
    if inconsistent:
        log.warning(
            "%d labelled flight(s) left out of the training set: the arrival delay disagrees with "
            "actual - scheduled arrival by more than %.0f min (the source's outcome and schedule "
            "contradict each other; see quarantine and the source)",
            inconsistent,
            LABEL_TOLERANCE_MIN,
        )
    if entity_df.empty:
        raise TrainingSetError(
            f"no labelled flights scheduled in [{start:%F %H:%M}, {end:%F %H:%M}) UTC: "
            "ingest that window first (ingest_flights) or choose another window."
        )
    service = store.get_feature_service(service_name)
    historical = store.get_historical_features(
        entity_df=entity_df[["flight_id", *ENTITY_KEYS, EVENT_TIMESTAMP]], features=service
    ).to_df()
    views = {p.name: [f.name for f in p.features] for p in service.feature_view_projections}
    result = join_features(entity_df, historical, views)
    reads = (
        (FLIGHT_SCHEDULES.name, start - SCHEDULE_READ_BEFORE, end),
        (FLIGHT_OUTCOMES.name, start, end + LABEL_READ_AFTER),
    )
    partitions = [
        p for table, lo, hi in reads for p in partition_urls_between(lake_root, "validated", table, lo, hi)
    ]
    result.meta = {
        "feature_service": service_name,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "prediction_lead_hours": lead.total_seconds() / 3600,
        "rows": len(result.frame),
        "scheduled_flights": len(schedules),
        "flights_without_label": len(schedules) - len(entity_df) - inconsistent,
        "inconsistent_labels": inconsistent,
        "late_share": float(result.frame[LABEL].mean()),
        "partitions": {p: file_sha256(p) for p in partitions},
        # The lineage of the set (include/registry/lineage.py): its own hash, and every file it
        # stands on with its hash and rows, the raw partitions the validated ones were published from
        # and the feature partitions Feast's join read (each view's ttl is at most FEATURE_READ_BEFORE).
        "training_set_sha256": frame_sha256(result.frame, "flight_id"),
        "inputs": {
            "raw": _files(
                [p for t, lo, hi in reads for p in partition_urls_between(lake_root, "raw", t, lo, hi)]
            ),
            "validated": _files(partitions),
            "features": _files(
                [
                    p
                    for table in FEATURE_TABLES
                    for p in partition_urls_between(
                        lake_root, "features", table, start - FEATURE_READ_BEFORE, end
                    )
                ]
            ),
        },
    }
    return result


def _files(urls: list[str]) -> dict[str, dict[str, Any]]:
    return {u: {"sha256": file_sha256(u), "rows": parquet_rows(u)} for u in urls}
