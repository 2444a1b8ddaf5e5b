"""What monitoring reads, all of it recorded by the pipeline already. I/O.

The prediction log (what was served, with its feature values), the validated outcomes in the lake
(labels, delayed), and the champion's training reference (include/training/reference.py), kept
in the monitoring folder once downloaded, with its yardstick of day-to-day variation.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from include.core.settings import Settings
from include.lake import sql
from include.lake.partitions import every_partition_url, interval_of, parse_interval_key, write_text_atomic
from include.monitoring import distances
from include.monitoring.policy import MonitoringPolicy
from include.serving import prediction_log
from include.source.dataset import FLIGHT_OUTCOMES
from include.training.reference import REFERENCE_EXTRA, REFERENCE_FILE, REFERENCE_META, fetch_reference


def night_day(start: datetime, end: datetime) -> date:
    """The departure day a scored interval is about: schedules published in [start, end) depart
    during the day that starts at `end`."""
    return end.astimezone(UTC).date()


# --- the prediction log ----------------------------------------------------------------------


def served_frame(settings: Settings, batch_key: str) -> pd.DataFrame:
    """The batch predictions of one scored interval with the feature values the model saw."""
    with sql.connected(settings.prediction_log_url, prediction_log.METADATA) as eng:
        rows = prediction_log.read(eng, source="batch", batch_key=batch_key)
    if rows.empty:
        return rows
    # One parse of all rows as a JSON array (a json.loads per row: 1.9 s at 100,000 rows, 1.45 s
    # this way; pandas' read_json was no faster and doubled the peak memory).
    features = pd.DataFrame(json.loads("[" + ",".join(rows["features"]) + "]"))
    features.index = rows.index
    keep = ["flight_id", "scheduled_departure", "model_version", "score"]
    return pd.concat([rows[keep], features.drop(columns=keep, errors="ignore")], axis=1)


def scored_intervals(
    event_extras: list[dict[str, Any]], interval_start: str | None, days: int
) -> list[tuple[datetime, datetime]]:
    """The scored intervals a run monitors, oldest first: the interval keys that flight_predictions
    events list (score_flights writes them), or, by hand, `days` intervals from `interval_start`."""
    from include.features.partitions import intervals_to_process

    bounds = [
        {"interval_start": start.isoformat(), "interval_end": end.isoformat()}
        for extra in event_extras
        for start, end in map(parse_interval_key, extra.get("intervals", []))
    ]
    return intervals_to_process(bounds, interval_start, days)


def scored_days(settings: Settings, until: date, lookback_days: int) -> dict[date, str]:
    """Departure day -> batch key of the scored intervals in the last `lookback_days` up to `until`."""
    log_table = prediction_log.PREDICTION_LOG
    with sql.connected(settings.prediction_log_url, prediction_log.METADATA) as eng, eng.connect() as conn:
        keys = conn.execute(
            sa.select(log_table.c.batch_key).where(log_table.c.source == "batch").distinct()
        ).scalars()
        found = {}
        for k in keys:
            if not k:
                continue
            start, end = parse_interval_key(k)
            d = night_day(start, end)
            if until - timedelta(days=lookback_days) <= d <= until:
                found[d] = k
    return dict(sorted(found.items()))


# --- labels ----------------------------------------------------------------------------------


def outcome_days(lake_root: str) -> set[date]:
    """Days (reporting intervals) whose validated flight outcomes are in the lake."""
    parts = every_partition_url(lake_root, "validated", FLIGHT_OUTCOMES.name)
    return {interval_of(p)[0].date() for p in parts}


def labelled_frame(
    settings: Settings, served: pd.DataFrame, day: date, policy: MonitoringPolicy
) -> pd.DataFrame:
    """The served flights of `day` joined with their outcomes (inner join: flights with a label)."""
    from include.features.engineering import is_late
    from include.features.partitions import read_validated

    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    outcomes = read_validated(
        settings.lake_root, FLIGHT_OUTCOMES, start, start + timedelta(days=policy.label_wait_days + 1)
    )
    if outcomes.empty:
        return served.iloc[0:0].assign(late=pd.Series(dtype=int))
    outcomes = outcomes.drop_duplicates("flight_id", keep="last")
    labels = pd.DataFrame(
        {"flight_id": outcomes["flight_id"].astype("int64"), "late": is_late(outcomes).astype(int)}
    )
    return served.merge(labels, on="flight_id", how="inner")


# --- the training reference ------------------------------------------------------------------


def reference_folder(settings: Settings, version: str) -> Path:
    """Where a version's reference is kept once downloaded (and its yardstick beside it)."""
    return settings.monitoring_dir / "reference" / settings.model_name / str(version)


def load_reference(settings: Settings, version: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The reference of a registered version, downloaded once into the monitoring folder.

    The download goes to a temporary folder beside it, then each file is renamed into place, the
    meta last: a task killed in the middle leaves no half file that a later run would take for
    the cache (the meta's presence says the frame beside it is whole)."""
    folder = reference_folder(settings, version)
    if not (folder / REFERENCE_FILE).exists() or not (folder / REFERENCE_META).exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{folder.name}-") as tmp:
            fetch_reference(settings, version, Path(tmp))
            os.replace(Path(tmp) / REFERENCE_FILE, folder / REFERENCE_FILE)
            os.replace(Path(tmp) / REFERENCE_META, folder / REFERENCE_META)
    meta = json.loads((folder / REFERENCE_META).read_text())
    return pd.read_parquet(folder / REFERENCE_FILE), meta


def yardstick(
    settings: Settings, version: str, reference: pd.DataFrame, policy: MonitoringPolicy
) -> dict[str, float]:
    """The largest distance of a single reference day, per input column and for the scores;
    computed once per version (and per `min_day_rows`) and kept beside the reference."""
    from include.training.candidates import CATEGORICAL

    path = reference_folder(settings, version) / "yardstick.json"
    if path.exists():
        cached = json.loads(path.read_text())
        if cached.get("min_day_rows") == policy.min_day_rows:
            return cached["max_day_distance"]
    columns = [c for c in reference.columns if c not in REFERENCE_EXTRA]
    found = distances.daily_yardstick(reference, reference["day"], [*columns, "score"], CATEGORICAL, policy)
    write_text_atomic(path, json.dumps({"min_day_rows": policy.min_day_rows, "max_day_distance": found}))
    return found
