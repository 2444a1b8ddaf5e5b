"""Attribution drift and fairness replayed on real 2013 days through the production path (the
same study as `make calibrate`, benchmarks/attribution_calibration.py): each day's flights scored
into the prediction log by `score_interval`, joined with their labels, measured by
`model_checks.measure_day` and judged with the default MonitoringPolicy against models trained
as train_candidate trains them, with their behaviour references.

- 2 x 30 ordinary days (October 2013: each against the model of the 28 days before it, and
  against one model up to 30 days old): attribution drift never breaches; fairness never alerts.
- December 2013 (1-14, against a November model): attribution drift is detected (breaches on
  consecutive nights: an alert).
The counts are printed (pytest -s) and asserted.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.attribution_calibration import measure, widest
from benchmarks.bench_monitoring import build_lake
from benchmarks.drift_calibration import FIRST_DAY, LAST_DAY, tally


@pytest.fixture(scope="module")
def replay(tmp_path_factory) -> Iterator[dict[str, list[dict[str, Any]]]]:
    import os

    mp = pytest.MonkeyPatch()
    for name in [n for n in os.environ if n.startswith("MLOPS_")] + ["MLFLOW_TRACKING_URI"]:
        mp.delenv(name, raising=False)
    mp.setenv("MLOPS_DATA_DIR", str(tmp_path_factory.mktemp("attribution_replay")))
    from include.monitoring.policy import MonitoringPolicy

    policy = MonitoringPolicy()
    settings, store, _ = build_lake(FIRST_DAY, LAST_DAY)
    days, _, _ = measure(settings, store, policy)
    yield {"days": days, "policy": policy}  # type: ignore[misc]
    mp.undo()


def _attribution_flags(days: list[dict[str, Any]], policy: Any) -> list[bool]:
    return [
        d["shift"] > max(policy.attribution_margin * d["day_max_shift"], policy.attribution_min_shift)
        for d in days
    ]


def test_attribution_drift_is_quiet_on_ordinary_days_and_detected_in_december(replay):
    days, policy = replay["days"], replay["policy"]
    counts = {g: tally(_attribution_flags(days[g], policy), policy.consecutive_nights) for g in days}
    shown = {g: (c["breached"], c["alerts"]) for g, c in counts.items()}
    print(f"attribution drift (breached, alerts): {shown}")
    assert counts["stable_rolling"]["days"] == counts["stable_fixed"]["days"] == 30
    assert counts["stable_rolling"]["breached"] == counts["stable_fixed"]["breached"] == 0, counts
    assert counts["december"]["days"] == 14 and counts["december"]["alerts"] >= 1, counts


def test_fairness_never_alerts_on_ordinary_days(replay):
    from include.monitoring.model_checks import tolerance

    days, policy = replay["days"], replay["policy"]

    def flags(group: list[dict[str, Any]]) -> list[bool]:
        return [
            any(
                (w := widest(d, m)) is not None and w > tolerance(m, policy)
                for m in ("flag_rate", "recall", "calibration")
            )
            for d in group
        ]

    counts = {g: tally(flags(days[g]), policy.consecutive_nights) for g in days}
    shown = {g: (c["breached"], c["alerts"]) for g, c in counts.items()}
    print(f"fairness (breached, alerts): {shown}")
    assert counts["stable_rolling"]["alerts"] == counts["stable_fixed"]["alerts"] == 0, counts
