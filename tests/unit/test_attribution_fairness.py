"""Attribution drift and fairness on constructed cases whose answer is known: a model that only
reads `a` attributes everything to `a`; a night on which the model's scores come to depend on
`b` shifts the shares; one carrier flagged far more often widens the flag-rate gap; the gate
refuses a candidate whose widest gap is wider than the champion's beyond the tolerance."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.monitoring.model_checks import attribution_check, fairness_check, judge
from include.monitoring.policy import MonitoringPolicy
from include.training import attribution, fairness
from include.training.gate import GateThresholds, ModelEvidence, decide

POLICY = MonitoringPolicy()


def _frame(n: int = 2000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "a": rng.normal(size=n),
            "b": rng.normal(size=n),
            "c": rng.normal(size=n),
            "carrier": np.where(np.arange(n) % 2 == 0, "UA", "DL"),
            "origin": np.where(np.arange(n) % 3 == 0, "JFK", "EWR"),
            "dep_hour": np.arange(n) % 24,
        }
    )


def _logistic(weights: dict[str, float]):
    def predict(frame: pd.DataFrame) -> np.ndarray:
        z = sum(w * frame[k].to_numpy() for k, w in weights.items())
        return 1 / (1 + np.exp(-z))

    return predict


def test_a_model_that_reads_one_feature_attributes_everything_to_it():
    found = attribution.shares(attribution.sensitivity(_logistic({"a": 2.0}), _frame(), ["a", "b", "c"]))
    assert found["a"] == pytest.approx(1.0) and found["b"] == found["c"] == 0.0
    both = attribution.shares(attribution.sensitivity(_logistic({"a": 1.0, "b": 1.0}), _frame(), ["a", "b"]))
    assert both["a"] == pytest.approx(0.5, abs=0.05)  # two equal weights: equal shares


def test_the_shift_is_zero_for_the_same_reasons_and_one_for_disjoint_ones():
    assert attribution.shift({"a": 2.0, "b": 1.0}, {"a": 4.0, "b": 2.0}) == pytest.approx(0.0)
    assert attribution.shift({"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}) == pytest.approx(1.0)


def test_the_reference_is_the_window_mean_and_its_farthest_day():
    days = {"d1": {"a": 0.8, "b": 0.2}, "d2": {"a": 0.6, "b": 0.4}}
    ref = attribution.reference(days)
    assert ref["shares"] == pytest.approx({"a": 0.7, "b": 0.3}) and ref["days"] == 2
    assert ref["day_max_shift"] == pytest.approx(0.1)


def test_a_night_whose_scores_depend_on_another_feature_breaches_and_the_same_night_does_not():
    features = ["a", "b", "c"]
    model = _logistic({"a": 2.0, "b": 0.3})
    window = {
        f"d{i}": attribution.shares(attribution.sensitivity(model, _frame(1000, i), features))
        for i in range(5)
    }
    reference = attribution.reference(window)
    same = attribution.sensitivity(model, _frame(1000, seed=10), features)
    # a storm night: `b` (say, visibility) moved where the model's response to it is steep
    storm = attribution.sensitivity(_logistic({"a": 2.0, "b": 3.0}), _frame(1000, seed=10), features)
    control = attribution_check(reference, same, POLICY)
    assert control.breached is False and control.value is not None and control.value < 0.05, control.detail
    moved = attribution_check(reference, storm, POLICY)
    assert moved.breached is True and moved.threshold is not None and moved.value > moved.threshold
    assert "top 5 at training: a" in moved.detail and "tonight: b" in moved.detail


def test_without_a_reference_the_checks_are_not_evaluated_never_ok():
    results = judge({}, {"a": 1.0}, {}, POLICY)
    assert [r.breached for r in results] == [None, None]
    assert all("trained before" in r.detail for r in results)


def _scored(
    flag_ua: float, flag_dl: float, n: int = 2000, seed: int = 0
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Flights of two carriers, 30 % late in each; each carrier's scores flag a given share."""
    frame = _frame(n, seed)
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    ua = frame["carrier"].to_numpy() == "UA"
    p = np.where(rng.random(n) < np.where(ua, flag_ua, flag_dl), 0.9, 0.1)
    return frame, y, p


def test_slice_gaps_name_the_slices_and_the_gap():
    frame, y, p = _scored(0.6, 0.2)
    gaps = fairness.slice_gaps(frame, y, p, 0.5, fairness.MIN_ROWS, fairness.MIN_LATE)
    g = gaps["flag_rate.carrier"]
    assert (g.highest, g.lowest) == ("UA", "DL") and g.gap == pytest.approx(0.4, abs=0.05)
    assert gaps["flag_rate.origin"].gap < 0.05  # origins are not told apart by the scores
    assert set(fairness.hour_band([0, 9, 10, 13, 14, 17, 18, 23])) == {"00-09h", "10-13h", "14-17h", "18-23h"}


def test_a_carrier_flagged_far_more_often_than_at_training_breaches_fairness():
    frame, y, p = _scored(0.3, 0.3)
    reference = {k: g.gap for k, g in fairness.slice_gaps(frame, y, p, 0.5, 50, 15).items()}
    night_same = fairness.slice_gaps(*_scored(0.3, 0.3, seed=1), 0.5, 50, 15)
    night_unfair = fairness.slice_gaps(*_scored(0.7, 0.2, seed=1), 0.5, 50, 15)
    control = fairness_check(night_same, reference, POLICY)
    assert control.breached is False, control.detail
    found = fairness_check(night_unfair, reference, POLICY)
    assert found.breached is True and "flag_rate.carrier" in found.detail and "UA vs DL" in found.detail


def test_small_slices_are_left_out():
    frame, y, p = _scored(0.7, 0.1, n=60)  # 30 flights per carrier < 50
    assert "flag_rate.carrier" not in fairness.slice_gaps(frame, y, p, 0.5, 50, 15)


def _evidence(gap: float) -> ModelEvidence:
    return ModelEvidence(0.70, {}, ("flag_rate.carrier", gap))


def test_the_gate_refuses_a_candidate_that_widens_the_widest_gap():
    args = {"baseline_roc_auc": 0.55, "signature_ok": True, "size_mb": 1.0, "latency_ms": 1.0}
    t = GateThresholds(fairness_tolerance=0.05)
    wider = decide(_evidence(0.30), champion=_evidence(0.20), t=t, **args)
    assert not wider.passed and any(r.startswith("fairness_gap") for r in wider.reasons), wider.reasons
    within = decide(_evidence(0.24), champion=_evidence(0.20), t=t, **args)
    assert within.passed, within.reasons
    first = decide(_evidence(0.90), champion=None, t=t, **args)  # nothing to compare with
    assert first.passed and "fairness_gap" not in first.as_table()
