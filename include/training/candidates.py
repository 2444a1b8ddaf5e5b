"""Candidate models and how they are measured: plain functions on DataFrames (no Airflow, no MLflow).

A candidate is a small JSON-able spec (`{"model": "hist_gradient_boosting", "max_depth": 6}`), so
the Params form of train_model can carry a search grid and each mapped task trains one spec.
Every candidate is measured on the SAME time-based holdout (the latest days of the window), and
so is the champion and the naive baseline: the gate compares like with like.
"""

from __future__ import annotations

import io
import pickle
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.core.errors import CandidateSpecError

if TYPE_CHECKING:  # the DAG file imports DEFAULT_GRID from here: keep numpy/pandas out of parsing
    import numpy as np
    import pandas as pd

CATEGORICAL = ("carrier", "origin")
"""Entity keys the models see as categories (they are also the gate's slices)."""
SLICE_COLUMNS = CATEGORICAL
BASELINE_COLUMN = "route_late_share"
"""The naive baseline: the route's late share over its last 28 days, used as the score."""

DEFAULT_GRID: list[dict[str, Any]] = [
    {"model": "logistic_regression", "C": 1.0},
    # Shallow trees: on a short window (make run's first model: 14 days) deeper ones learn the
    # window's own days and lose to the naive baseline on a holdout whose late share moved
    # (2026-12-02's window: depth 4 ROC AUC 0.592, depth 2 0.627, the baseline 0.601).
    {"model": "hist_gradient_boosting", "max_depth": 2, "learning_rate": 0.1, "max_iter": 100},
    {"model": "hist_gradient_boosting", "max_depth": 4, "learning_rate": 0.1, "max_iter": 200},
    {"model": "hist_gradient_boosting", "max_depth": 8, "learning_rate": 0.05, "max_iter": 300},
]
MODEL_KINDS = ("logistic_regression", "hist_gradient_boosting")
SEED = 0
"""Every candidate's random state (logged as its `seed` param): a version can be fitted again
identically from its record."""


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame
    holdout_start: pd.Timestamp


def candidate_name(spec: dict[str, Any]) -> str:
    """A readable, stable name: `hist_gradient_boosting-learning_rate=0.05-max_depth=8`."""
    rest = "-".join(f"{k}={spec[k]}" for k in sorted(spec) if k != "model")
    return f"{spec.get('model')}{'-' + rest if rest else ''}"


def time_split(frame: pd.DataFrame, time_column: str, holdout_days: int) -> Split:
    """Holdout = flights of the latest `holdout_days` days of the window; train = everything before.

    Random splits would let a model learn a day's weather from its neighbours: time-based only."""
    import pandas as pd

    if holdout_days < 1:
        raise ValueError("holdout_days must be at least 1")
    times = pd.to_datetime(frame[time_column], utc=True)
    last_day = times.max().floor("D")
    holdout_start = last_day - pd.Timedelta(days=holdout_days - 1)
    is_holdout = times >= holdout_start
    train, holdout = frame[~is_holdout], frame[is_holdout]
    if train.empty or holdout.empty:
        raise ValueError(
            f"time split left {len(train)} training and {len(holdout)} holdout rows "
            f"(holdout from {holdout_start:%Y-%m-%d}); widen the training window or shorten the holdout"
        )
    for name, part in (("training", train), ("holdout", holdout)):
        if part["late"].nunique() < 2:
            raise ValueError(f"the {name} rows have a single class; widen the training window")
    return Split(train.reset_index(drop=True), holdout.reset_index(drop=True), holdout_start)


def input_columns(feature_columns: list[str]) -> list[str]:
    """What a model takes as input (its signature): the features plus the categorical keys."""
    return [*feature_columns, *CATEGORICAL]


def serving_columns(views: dict[str, list[str]]) -> list[str]:
    """The input columns serving builds for these views (include/serving/inputs.py): what a
    model's signature must match."""
    import pandas as pd

    from include.features.engineering import calendar_features

    features = [c for view, names in views.items() for c in (*names, f"{view}_missing")]
    calendar = calendar_features(pd.Series([pd.Timestamp("2026-01-01", tz="UTC")])).columns
    return input_columns([*features, *calendar])


def make_pipeline(spec: dict[str, Any], feature_columns: list[str], seed: int = SEED) -> Any:
    """A scikit-learn pipeline for one candidate spec; raises CandidateSpecError on a bad spec."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    kind = spec.get("model")
    params = {k: v for k, v in spec.items() if k != "model"}
    cat = list(CATEGORICAL)
    try:
        if kind == "logistic_regression":
            pre = ColumnTransformer(
                [
                    ("num", StandardScaler(), feature_columns),
                    ("cat", OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20), cat),
                ]
            )
            model = LogisticRegression(max_iter=2000, **params)
        elif kind == "hist_gradient_boosting":
            pre = ColumnTransformer(
                [
                    ("num", "passthrough", feature_columns),
                    (
                        "cat",
                        OrdinalEncoder(
                            handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1
                        ),
                        cat,
                    ),
                ],
                verbose_feature_names_out=False,
            )
            mask = [False] * len(feature_columns) + [True] * len(cat)
            model = HistGradientBoostingClassifier(categorical_features=mask, random_state=seed, **params)
        else:
            raise CandidateSpecError(f"unknown model {kind!r}: choose one of {', '.join(MODEL_KINDS)}")
    except TypeError as exc:
        raise CandidateSpecError(f"bad parameters for {kind}: {exc}") from exc
    return Pipeline([("features", pre), ("model", model)])


def checked_grid(grid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The search grid, every entry built once: a bad entry raises CandidateSpecError naming it
    before any training starts."""
    specs = list(grid)
    for spec in specs:
        make_pipeline(spec, ["x"])
    return specs


def fit(
    spec: dict[str, Any], train: pd.DataFrame, feature_columns: list[str], shuffle_labels: bool = False
) -> tuple[Any, float]:
    """Fit one candidate; returns the pipeline and the fit time in seconds.

    `shuffle_labels` breaks the link between features and label on purpose (an audit of the gate:
    such a model must be rejected)."""
    import numpy as np

    y = train["late"].to_numpy()
    if shuffle_labels:
        y = np.random.default_rng(0).permutation(y)
    pipeline = make_pipeline(spec, feature_columns, seed=SEED)
    started = time.perf_counter()
    pipeline.fit(train[input_columns(feature_columns)], y)
    return pipeline, time.perf_counter() - started


def scores(model: Any, frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """P(late) for each row."""
    return model.predict_proba(frame[columns])[:, 1]


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p))


def metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Ranking, probability and decision metrics of scores `p` against labels `y`."""
    import numpy as np
    from sklearn.metrics import (
        average_precision_score,
        brier_score_loss,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    flagged = (p >= threshold).astype(int)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, np.clip(p, 1e-6, 1 - 1e-6), labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "precision_at_threshold": float(precision_score(y, flagged, zero_division=0)),
        "recall_at_threshold": float(recall_score(y, flagged, zero_division=0)),
        "flagged_share": float(flagged.mean()),
        "late_share": float(np.mean(y)),
    }


def slice_auc(frame: pd.DataFrame, p: np.ndarray) -> dict[str, tuple[float, int]]:
    """ROC AUC per carrier and per origin: {"carrier=AA": (auc, rows)}; one-class slices are left out."""
    from sklearn.metrics import roc_auc_score

    out: dict[str, tuple[float, int]] = {}
    y = frame["late"].to_numpy()
    for column in SLICE_COLUMNS:
        values = frame[column].astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            if len(set(y[mask])) < 2:
                continue
            out[f"{column}={value}"] = (float(roc_auc_score(y[mask], p[mask])), int(mask.sum()))
    return out


def baseline_auc(holdout: pd.DataFrame) -> float:
    """ROC AUC of the naive baseline (the route's recent late share) on the holdout."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(holdout["late"], holdout[BASELINE_COLUMN].fillna(0.0)))


def permutation_importance(
    model: Any, holdout: pd.DataFrame, columns: list[str], max_rows: int = 1000, repeats: int = 2
) -> dict[str, float]:
    """Mean drop of ROC AUC when one input column is shuffled (sorted, largest first).

    On a sample: columns x repeats predictions of the whole pipeline cost ~1 min on 3,000 rows
    with 3 repeats on a busy 2-core machine; a sample of 1,000 x 2 is an indication, not a census."""
    from sklearn.inspection import permutation_importance as sk_permutation_importance

    sample = holdout.sample(n=min(max_rows, len(holdout)), random_state=0)
    result = sk_permutation_importance(
        model, sample[columns], sample["late"], scoring="roc_auc", n_repeats=repeats, random_state=0, n_jobs=1
    )
    pairs = sorted(zip(columns, result.importances_mean, strict=True), key=lambda kv: -kv[1])
    return {name: float(value) for name, value in pairs}


def model_size_mb(model: Any) -> float:
    """Size of the pickled model, what serving loads."""
    buffer = io.BytesIO()
    pickle.dump(model, buffer, protocol=pickle.HIGHEST_PROTOCOL)
    return buffer.tell() / 1e6


def single_row_latency_ms(model: Any, frame: pd.DataFrame, columns: list[str], rows: int = 50) -> float:
    """Median time to score one flight (a one-row DataFrame), as the online service does."""
    import numpy as np

    sample = frame[columns].head(rows)
    model.predict_proba(sample.iloc[[0]])  # warm-up
    times = []
    for i in range(len(sample)):
        row = sample.iloc[[i]]
        started = time.perf_counter()
        model.predict_proba(row)
        times.append((time.perf_counter() - started) * 1000)
    return float(np.median(times))


def roc_and_calibration_figure(y: np.ndarray, p: np.ndarray, title: str) -> Any:
    """One figure: the ROC curve and the calibration curve (reliability) of the holdout scores."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import RocCurveDisplay

    fig, (roc_ax, cal_ax) = plt.subplots(1, 2, figsize=(10, 4.5))
    RocCurveDisplay.from_predictions(y, p, ax=roc_ax, name="candidate")
    roc_ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc_ax.set_title("ROC (holdout)")
    CalibrationDisplay.from_predictions(y, p, n_bins=10, strategy="quantile", ax=cal_ax, name="candidate")
    cal_ax.set_title("Calibration (holdout)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def importance_figure(importance: dict[str, float], top: int = 15) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = list(importance.items())[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set_xlabel("mean ROC AUC drop when shuffled (holdout)")
    fig.tight_layout()
    return fig
