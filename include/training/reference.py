"""A model's monitoring reference: what the model saw at training, kept with its MLflow run.

`reference_frame` (pure) builds it from the training window; `log_reference` logs it with every
candidate (two artifacts: the frame as parquet, its meta as JSON); `fetch_reference` downloads
those artifacts of a registered version, which is how monitoring reads them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from include.core.settings import Settings
from include.registry import tracking

if TYPE_CHECKING:
    import pandas as pd

REFERENCE_FILE = "monitoring_reference.parquet"
REFERENCE_META = "monitoring_reference.json"
REFERENCE_EXTRA = ("score", "part", "day")
"""Columns of a reference frame that are not model inputs (see `reference_frame`)."""
ATTRIBUTION_KEY = "attribution_reference"
FAIRNESS_KEY = "fairness_reference"
"""Keys of the reference's meta: the window's attribution shares and the holdout's slice gaps."""
ATTRIBUTION_MIN_ROWS = 200
"""Window days with fewer flights are left out of the attribution reference (sampling noise)."""


def reference_frame(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    columns: list[str],
    train_scores: Any,
    holdout_scores: Any,
    time_column: str = "scheduled_departure",
    max_rows: int = 50_000,
    seed: int = 0,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """What a model is monitored against: its training window's inputs (train + holdout, sampled
    to at most `max_rows`), the day of each row (the yardstick of day-to-day variation) and the
    model's scores (`score`; `part` says train or holdout: training rows are scored in-sample).

    The meta carries what sampling would distort: rows per day of the window."""
    import numpy as np
    import pandas as pd

    times = pd.to_datetime(pd.concat([train[time_column], holdout[time_column]], ignore_index=True), utc=True)
    both = pd.concat(
        [
            train[columns].assign(score=np.asarray(train_scores, dtype=float), part="train"),
            holdout[columns].assign(score=np.asarray(holdout_scores, dtype=float), part="holdout"),
        ],
        ignore_index=True,
    ).assign(day=times.dt.strftime("%Y-%m-%d").to_numpy())
    days = int(both["day"].nunique())
    if len(both) > max_rows:
        both = both.sample(n=max_rows, random_state=seed).sort_index().reset_index(drop=True)
    meta = {
        "rows": len(train) + len(holdout),
        "sampled_rows": len(both),
        "days": days,
        "daily_rows": float((len(train) + len(holdout)) / days) if days else 0.0,
        "window_start": str(times.min()),
        "window_end": str(times.max()),
    }
    return both, meta


def predict_with(model: Any, columns: list[str], frame: pd.DataFrame) -> Any:
    """The model's scores of a frame (for attribution's shuffled copies)."""
    from include.training.candidates import scores

    return scores(model, frame, columns)


def behaviour_reference(
    model: Any,
    columns: list[str],
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    holdout_scores: Any,
    threshold: float,
) -> dict[str, Any]:
    """What monitoring compares a labelled night's attribution and fairness with (a night is one
    day): the window's daily attribution shares, their mean and the largest shift of one day
    (train and holdout days: attribution needs no labels); the mean of the holdout's daily slice
    gaps, and the pooled holdout's gaps beside them. Keys ATTRIBUTION_KEY and FAIRNESS_KEY."""
    from functools import partial

    import pandas as pd

    from include.features.training_set import LABEL
    from include.training import attribution, fairness

    window = pd.concat([train, holdout], ignore_index=True)
    window_days = pd.to_datetime(window["scheduled_departure"], utc=True).dt.strftime("%Y-%m-%d").to_numpy()
    features = [c for c in columns if c not in attribution.CONSTANT_WITHIN_A_DAY]
    daily = attribution.daily_shares(
        partial(predict_with, model, columns), window[columns], window_days, features, ATTRIBUTION_MIN_ROWS
    )
    days = pd.to_datetime(holdout["scheduled_departure"], utc=True).dt.strftime("%Y-%m-%d").to_numpy()
    y = holdout[LABEL].to_numpy()
    args = (threshold, fairness.MIN_ROWS, fairness.MIN_LATE)
    pooled = fairness.slice_gaps(holdout, y, holdout_scores, *args)
    return {
        ATTRIBUTION_KEY: attribution.reference(daily),
        FAIRNESS_KEY: {
            "daily": fairness.daily_gaps(holdout, days, y, holdout_scores, *args),
            "pooled": {k: g.gap for k, g in pooled.items()},
        },
    }


def input_columns_of(reference: pd.DataFrame) -> list[str]:
    """The model inputs of a reference frame (its columns but the scores, parts and days)."""
    return [c for c in reference.columns if c not in REFERENCE_EXTRA]


def log_reference(frame: pd.DataFrame, meta: dict[str, Any]) -> None:
    """Log a candidate's monitoring reference to the active MLflow run."""
    import mlflow

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / REFERENCE_FILE
        frame.to_parquet(path, index=False)
        mlflow.log_artifact(str(path))
    mlflow.log_dict(meta, REFERENCE_META)


def fetch_reference(settings: Settings, version: str, folder: Path) -> None:
    """Download the reference of a registered version into `folder`; FileNotFoundError when the
    version's run has none."""
    client = tracking.client(settings)
    run_id = client.get_model_version(settings.model_name, str(version)).run_id
    folder.mkdir(parents=True, exist_ok=True)
    try:
        for name in (REFERENCE_META, REFERENCE_FILE):
            client.download_artifacts(run_id, name, str(folder))
    except Exception as exc:
        raise FileNotFoundError(
            f"{settings.model_name} version {version} (run {run_id}) has no monitoring reference "
            f"({REFERENCE_FILE}): it was trained before monitoring existed. Retrain (train_model) "
            "so that the champion carries one."
        ) from exc


def own_smoke_sample(settings: Settings, version: str) -> pd.DataFrame:
    """A version's own holdout rows (from its monitoring reference), in day order: what a
    rollback's smoke test scores. FileNotFoundError when the version has no reference."""
    import pandas as pd

    with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
        fetch_reference(settings, version, Path(tmp))
        frame = pd.read_parquet(Path(tmp) / REFERENCE_FILE)
    holdout = frame[frame["part"] == "holdout"] if "part" in frame.columns else frame
    return (holdout if len(holdout) else frame).reset_index(drop=True)
