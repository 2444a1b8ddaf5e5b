"""Candidates and their measurements on small frames: split, specs, metrics, slices, the baseline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from include.training import candidates as training

FEATURES = ["route_late_share", "temp_f", "origin_weather_missing"]


def frame(days: int = 6, per_day: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = days * per_day
    start = datetime(2013, 6, 1, tzinfo=UTC)
    share = rng.uniform(0, 1, n)
    return pd.DataFrame(
        {
            "flight_id": np.arange(n),
            "scheduled_departure": [start + timedelta(hours=24 * (i // per_day) + i % 24) for i in range(n)],
            "route_late_share": share,
            "temp_f": rng.normal(60, 10, n),
            "origin_weather_missing": rng.integers(0, 2, n),
            "carrier": rng.choice(["AA", "UA"], n),
            "origin": rng.choice(["EWR", "JFK"], n),
            "late": (share + rng.normal(0, 0.3, n) > 0.6).astype(int),
        }
    )


def test_time_split_holds_out_the_latest_days():
    split = training.time_split(frame(), "scheduled_departure", 2)
    assert split.holdout["scheduled_departure"].min() >= split.holdout_start
    assert split.train["scheduled_departure"].max() < split.holdout_start
    assert len(split.train) == 4 * 40 and len(split.holdout) == 2 * 40


def test_time_split_refuses_an_empty_side_or_one_class():
    with pytest.raises(ValueError, match="widen the training window"):
        training.time_split(frame(days=2), "scheduled_departure", 2)
    one_class = frame().assign(late=0)
    with pytest.raises(ValueError, match="single class"):
        training.time_split(one_class, "scheduled_departure", 2)


@pytest.mark.parametrize("spec", training.DEFAULT_GRID)
def test_every_default_candidate_fits_and_scores_probabilities(spec):
    split = training.time_split(frame(), "scheduled_departure", 2)
    model, seconds = training.fit(spec, split.train, FEATURES)
    p = training.scores(model, split.holdout, training.input_columns(FEATURES))
    assert seconds > 0 and len(p) == len(split.holdout) and ((p >= 0) & (p <= 1)).all()


@pytest.mark.parametrize(
    "spec", [{"model": "random_forest"}, {"model": "logistic_regression", "depth": 3}, {}]
)
def test_a_bad_grid_entry_is_refused_with_its_name(spec):
    with pytest.raises(training.CandidateSpecError):
        training.make_pipeline(spec, FEATURES)


def test_the_grid_is_checked_entry_by_entry_before_training():
    assert training.checked_grid(training.DEFAULT_GRID) == training.DEFAULT_GRID
    with pytest.raises(training.CandidateSpecError, match="random_forest"):
        training.checked_grid([*training.DEFAULT_GRID, {"model": "random_forest"}])


def test_the_window_ends_on_the_requested_day_or_asks_the_lake(tmp_path):
    from include.training.data import NotEnoughDataError, window_end

    assert window_end("2013-06-24", str(tmp_path)) == datetime(2013, 6, 24, tzinfo=UTC)
    with pytest.raises(NotEnoughDataError, match="no validated flight_outcomes"):
        window_end(None, str(tmp_path))  # an empty lake


def test_candidate_names_are_stable_and_readable():
    spec = {"model": "hist_gradient_boosting", "max_depth": 8, "learning_rate": 0.05}
    assert training.candidate_name(spec) == "hist_gradient_boosting-learning_rate=0.05-max_depth=8"


def test_metrics_on_a_perfect_and_a_useless_score():
    y = np.array([0, 0, 1, 1])
    perfect = training.metrics(y, np.array([0.1, 0.2, 0.8, 0.9]), 0.5)
    assert perfect["roc_auc"] == 1.0 and perfect["precision_at_threshold"] == 1.0
    assert perfect["recall_at_threshold"] == 1.0 and perfect["brier"] < 0.05
    flat = training.metrics(y, np.array([0.5, 0.5, 0.5, 0.5]), 0.9)
    assert flat["roc_auc"] == 0.5 and flat["recall_at_threshold"] == 0.0 and flat["flagged_share"] == 0.0


def test_slices_skip_one_class_groups_and_count_rows():
    f = pd.DataFrame({"carrier": ["AA", "AA", "UA", "UA"], "origin": ["EWR"] * 4, "late": [0, 1, 1, 1]})
    slices = training.slice_auc(f, np.array([0.2, 0.8, 0.5, 0.6]))
    assert slices["carrier=AA"] == (1.0, 2) and "carrier=UA" not in slices
    assert slices["origin=EWR"][1] == 4


def test_shuffled_labels_lose_the_signal():
    split = training.time_split(frame(days=10, per_day=100), "scheduled_departure", 3)
    cols = training.input_columns(FEATURES)
    y = split.holdout["late"].to_numpy()
    spec = training.DEFAULT_GRID[2]  # HistGradientBoosting, depth 4
    honest, _ = training.fit(spec, split.train, FEATURES)
    shuffled, _ = training.fit(spec, split.train, FEATURES, shuffle_labels=True)
    a = training.roc_auc(y, training.scores(honest, split.holdout, cols))
    b = training.roc_auc(y, training.scores(shuffled, split.holdout, cols))
    assert a > 0.75 and b < 0.62, (a, b)


def test_baseline_is_the_route_late_share():
    f = pd.DataFrame({"route_late_share": [0.1, 0.2, 0.7, None], "late": [0, 0, 1, 1]})
    assert training.baseline_auc(f) == 0.5  # a missing share scores 0: the late flight at 0.0 ranks last
