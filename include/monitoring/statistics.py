"""Monitoring checks: pure functions (no Airflow, no MLflow, no I/O).

What monitor_model measures each night for the model that scored it (thresholds: policy.py):
- feature drift per feature between the version's training reference and the night's served
  features: the Wasserstein distance in reference standard deviations for numbers, the
  Jensen-Shannon distance for categories (distances.py), PSI and the KS statistic reported beside.
  A feature drifts when its distance exceeds `drift_margin` x the largest distance a single day
  of the training window had to the window (`daily_yardstick`): one day is a clustered sample,
  and fixed PSI thresholds flagged every ordinary day of 2013 (benchmarks/drift_calibration.py).
  Drift is decided on distances, never on p-values: at thousands of rows every test rejects.
- prediction drift: the same rule for the score distribution;
- performance on a day only once its labels are complete (`labels_complete`);
- volume and online-store freshness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from include.monitoring.contracts import CheckRecord, FeatureDriftRecord
from include.monitoring.distances import clean_numbers, distance, kind_of, psi
from include.monitoring.policy import (
    FEATURE_DRIFT,
    FRESHNESS,
    PERFORMANCE,
    PREDICTION_DRIFT,
    SLICE_PERFORMANCE,
    VOLUME,
    MonitoringPolicy,
)
from include.training.reference import REFERENCE_EXTRA

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    kind: str  # numeric | categorical
    statistic: str  # what decides: wasserstein (in reference std) | js
    value: float
    threshold: float
    """max(drift_margin x the largest distance of a reference day, min_distance)."""
    drifted: bool
    reference_day_max: float = 0.0
    psi: float | None = None
    ks: float | None = None
    reference_mean: float | None = None
    current_mean: float | None = None
    current_missing_share: float = 0.0

    def as_dict(self) -> FeatureDriftRecord:
        return FeatureDriftRecord(
            feature=self.feature,
            kind=self.kind,
            statistic=self.statistic,
            value=self.value,
            threshold=self.threshold,
            drifted=self.drifted,
            reference_day_max=self.reference_day_max,
            psi=self.psi,
            ks=self.ks,
            reference_mean=self.reference_mean,
            current_mean=self.current_mean,
            current_missing_share=self.current_missing_share,
        )


@dataclass(frozen=True)
class CheckResult:
    """One check of one night (or one labelled day). `breached` is None when it was not evaluated."""

    check: str
    breached: bool | None
    value: float | None
    threshold: float | None
    detail: str
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return {None: "not evaluated", True: "BREACHED", False: "ok"}[self.breached]

    def as_dict(self) -> CheckRecord:
        return CheckRecord(
            check=self.check,
            breached=self.breached,
            value=self.value,
            threshold=self.threshold,
            detail=self.detail,
            metrics=dict(self.metrics),
            status=self.status,
        )


def column_drift(
    feature: str,
    reference: Any,
    current: Any,
    kind: str,
    day_max: float,
    policy: MonitoringPolicy,
) -> FeatureDrift:
    """One feature: the deciding distance against its yardstick; PSI and KS reported beside it."""
    import numpy as np
    from scipy.stats import ks_2samp

    value = distance(reference, current, kind)
    threshold = max(policy.drift_margin * day_max, policy.min_distance)
    drifted = bool(not math.isnan(value) and value > threshold)
    if kind == "categorical":
        return FeatureDrift(feature, kind, "js", value, threshold, drifted, day_max)
    ref, cur = clean_numbers(reference), clean_numbers(current)
    n_cur = len(np.asarray(current))
    return FeatureDrift(
        feature=feature,
        kind=kind,
        statistic="wasserstein",
        value=value,
        threshold=threshold,
        drifted=drifted,
        reference_day_max=day_max,
        psi=psi(ref, cur, policy.psi_bins),
        ks=float(ks_2samp(ref, cur, method="asymp").statistic) if len(ref) and len(cur) else None,
        reference_mean=float(ref.mean()) if len(ref) else None,
        current_mean=float(cur.mean()) if len(cur) else None,
        current_missing_share=1.0 - len(cur) / n_cur if n_cur else 0.0,
    )


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    categorical: tuple[str, ...] | list[str],
    policy: MonitoringPolicy,
    yardstick: dict[str, float] | None = None,
) -> tuple[CheckResult, list[FeatureDrift]]:
    """Per-feature drift of `current` against `reference` over their shared columns, and the verdict.

    `yardstick`: per column, the largest distance of a reference day (`daily_yardstick`); without
    one, only `min_distance` applies. Fewer than `min_rows` current rows: not evaluated (a tiny
    or empty day says nothing)."""
    columns = [c for c in reference.columns if c in current.columns and c not in policy.excluded_features]
    rows = len(current)
    if rows < policy.min_rows or len(reference) < policy.min_rows:
        return (
            CheckResult(
                FEATURE_DRIFT,
                None,
                None,
                policy.drift_share,
                f"insufficient data: {rows} current and {len(reference)} reference rows "
                f"(at least {policy.min_rows} each are needed)",
                {"rows": float(rows)},
            ),
            [],
        )
    yardstick = yardstick or {}
    results = [
        column_drift(c, reference[c], current[c], kind_of(c, categorical), yardstick.get(c, 0.0), policy)
        for c in columns
    ]
    drifted = [r for r in results if r.drifted]
    share = len(drifted) / len(results) if results else 0.0
    breached = share >= policy.drift_share
    top = sorted(drifted, key=lambda r: -(r.value / r.threshold))[:5]
    detail = (
        f"{len(drifted)} of {len(results)} features drifted "
        f"(share {share:.2f}, threshold {policy.drift_share:.2f})"
    )
    if top:
        detail += ": " + ", ".join(f"{r.feature} {r.value:.2f} > {r.threshold:.2f}" for r in top)
    return (
        CheckResult(
            FEATURE_DRIFT,
            breached,
            share,
            policy.drift_share,
            detail,
            {"drifted_features": float(len(drifted)), "rows": float(rows)},
        ),
        results,
    )


def prediction_drift(
    reference_scores: Any, current_scores: Any, policy: MonitoringPolicy, day_max: float = 0.0
) -> CheckResult:
    """The night's score distribution against the reference's, with the same rule as a feature
    (Wasserstein in reference std against the largest distance of a reference day); PSI, KS and
    the mean scores reported beside it."""

    ref, cur = clean_numbers(reference_scores), clean_numbers(current_scores)
    if len(cur) < policy.min_rows or len(ref) < policy.min_rows:
        return CheckResult(
            PREDICTION_DRIFT,
            None,
            None,
            policy.min_distance,
            f"insufficient data: {len(cur)} scores tonight, {len(ref)} in the reference "
            f"(at least {policy.min_rows} each are needed)",
        )
    drift = column_drift(
        "score", ref, cur, "numeric", day_max, replace(policy, drift_margin=policy.prediction_margin)
    )
    metrics = {
        "wasserstein": drift.value,
        "psi": drift.psi if drift.psi is not None else math.nan,
        "ks": drift.ks if drift.ks is not None else math.nan,
        "reference_mean_score": float(ref.mean()),
        "mean_score": float(cur.mean()),
    }
    return CheckResult(
        PREDICTION_DRIFT,
        drift.drifted,
        drift.value,
        drift.threshold,
        f"scores {drift.value:.2f} std from the reference's (threshold {drift.threshold:.2f}, PSI "
        f"{metrics['psi']:.2f}); mean score {metrics['mean_score']:.3f} vs "
        f"{metrics['reference_mean_score']:.3f}",
        metrics,
    )


def night_checks(
    reference: pd.DataFrame,
    reference_daily_rows: float,
    served: pd.DataFrame,
    yardstick: dict[str, float],
    categorical: tuple[str, ...] | list[str],
    policy: MonitoringPolicy,
) -> tuple[list[CheckResult], list[FeatureDrift]]:
    """A night's served flights against the reference: feature drift (with each feature's
    distance and PSI among its metrics), prediction drift and volume."""
    columns = [c for c in reference.columns if c not in REFERENCE_EXTRA]
    current = served.reindex(columns=columns)
    drift, per_feature = feature_drift(reference[columns], current, categorical, policy, yardstick)
    per_metrics = {f"{f.statistic}.{f.feature}": f.value for f in per_feature}
    per_metrics |= {f"psi.{f.feature}": f.psi for f in per_feature if f.psi is not None}
    drift = replace(drift, metrics={**drift.metrics, **per_metrics})
    scores = served["score"] if not served.empty else []
    pred = prediction_drift(reference["score"].dropna(), scores, policy, yardstick.get("score", 0.0))
    volume = volume_check(len(served), reference_daily_rows, policy)
    return [drift, pred, volume], per_feature


def volume_check(rows: int, reference_daily_rows: float, policy: MonitoringPolicy) -> CheckResult:
    """Scored flights of the night against the reference's mean per day."""
    if reference_daily_rows <= 0:
        return CheckResult(VOLUME, None, float(rows), None, "no reference volume")
    ratio = rows / reference_daily_rows
    breached = not (policy.volume_low <= ratio <= policy.volume_high)
    return CheckResult(
        VOLUME,
        breached,
        ratio,
        policy.volume_low,
        f"{rows} flights scored, {ratio:.2f} x the reference's {reference_daily_rows:.0f} per day "
        f"(allowed {policy.volume_low}-{policy.volume_high} x)",
        {"rows": float(rows), "ratio": ratio},
    )


def freshness_check(
    materialized_until: datetime | None, due: datetime, policy: MonitoringPolicy
) -> CheckResult:
    """The online store should hold features up to the end of the monitored interval (`due`)."""
    if materialized_until is None:
        return CheckResult(FRESHNESS, True, None, policy.freshness_max_hours, "nothing was ever materialized")
    lag_hours = max(0.0, (due - materialized_until).total_seconds() / 3600)
    breached = lag_hours > policy.freshness_max_hours
    return CheckResult(
        FRESHNESS,
        breached,
        lag_hours,
        policy.freshness_max_hours,
        f"online store materialized until {materialized_until:%Y-%m-%d %H:%M} UTC, "
        f"{lag_hours:.1f} h before {due:%Y-%m-%d %H:%M} (allowed {policy.freshness_max_hours:.0f} h)",
        {"lag_hours": lag_hours},
    )


@dataclass(frozen=True)
class LabelStatus:
    day: date
    complete: bool
    detail: str


def labels_complete(
    day: date, outcome_days: set[date], scored: int, labelled: int, policy: MonitoringPolicy
) -> LabelStatus:
    """May the flights departing on `day` be judged? Only when the outcome partitions of the day
    and the next `label_wait_days` days are validated AND enough scored flights have an outcome.

    Outcomes appear after landing plus the reporting lag: overnight arrivals of `day` report on
    the next day, and a partition lands only after its interval closed."""
    needed = [day + timedelta(days=i) for i in range(policy.label_wait_days + 1)]
    missing = [d for d in needed if d not in outcome_days]
    if missing:
        return LabelStatus(
            day,
            False,
            f"waiting for validated outcomes of {', '.join(d.isoformat() for d in missing)}",
        )
    if scored == 0:
        return LabelStatus(day, False, "no scored flights")
    coverage = labelled / scored
    if coverage < policy.min_label_coverage:
        return LabelStatus(
            day,
            False,
            f"only {labelled} of {scored} scored flights have an outcome ({coverage:.1%} < "
            f"{policy.min_label_coverage:.0%})",
        )
    return LabelStatus(day, True, f"{labelled} of {scored} scored flights labelled ({coverage:.1%})")


def performance_check(
    y: Any, p: Any, threshold: float, champion_auc: float | None, policy: MonitoringPolicy
) -> CheckResult:
    """A labelled day: ROC AUC against the floor and the champion's holdout, and calibration."""
    import numpy as np

    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=float)
    if len(y) < policy.min_rows or len(set(y.tolist())) < 2:
        return CheckResult(
            PERFORMANCE,
            None,
            None,
            policy.auc_floor,
            f"insufficient data: {len(y)} labelled flights, {int(y.sum()) if len(y) else 0} late "
            f"(at least {policy.min_rows} with both classes are needed)",
            {"rows": float(len(y))},
        )
    from include.training.candidates import metrics

    m = {**metrics(y, p, threshold), "rows": float(len(y)), "mean_score": float(p.mean())}
    m["late_share_gap"] = m["late_share"] - m["mean_score"]
    floor = policy.auc_floor
    if champion_auc is not None:
        floor = max(floor, champion_auc - policy.auc_drop)
    reasons = []
    if m["roc_auc"] < floor:
        reasons.append(f"ROC AUC {m['roc_auc']:.3f} < {floor:.3f}")
    if abs(m["late_share_gap"]) > policy.late_share_gap:
        reasons.append(
            f"late share {m['late_share']:.3f} vs mean score {m['mean_score']:.3f} "
            f"(gap {m['late_share_gap']:+.3f}, allowed {policy.late_share_gap})"
        )
    detail = "; ".join(reasons) or (
        f"ROC AUC {m['roc_auc']:.3f} (floor {floor:.3f}), late share {m['late_share']:.3f}, "
        f"mean score {m['mean_score']:.3f}"
    )
    return CheckResult(PERFORMANCE, bool(reasons), m["roc_auc"], floor, detail, m)


def slice_check(slices: dict[str, tuple[float, int]], policy: MonitoringPolicy) -> CheckResult:
    """Slices (carrier=, origin=) with enough rows must stay above the slice floor."""
    big = {k: v for k, v in slices.items() if v[1] >= policy.slice_min_rows}
    if not big:
        return CheckResult(
            SLICE_PERFORMANCE, None, None, policy.slice_floor, f"no slice with {policy.slice_min_rows}+ rows"
        )
    low = {k: v for k, v in big.items() if v[0] < policy.slice_floor}
    worst = min(big.items(), key=lambda kv: kv[1][0])
    detail = (
        "below the floor: " + ", ".join(f"{k} {a:.3f} ({n} rows)" for k, (a, n) in sorted(low.items()))
        if low
        else f"{len(big)} slices >= {policy.slice_floor}; lowest {worst[0]} {worst[1][0]:.3f}"
    )
    return CheckResult(
        SLICE_PERFORMANCE,
        bool(low),
        worst[1][0],
        policy.slice_floor,
        detail,
        {f"roc_auc.{k}": a for k, (a, _) in big.items()},
    )
