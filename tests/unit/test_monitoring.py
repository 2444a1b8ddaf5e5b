"""Monitoring checks, distances and policy (include/monitoring/statistics.py, distances.py,
policy.py) and the training reference on small, deterministic samples."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from include.monitoring import statistics as m
from include.monitoring.distances import daily_yardstick, psi
from include.monitoring.policy import (
    FEATURE_DRIFT,
    FRESHNESS,
    PERFORMANCE,
    PREDICTION_DRIFT,
    VOLUME,
    MonitoringPolicy,
    RetrainRequestRecord,
    decide,
    monitoring_policy,
    trailing_breaches,
)
from include.training.reference import REFERENCE_EXTRA, reference_frame

POLICY = MonitoringPolicy()


def sample(
    n: int, seed: int = 0, shift: float = 0.0, carriers: tuple[str, ...] = ("AA", "B6", "DL")
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "temp_f": rng.normal(50 + shift, 10, n),
            "route_late_share": rng.beta(2, 8, n) + shift / 100,
            "plane_missing": (rng.random(n) < 0.1).astype(int),
            "carrier": rng.choice(list(carriers), n),
            "dep_weekday": np.full(n, 2 if shift else 3),
        }
    )


def test_identical_data_does_not_drift():
    ref = sample(5000)
    check, features = m.feature_drift(ref, ref.copy(), ("carrier",), POLICY)
    assert check.breached is False
    assert all(f.value == pytest.approx(0.0, abs=1e-9) for f in features)
    assert m.prediction_drift(ref["route_late_share"], ref["route_late_share"], POLICY).breached is False


def test_same_distribution_other_sample_does_not_drift():
    check, features = m.feature_drift(sample(20000, seed=1), sample(1000, seed=2), ("carrier",), POLICY)
    assert check.breached is False, check.detail
    assert max(f.value for f in features) < 0.05


def test_shifted_sample_drifts_and_names_the_features():
    check, features = m.feature_drift(
        sample(20000, seed=1), sample(1000, seed=2, shift=25), ("carrier",), POLICY
    )
    by_name = {f.feature: f for f in features}
    assert check.breached is True
    assert by_name["temp_f"].drifted and by_name["route_late_share"].drifted
    assert not by_name["carrier"].drifted and not by_name["plane_missing"].drifted
    assert "temp_f" in check.detail
    assert by_name["temp_f"].value > 2 and by_name["temp_f"].ks > 0.5 and by_name["temp_f"].psi > 1


def test_excluded_calendar_features_are_not_compared():
    _, features = m.feature_drift(sample(5000), sample(5000, shift=25), ("carrier",), POLICY)
    assert "dep_weekday" not in {f.feature for f in features}


def test_new_category_drifts():
    ref = sample(5000)
    cur = sample(1000, seed=3, carriers=("Q9",))
    result = m.column_drift("carrier", ref["carrier"], cur["carrier"], "categorical", 0.0, POLICY)
    assert result.drifted and result.value == pytest.approx(1.0)


@pytest.mark.parametrize("rows", [0, 1, 50])
def test_tiny_or_empty_days_are_not_evaluated(rows):
    check, features = m.feature_drift(sample(5000), sample(5000).head(rows), ("carrier",), POLICY)
    assert check.breached is None and check.status == "not evaluated"
    assert "insufficient data" in check.detail and features == []
    pred = m.prediction_drift(np.full(5000, 0.2), np.full(rows, 0.9), POLICY)
    assert pred.breached is None


def test_psi_handles_missing_values_and_constant_columns():
    assert math.isnan(psi([1.0, 2.0], []))
    assert psi(np.ones(100), np.ones(100)) == pytest.approx(0.0)
    assert psi(np.ones(100), np.zeros(100)) > 1
    with_nan = m.column_drift("x", [1.0, 2.0, 3.0] * 100, [1.0, None, 3.0] * 100, "numeric", 0.0, POLICY)
    assert with_nan.current_missing_share == pytest.approx(1 / 3)


def test_volume_and_freshness():
    assert m.volume_check(900, 1000, POLICY).breached is False
    assert m.volume_check(100, 1000, POLICY).breached is True
    due = datetime(2013, 6, 10, tzinfo=UTC)
    assert m.freshness_check(due - timedelta(hours=2), due, POLICY).breached is False
    assert m.freshness_check(due - timedelta(days=3), due, POLICY).breached is True
    assert m.freshness_check(None, due, POLICY).breached is True


def test_label_delay_rule():
    day = date(2013, 6, 10)
    have = {day, day + timedelta(days=1)}
    waiting = m.labels_complete(day, have, scored=900, labelled=880, policy=POLICY)
    assert not waiting.complete and "2013-06-12" in waiting.detail
    have.add(day + timedelta(days=2))
    assert m.labels_complete(day, have, scored=900, labelled=880, policy=POLICY).complete
    partial = m.labels_complete(day, have, scored=900, labelled=500, policy=POLICY)
    assert not partial.complete and "500 of 900" in partial.detail
    assert not m.labels_complete(day, have, scored=0, labelled=0, policy=POLICY).complete


def test_performance_decay_and_calibration():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(int)
    good = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.15, 2000), 0, 1)
    ok = m.performance_check(y, good, 0.4, champion_auc=0.8, policy=POLICY)
    assert ok.breached is False, ok.detail
    noise = rng.random(2000) * 0.6
    decayed = m.performance_check(y, noise, 0.4, champion_auc=0.8, policy=POLICY)
    assert decayed.breached is True and "ROC AUC" in decayed.detail
    miscalibrated = m.performance_check(y, good * 0.1, 0.4, champion_auc=None, policy=POLICY)
    assert miscalibrated.breached is True and "late share" in miscalibrated.detail
    one_class = m.performance_check(np.zeros(500, int), noise[:500], 0.4, None, POLICY)
    assert one_class.breached is None


def test_slices_below_floor():
    low = m.slice_check(
        {"carrier=AA": (0.50, 300), "carrier=B6": (0.70, 400), "origin=EWR": (0.3, 10)}, POLICY
    )
    assert low.breached and "carrier=AA" in low.detail and "EWR" not in low.detail
    assert m.slice_check({"carrier=AA": (0.3, 10)}, POLICY).breached is None


def test_trailing_breaches():
    assert trailing_breaches([]) == 0
    assert trailing_breaches([True, False, True, True]) == 2
    assert trailing_breaches([True, True, None]) == 0


NOW = datetime(2026, 11, 30, 3, tzinfo=UTC)
PERSISTENT = {FEATURE_DRIFT: 2, PREDICTION_DRIFT: 1, PERFORMANCE: 0, VOLUME: 0}


def test_policy_one_night_alerts_nothing():
    decision = decide({FEATURE_DRIFT: 1}, {}, "3", None, NOW, POLICY)
    assert decision.alerts == [] and not decision.retrain


def test_policy_persistent_drift_requests_retraining():
    decision = decide(PERSISTENT, {FEATURE_DRIFT: "9 of 25 drifted"}, "3", None, NOW, POLICY)
    assert decision.retrain and len(decision.alerts) == 1
    assert "feature_drift breached 2 nights in a row: 9 of 25 drifted" in decision.reasons[0]


def test_policy_data_problems_alert_without_retraining():
    decision = decide({FRESHNESS: 3, VOLUME: 2}, {}, "3", None, NOW, POLICY)
    assert len(decision.alerts) == 2 and not decision.retrain


def test_policy_dedupe_while_a_request_is_pending():
    pending = RetrainRequestRecord(NOW - timedelta(days=30), "3", "pending")
    decision = decide(PERSISTENT, {}, "3", pending, NOW, POLICY)
    assert not decision.retrain and decision.reasons[0].startswith("dedupe")
    assert decision.alerts  # the alert still fires


def test_policy_cooldown_then_allowed_again():
    taken = RetrainRequestRecord(NOW - timedelta(days=2), "3", "consumed")
    cooling = decide(PERSISTENT, {}, "3", taken, NOW, POLICY)
    assert not cooling.retrain and cooling.reasons[0].startswith("cooldown")
    later = decide(PERSISTENT, {}, "3", taken, NOW + timedelta(days=6), POLICY)
    assert later.retrain
    # a new champion is a new model: its own drift may request at once
    assert decide(PERSISTENT, {}, "4", taken, NOW, POLICY).retrain


def test_policy_from_environment():
    policy = MonitoringPolicy.from_env(
        {"MLOPS_MONITOR_CONSECUTIVE_NIGHTS": "3", "MLOPS_MONITOR_EXCLUDED_FEATURES": "a, b"}
    )
    assert policy.consecutive_nights == 3 and policy.excluded_features == ("a", "b")
    assert policy.drift_margin == POLICY.drift_margin


def test_monitoring_policy_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("MLOPS_MONITOR_CONSECUTIVE_NIGHTS", "4")
    assert monitoring_policy().consecutive_nights == 4


def test_reference_frame_keeps_daily_volume_when_sampling():
    days = pd.date_range("2013-06-01", periods=10, freq="D", tz="UTC")
    train = pd.DataFrame({"x": range(900), "scheduled_departure": np.repeat(days[:9], 100)})
    holdout = pd.DataFrame({"x": range(100), "scheduled_departure": np.repeat(days[9:], 100)})
    frame, meta = reference_frame(train, holdout, ["x"], np.full(900, 0.2), np.full(100, 0.3), max_rows=300)
    assert len(frame) == 300 and meta["daily_rows"] == 100 and meta["days"] == 10
    assert set(frame.loc[frame["part"] == "holdout", "score"]) <= {0.3}
    assert frame["day"].nunique() == 10 and set(REFERENCE_EXTRA) <= set(frame.columns)


def clustered_days(days: int, rows: int, seed: int, centre: float = 50.0) -> pd.DataFrame:
    """Like one day's weather: each day's values sit around that day's own level."""
    rng = np.random.default_rng(seed)
    levels = rng.normal(centre, 10, days)
    return pd.DataFrame(
        {
            "temp_f": np.concatenate([rng.normal(level, 2, rows) for level in levels]),
            "day": np.repeat([f"d{i}" for i in range(days)], rows),
        }
    )


def test_an_ordinary_day_of_clustered_data_is_not_drift_but_another_season_is():
    ref = clustered_days(28, 300, seed=1)
    ruler = daily_yardstick(ref, ref["day"], ["temp_f"], (), POLICY)
    assert ruler["temp_f"] > 0.5  # single days stray far from a month of them
    ordinary = clustered_days(1, 900, seed=7)  # one new day, same season
    check, _ = m.feature_drift(ref[["temp_f"]], ordinary[["temp_f"]], (), POLICY, ruler)
    naive, _ = m.feature_drift(ref[["temp_f"]], ordinary[["temp_f"]], (), POLICY)
    assert check.breached is False and naive.breached is True  # the yardstick is what keeps it quiet
    winter = clustered_days(1, 900, seed=7, centre=0.0)
    check, features = m.feature_drift(ref[["temp_f"]], winter[["temp_f"]], (), POLICY, ruler)
    assert check.breached is True and features[0].value > features[0].threshold > ruler["temp_f"]


def test_scored_intervals_from_events_or_params():
    from include.monitoring.reads import scored_intervals

    extras = [{"intervals": ["20131209T0000Z_20131210T0000Z", "20131208T0000Z_20131209T0000Z"]}, {}]
    got = scored_intervals(extras, None, 1)
    assert [s.day for s, _ in got] == [8, 9]  # oldest first, an event without intervals ignored
    by_hand = scored_intervals([], "2013-12-01", 2)
    assert [(s.day, e.day) for s, e in by_hand] == [(1, 2), (2, 3)]
    assert scored_intervals([], None, 1) == []


def test_the_tables_keep_one_verdict_per_check_and_day_and_hand_out_requests_once(tmp_path, monkeypatch):
    from include.core.settings import get_settings
    from include.monitoring import tables

    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLOPS_MONITORING_URL", raising=False)
    settings, day = get_settings(), date(2013, 12, 9)
    result = m.CheckResult(FEATURE_DRIFT, True, 0.3, 0.2, "3 of 10 features drifted", {"psi.temp_f": 2.0})
    for _ in range(2):  # a rerun of the night replaces its rows
        tables.record(settings, "1", day, [result], "monitor run")
    history = tables.checks_history(settings, "1")
    assert history["check"].tolist() == [FEATURE_DRIFT] and history["breached"].tolist() == [1]
    assert sorted(tables.metrics_history(settings, "1")["name"]) == ["psi.temp_f", "value"]
    first = tables.record_request(settings, "1", day, ["feature_drift breached"], None, "monitor run")
    # The same monitor run retried (killed before its asset event): the same request, not a second.
    assert tables.record_request(settings, "1", day, ["feature_drift breached"], None, "monitor run") == first
    read = tables.pending_requests(settings)
    assert [(r["model_version"], r["day"], r["reasons"]) for r in read] == [
        ("1", "2013-12-09", ["feature_drift breached"])
    ]
    # A run that read them and failed marked nothing: the next run reads them again.
    assert tables.pending_requests(settings) == read
    last = tables.last_request(settings)
    assert last is not None and last.status == "pending"
    assert tables.mark_answered(settings, [r["id"] for r in read], "train run") == 1
    assert tables.mark_answered(settings, [r["id"] for r in read], "its retry") == 0  # once
    assert tables.pending_requests(settings) == []
    last = tables.last_request(settings)
    assert last is not None and last.status == "consumed"
    assert tables.requests(settings)["consumed_by"].tolist() == ["train run"]
    # Control: another monitor run's request is a new one.
    assert tables.record_request(settings, "1", day, ["feature_drift breached"], None, "next run") != first


def test_a_reference_download_killed_in_the_middle_leaves_no_cache_a_later_run_would_trust(
    tmp_path, monkeypatch
):
    from include.core.settings import get_settings
    from include.monitoring import reads
    from include.training.reference import REFERENCE_FILE, REFERENCE_META

    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    settings = get_settings()
    frame = pd.DataFrame({"temp_f": [40.0, 50.0], "score": [0.1, 0.9], "day": ["2013-12-01", "2013-12-02"]})

    def killed(settings, version, folder):
        (folder / REFERENCE_FILE).write_bytes(b"PAR1 half a file")  # the download stops here
        raise KeyboardInterrupt("SIGKILL")

    def whole(settings, version, folder):
        frame.to_parquet(folder / REFERENCE_FILE, index=False)
        (folder / REFERENCE_META).write_text('{"rows": 2}')

    monkeypatch.setattr(reads, "fetch_reference", killed)
    with pytest.raises(KeyboardInterrupt):
        reads.load_reference(settings, "3")
    folder = reads.reference_folder(settings, "3")
    assert list(folder.iterdir()) == [] and [p.name for p in folder.parent.iterdir()] == ["3"]

    monkeypatch.setattr(reads, "fetch_reference", whole)  # the retry downloads it whole
    got, meta = reads.load_reference(settings, "3")
    assert got.equals(frame) and meta == {"rows": 2}
    monkeypatch.setattr(reads, "fetch_reference", killed)  # control: a whole cache is used as is
    assert reads.load_reference(settings, "3")[0].equals(frame)
