"""The monitoring policy: every threshold, and when monitoring acts. Pure (no I/O).

A check that holds for `consecutive_nights` nights in a row alerts; drift or decay that persists
requests retraining, unless a request for the same champion is pending (dedupe) or one was made
within `cooldown_days` (cooldown). Every threshold lives in `MonitoringPolicy`; `monitoring_policy`
reads it with its MLOPS_MONITOR_* overrides.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from include.monitoring.contracts import PolicyOutcome
from include.training.fairness import MIN_LATE, MIN_ROWS

# The checks of a night; each is breached or not (or not evaluated) for the champion.
FEATURE_DRIFT = "feature_drift"
PREDICTION_DRIFT = "prediction_drift"
PERFORMANCE = "performance"
SLICE_PERFORMANCE = "slice_performance"
VOLUME = "volume"
FRESHNESS = "freshness"
ATTRIBUTION = "attribution_drift"
FAIRNESS = "fairness"
SERVICE_HEALTH = "service_health"
STORAGE = "storage"
TASK_DURATIONS = "task_durations"
CHECKS = (
    FEATURE_DRIFT,
    PREDICTION_DRIFT,
    PERFORMANCE,
    SLICE_PERFORMANCE,
    ATTRIBUTION,
    FAIRNESS,
    VOLUME,
    FRESHNESS,
    SERVICE_HEALTH,
    STORAGE,
    TASK_DURATIONS,
)
LABELLED_CHECKS = (PERFORMANCE, SLICE_PERFORMANCE, ATTRIBUTION, FAIRNESS)
"""Judged on a day once its labels are complete (a day still waiting has no verdict yet)."""
RETRAIN_CHECKS = (FEATURE_DRIFT, PREDICTION_DRIFT, PERFORMANCE)
"""Persistent breaches of these request retraining; volume and freshness are data problems
(retraining would not fix them): they alert only, like the system's own health (service, storage,
run times). So do attribution drift and fairness: a model
whose reasons moved or that serves one group worse needs a person to look before a retrain on
the same data is trusted to fix it."""


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
    attribution_margin: float = 1.0
    """Attribution drift: a labelled night's attribution shares further from the training window's
    mean (total-variation distance) than this x the largest distance of one window day
    (benchmarks/attribution_calibration.py: ordinary days reached at most 0.96 of it)."""
    attribution_min_shift: float = 0.1
    """... and at least this shift."""
    attribution_top_k: int = 5
    """How many top features the report names before and after."""
    fairness_min_rows: int = MIN_ROWS
    """A slice (a carrier, an origin, an hour band) enters a night's gaps with this many flights."""
    fairness_min_late: int = MIN_LATE
    """... and its recall with this many late flights."""
    fairness_flag_rate_widening: float = 0.4
    fairness_recall_widening: float = 0.4
    fairness_calibration_widening: float = 0.5
    """A night's gap between the best and worst slice wider than the reference's by more than
    this, per metric (late-flag rate, recall, calibration): fairness breach (training/fairness.py).
    One day's slices are small: on 60 ordinary days of 2013 the widest widening reached 0.77
    (flag rate), 0.93 (recall), 0.48 (calibration); these keep them at 3 breaches, 0 alerts."""
    service_min_requests: int = 100
    """The service's night is judged with this many requests since the last scrape."""
    service_error_share: float = 0.01
    service_p99_ms: float = 50.0
    """More than 1 % of answers 5xx, or /predict p99 above 50 ms (the histogram's bucket bound;
    measured 3-5 ms at 100 requests/s on a 2-core machine): service-health breach."""
    storage_growth_factor: float = 5.0
    storage_min_growth_mb: float = 50.0
    """Tonight's growth of the lake + prediction log + monitoring database above 5 x the median
    nightly growth (and above 50 MB): storage breach."""
    duration_factor: float = 3.0
    duration_min_s: float = 120.0
    duration_min_runs: int = 3
    """A DAG whose longest run of the last day took 3 x the median of its runs of the week before
    (and over 2 min; with 3 runs to compare with): run-time breach."""
    consecutive_nights: int = 2
    """A check alerts (and may request retraining) when breached this many nights in a row."""
    cooldown_days: float = 7.0
    """No second retraining request for the same champion within this many days."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> MonitoringPolicy:
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


def monitoring_policy() -> MonitoringPolicy:
    """The monitoring thresholds, with the MLOPS_MONITOR_* overrides of the environment."""
    return MonitoringPolicy.from_env(dict(os.environ))


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


def alert_block(decision: PolicyOutcome, report: str | None) -> str:
    """The WARNING block an on-call engineer finds in the log (and in the notification)."""
    lines = [
        "=" * 78,
        f"MONITORING ALERT: {len(decision['alerts'])} check(s) breached "
        f"{'for several nights' if decision['alerts'] else ''} "
        f"for model version {decision['model_version']} (up to {decision['day']})",
        *[f"  - {a}" for a in decision["alerts"]],
        f"Retraining: {'REQUESTED' if decision['retrain'] else 'not requested'}; "
        + "; ".join(decision["reasons"]),
        f"Report: {report or '(none)'}",
        "Runbook: README.md, On call > 'Monitoring alert' (look at the report, then decide: "
        "data problem -> fix the source / rerun ingest_flights; real change -> let train_model run, "
        "or trigger it with a reason).",
        "=" * 78,
    ]
    return "\n".join(lines)
