"""The data a training run stands on. I/O.

Which days of the lake can be trained on (validated outcomes AND every feature view's partition),
and the files a run's tasks share: `<lake>/training_sets/<run>/{train,holdout}.parquet` and the
training set's lineage in `meta.json`, each stored atomically through the lake's storage (a local
folder or an object store), so a candidate on one worker reads what another worker prepared.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from include.core.settings import Settings
from include.training.contracts import PreparedData

if TYPE_CHECKING:
    import pandas as pd

    from include.training.candidates import Split

MIN_TRAIN_DAYS = 3  # days of training rows needed on top of the holdout


class NotEnoughDataError(RuntimeError):
    """Too few validated days to train and hold out (a new install, or a window before the data)."""


def _ends(lake_root: str, zone: str, table: str, start: datetime, end: datetime) -> list[datetime]:
    """Ends of the daily partitions of `table` in `zone` inside [start, end)."""
    from include.lake.partitions import interval_of, partition_urls_between

    return [interval_of(f)[1] for f in partition_urls_between(lake_root, zone, table, start, end)]  # type: ignore[arg-type]


def ready_days(lake_root: str, start: datetime, end: datetime) -> int:
    """Days in [start, end) with validated outcomes (labels) AND every feature view's partition."""
    from include.features.engineering import FEATURE_TABLES
    from include.source.dataset import FLIGHT_OUTCOMES

    days = set(_ends(lake_root, "validated", FLIGHT_OUTCOMES.name, start, end))
    for table in FEATURE_TABLES:
        days &= set(_ends(lake_root, "features", table, start, end))
    return len(days)


def latest_window_end(lake_root: str) -> datetime:
    """Default end of the training window: the day before the latest day that has both validated
    outcomes and features (the labels of that latest day are still arriving)."""
    from include.features.engineering import FEATURE_TABLES
    from include.source.dataset import FLIGHT_OUTCOMES

    everything = (datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1))
    latest = [max(_ends(lake_root, "validated", FLIGHT_OUTCOMES.name, *everything), default=None)]
    latest += [max(_ends(lake_root, "features", t, *everything), default=None) for t in FEATURE_TABLES]
    if any(x is None for x in latest):
        raise NotEnoughDataError(
            f"no validated flight_outcomes or no feature partitions under {lake_root} yet: "
            "run ingest_flights and materialize_features first"
        )
    return min(x for x in latest if x is not None) - timedelta(days=1)


def window_end(requested: str | None, lake_root: str) -> datetime:
    """The end of the training window: the requested day (UTC), or `latest_window_end`."""
    if requested:
        return datetime.fromisoformat(requested).replace(tzinfo=UTC)
    return latest_window_end(lake_root)


def require_days(lake_root: str, start: datetime, end: datetime, holdout_days: int) -> None:
    """NotEnoughDataError unless [start, end) has enough ready days to train and hold out."""
    have = ready_days(lake_root, start, end)
    if have < holdout_days + MIN_TRAIN_DAYS:
        raise NotEnoughDataError(
            f"only {have} day(s) with validated outcomes and features in "
            f"[{start:%Y-%m-%d}, {end:%Y-%m-%d}); "
            f"training needs at least {holdout_days + MIN_TRAIN_DAYS} ({holdout_days} held out). "
            "Ingest more days (ingest_flights) or choose another window."
        )


def run_folder(settings: Settings, run_id: str) -> str:
    """The run's folder (a path or a URL) under the settings' training-sets root."""
    from include.lake import storage

    return storage.join(settings.training_sets_root, re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id))


def write_split(folder: str, split: Split, meta: dict[str, Any]) -> None:
    """The run's train and holdout frames and the training set's meta, for the candidates.

    meta.json is written last: a folder whose meta is there holds both frames."""
    from include.lake import storage
    from include.lake.partitions import write_frame_atomic, write_text_atomic

    write_frame_atomic(storage.join(folder, "train.parquet"), split.train)
    write_frame_atomic(storage.join(folder, "holdout.parquet"), split.holdout)
    write_text_atomic(storage.join(folder, "meta.json"), json.dumps(meta, indent=2, default=str))


def _frame(folder: str, name: str) -> pd.DataFrame:
    from include.lake import storage
    from include.lake.partitions import read_table

    return read_table(storage.join(folder, name)).to_pandas()


def load_prepared(prepared: PreparedData) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The train and holdout frames and the meta that prepare_training_data wrote."""
    from include.lake import storage

    folder = prepared["folder"]
    meta = json.loads(storage.read_bytes(storage.join(folder, "meta.json")))
    return _frame(folder, "train.parquet"), _frame(folder, "holdout.parquet"), meta


def smoke_sample(prepared: PreparedData) -> pd.DataFrame:
    """The run's holdout in flight order: what a deployment's smoke test scores."""
    return _frame(prepared["folder"], "holdout.parquet").sort_values("flight_id")
