"""Monitoring statistics and policy: pure functions (no Airflow, no MLflow, no I/O).

What monitor_model measures each night for the model that scored it, and when it acts:
- feature drift per feature between the version's training reference and the night's served
  features: the Wasserstein distance in reference standard deviations for numbers, the
  Jensen-Shannon distance for categories (both scipy), PSI and the KS statistic reported beside.
  A feature drifts when its distance exceeds `drift_margin` x the largest distance a single day
  of the training window had to the window (`daily_yardstick`): one day is a clustered sample,
  and fixed PSI thresholds flagged every ordinary day of 2013 (benchmarks/drift_calibration.py).
  Drift is decided on distances, never on p-values: at thousands of rows every test rejects.
- prediction drift: the same rule for the score distribution;
- performance on a day only once its labels are complete (`labels_complete`);
- volume and online-store freshness.
A check that holds for `consecutive_nights` nights in a row alerts; drift or decay that persists
requests retraining, unless a request for the same champion is pending (dedupe) or one was made
within `cooldown_days` (cooldown). Every threshold lives in `MonitoringPolicy`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# The checks of a night; each is breached or not (or not evaluated) for the champion.
FEATURE_DRIFT = "feature_drift"
PREDICTION_DRIFT = "prediction_drift"
PERFORMANCE = "performance"
SLICE_PERFORMANCE = "slice_performance"
VOLUME = "volume"
FRESHNESS = "freshness"
CHECKS = (FEATURE_DRIFT, PREDICTION_DRIFT, PERFORMANCE, SLICE_PERFORMANCE, VOLUME, FRESHNESS)
RETRAIN_CHECKS = (FEATURE_DRIFT, PREDICTION_DRIFT, PERFORMANCE)
REFERENCE_EXTRA = ("score", "part", "day")
"""Columns of a reference frame that are not model inputs (see `reference_frame`)."""
"""Persistent breaches of these request retraining; volume and freshness are data problems
(retraining would not fix them): they alert only."""


@dataclass(frozen=True)
class MonitoringPolicy:
    """Every monitoring threshold, in one place. Each can be overridden by an environment variable
    MLOPS_MONITOR_<FIELD> (e.g. MLOPS_MONITOR_CONSECUTIVE_NIGHTS=3); see README for why these."""

    psi_bins: int = 10
    drift_margin: float = 1.5
    """A feature drifted when tonight's distance to the training reference exceeds `drift_margin`
    times the largest distance any single day of the training window had to it: a day is a
    clustered sample (one day's weather, one value per carrier), so a fixed PSI threshold flags
    ordinary days; the reference's own day-to-day variation is the yardstick."""
    min_distance: float = 0.1
    """... and at least this distance (Wasserstein in reference standard deviations for numbers,
    Jensen-Shannon distance for categories): features that barely vary day to day need a floor."""
    min_day_rows: int = 100
    """Reference days with fewer rows are left out of the yardstick (sampling noise)."""
    drift_share: float = 0.2
    """The night's features drifted when at least this share of the monitored features did
    (60 ordinary days of 2013: at most 3 of 26 features, 0.115; early December: 0.27-0.35)."""
    prediction_margin: float = 1.0
    """Prediction drift: as `drift_margin`, for the score distribution (ordinary days reached at
    most 0.77 of the largest reference day's distance; the December storms 1.74)."""
    min_rows: int = 200
    """Fewer rows than this on a night or a day: no decision ('insufficient data'), never 'ok'."""
    excluded_features: tuple[str, ...] = ("dep_weekday", "dep_month")
    """Constant within one day by construction: compared with a month, they always 'drift'."""
    auc_floor: float = 0.50
    """A day's ROC AUC below this is decay: a guard against a broken model. One day's ROC AUC
    swings between 0.49 and 0.74 on ordinary days of 2013 (about 1,000 flights a day)."""
    auc_drop: float = 0.12
    """... or this far below the champion's holdout ROC AUC (pooled over 3 days, it runs higher
    than a single day's)."""
    late_share_gap: float = 0.15
    """|actual late share - mean score| of a day above this: the model is no longer calibrated,
    the earliest signal of December 2013's storms; on ordinary days it held two nights in a row
    once in 30 (two real storm days)."""
    slice_floor: float = 0.52
    slice_min_rows: int = 200
    label_wait_days: int = 2
    """A day's labels are complete when the outcome partitions of that day and the next
    `label_wait_days` days are validated (landing + reporting lag; overnight arrivals)."""
    min_label_coverage: float = 0.95
    """... and at least this share of its scored flights has an outcome."""
    volume_low: float = 0.5
    volume_high: float = 2.0
    """A night's scored flights outside [low, high] x the reference's daily mean: volume alert."""
    freshness_max_hours: float = 36.0
    """The online store materialized more than this before the monitored interval's end: stale."""
    consecutive_nights: int = 2
    """A check alerts (and may request retraining) when breached this many nights in a row."""
    cooldown_days: float = 7.0
    """No second retraining request for the same champion within this many days."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_env(cls, environ: dict[str, str]) -> MonitoringPolicy:
        """Defaults, overridden by MLOPS_MONITOR_<FIELD> variables (numbers; lists comma-separated)."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            text = (environ.get(f"MLOPS_MONITOR_{f.name.upper()}") or "").strip()
            if not text:
                continue
            default = getattr(cls(), f.name)
            if isinstance(default, tuple):
                values[f.name] = tuple(x.strip() for x in text.split(",") if x.strip())
            else:
                values[f.name] = type(default)(text)
        return cls(**values)


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

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


def _clean(values: Any) -> np.ndarray:
    import numpy as np
    import pandas as pd

    arr = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return arr[~np.isnan(arr)]


def _proportions(counts: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    import numpy as np

    p = counts / max(counts.sum(), 1)
    p = np.clip(p, eps, None)
    return p / p.sum()


def psi(reference: Any, current: Any, bins: int = 10) -> float:
    """Population stability index of `current` against `reference` (numbers; NaN dropped).

    Continuous values: bins at the reference's quantiles (equal reference mass). Values with at
    most `bins` distinct reference values (flags, counts): one bin per value. Empty bins count as
    a tiny share (1e-4) so that the log stays finite."""
    import numpy as np

    ref, cur = _clean(reference), _clean(current)
    if not len(ref) or not len(cur):
        return math.nan
    distinct = np.unique(ref)
    if len(distinct) <= bins:
        values = np.union1d(distinct, np.unique(cur))
        r = np.array([(ref == v).sum() for v in values], dtype=float)
        c = np.array([(cur == v).sum() for v in values], dtype=float)
    else:
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1).astype(float)
        c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1).astype(float)
    p, q = _proportions(r), _proportions(c)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: Any, current: Any) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two samples of categories."""
    import numpy as np
    import pandas as pd
    from scipy.spatial.distance import jensenshannon

    ref = pd.Series(reference).dropna().astype(str)
    cur = pd.Series(current).dropna().astype(str)
    if ref.empty or cur.empty:
        return math.nan
    values = sorted(set(ref) | set(cur))
    r = ref.value_counts().reindex(values, fill_value=0).to_numpy(dtype=float)
    c = cur.value_counts().reindex(values, fill_value=0).to_numpy(dtype=float)
    return float(jensenshannon(r / r.sum(), c / c.sum(), base=2)) if np.any(r) and np.any(c) else math.nan


def distance(reference: Any, current: Any, kind: str) -> float:
    """The drift distance that decides: for numbers the Wasserstein distance (scipy) in units of
    the reference's standard deviation, for categories the Jensen-Shannon distance (scipy).

    Unlike PSI and KS, it keeps growing with how far the values moved: one cold June day and a
    December day both fill a single PSI bin (PSI saturates near 8), but lie 1 and 4 standard
    deviations away."""
    import numpy as np
    from scipy.stats import wasserstein_distance

    if kind == "categorical":
        return js_distance(reference, current)
    ref, cur = _clean(reference), _clean(current)
    if not len(ref) or not len(cur):
        return math.nan
    scale = float(np.std(ref)) or 1.0
    return float(wasserstein_distance(ref, cur)) / scale


def kind_of(column: str, categorical: tuple[str, ...] | list[str]) -> str:
    return "categorical" if column in categorical else "numeric"


def daily_yardstick(
    reference: pd.DataFrame,
    days: Any,
    columns: list[str],
    categorical: tuple[str, ...] | list[str],
    policy: MonitoringPolicy,
    whole_rows: int = 10_000,
) -> dict[str, float]:
    """For each column, the largest distance between one day of the reference and the whole of it:
    how far an ordinary day of the training window strays. Computed once per model version.

    The whole side is a fixed sample of `whole_rows` (a 90-day reference compared 90 times in
    full took ~40 s; the sample changes the distances by about 1 %)."""
    import pandas as pd

    days = pd.Series(days, index=reference.index).astype(str)
    whole = reference.sample(n=min(whole_rows, len(reference)), random_state=0)
    groups = [idx for _, idx in days.groupby(days).groups.items() if len(idx) >= policy.min_day_rows]
    out = {}
    for column in columns:
        kind = kind_of(column, categorical)
        values = [distance(whole[column], reference.loc[idx, column], kind) for idx in groups]
        values = [v for v in values if not math.isnan(v)]
        out[column] = max(values, default=0.0)
    return out


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
    ref, cur = _clean(reference), _clean(current)
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

    ref, cur = _clean(reference_scores), _clean(current_scores)
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


def trailing_breaches(history: list[bool | None]) -> int:
    """How many of the latest nights in a row were breached (oldest first; None breaks the run)."""
    count = 0
    for flag in reversed(history):
        if flag is not True:
            break
        count += 1
    return count


@dataclass(frozen=True)
class RetrainRequestRecord:
    created_at: datetime
    model_version: str
    status: str  # pending | consumed


@dataclass(frozen=True)
class PolicyDecision:
    alerts: list[str]
    """Checks breached `consecutive_nights` in a row (with their detail)."""
    retrain: bool
    reasons: list[str]
    """Why retraining is requested, or why not (dedupe, cooldown, nothing persistent)."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def decide(
    streaks: dict[str, int],
    details: dict[str, str],
    champion_version: str,
    last_request: RetrainRequestRecord | None,
    now: datetime,
    policy: MonitoringPolicy,
) -> PolicyDecision:
    """Alerts and the retraining decision from each check's run of breached nights."""
    persistent = [c for c in CHECKS if streaks.get(c, 0) >= policy.consecutive_nights]
    alerts = [f"{c}: breached {streaks[c]} nights in a row; {details.get(c, '')}".strip() for c in persistent]
    drivers = [c for c in persistent if c in RETRAIN_CHECKS]
    if not drivers:
        return PolicyDecision(alerts, False, ["no drift or decay persisted: no retraining"])
    reasons = [f"{c} breached {streaks[c]} nights in a row: {details.get(c, '')}" for c in drivers]
    if last_request is not None and last_request.model_version == champion_version:
        if last_request.status == "pending":
            return PolicyDecision(
                alerts,
                False,
                [
                    f"dedupe: a retraining request for version {champion_version} from "
                    f"{last_request.created_at:%Y-%m-%d %H:%M} UTC has not been taken up by train_model yet"
                ],
            )
        until = last_request.created_at + timedelta(days=policy.cooldown_days)
        if now < until:
            return PolicyDecision(
                alerts,
                False,
                [
                    f"cooldown: retraining was requested for version {champion_version} on "
                    f"{last_request.created_at:%Y-%m-%d %H:%M} UTC; the next request is allowed from "
                    f"{until:%Y-%m-%d %H:%M} UTC"
                ],
            )
    return PolicyDecision(alerts, True, reasons)


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
