"""The data a training run stands on. I/O.

Which days of the lake can be trained on (validated outcomes AND every feature view's partition),
and the files a run's tasks share: `<data>/training_sets/<run>/{train,holdout}.parquet` and the
training set's lineage in `meta.json`.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
    from include.lake.partitions import parse_interval_key, partitions_between

    files = partitions_between(lake_root, zone, table, start, end)  # type: ignore[arg-type]
    return [parse_interval_key(Path(f).parent.name.removeprefix("interval="))[1] for f in files]


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


def run_folder(settings: Settings, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return settings.training_sets_dir / safe


def write_split(folder: Path, split: Split, meta: dict[str, Any]) -> None:
    """The run's train and holdout frames and the training set's meta, for the candidates."""
    folder.mkdir(parents=True, exist_ok=True)
    split.train.to_parquet(folder / "train.parquet", index=False)
    split.holdout.to_parquet(folder / "holdout.parquet", index=False)
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=str))


def load_prepared(prepared: PreparedData) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The train and holdout frames and the meta that prepare_training_data wrote."""
    import pandas as pd

    folder = Path(prepared["folder"])
    meta = json.loads((folder / "meta.json").read_text())
    return pd.read_parquet(folder / "train.parquet"), pd.read_parquet(folder / "holdout.parquet"), meta


def smoke_sample(prepared: PreparedData) -> pd.DataFrame:
    """The run's holdout in flight order: what a deployment's smoke test scores."""
    import pandas as pd

    return pd.read_parquet(Path(prepared["folder"]) / "holdout.parquet").sort_values("flight_id")
