"""What monitor_model's tasks pass each other (XCom: plain JSON types), and train_model reads.

Types only: every dict a monitoring step returns has its shape written down here.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict


class CheckRecord(TypedDict):
    """A check's result as JSON (`CheckResult.as_dict`)."""

    check: str
    breached: bool | None
    value: float | None
    threshold: float | None
    detail: str
    metrics: dict[str, float]
    status: str  # BREACHED | ok | not evaluated


class FeatureDriftRecord(TypedDict):
    """One feature's drift as JSON (`FeatureDrift.as_dict`)."""

    feature: str
    kind: str
    statistic: str
    value: float
    threshold: float
    drifted: bool
    reference_day_max: float
    psi: float | None
    ks: float | None
    reference_mean: float | None
    current_mean: float | None
    current_missing_share: float


class NightSummary(TypedDict):
    """One scored interval: feature drift, prediction drift and volume (check_drift)."""

    interval: str  # the interval key
    day: str  # the departure day, ISO
    model_version: str
    rows: int
    checks: list[CheckRecord]
    features: list[FeatureDriftRecord]


class DayPerformance(TypedDict):
    """A scored day judged on its labels, or recorded as waiting for them (evaluate_performance)."""

    day: str
    model_version: str
    labels: str
    checks: list[CheckRecord]


class ReportResult(TypedDict):
    """The night's HTML report and the version's MLflow monitoring run (build_report)."""

    report: str
    mlflow_run_id: str
    model_version: str
    day: str


class PolicyOutcome(TypedDict):
    """Alerts and the retraining decision for a version up to a day."""

    alerts: list[str]
    retrain: bool
    reasons: list[str]
    streaks: dict[str, int]
    model_version: str
    day: str


class AlertDecision(PolicyOutcome):
    """The policy's outcome with the report it refers to (apply_policy)."""

    report: str


class RetrainRequest(TypedDict):
    """A stored retraining request, as train_model takes it up."""

    id: int
    model_version: str
    day: str
    reasons: list[str]
    report: str | None
    requested_by: str | None


class RetrainRequestExtra(TypedDict):
    """The extra of a `retrain_request` asset event (request_retraining)."""

    request_id: int
    model_version: str
    day: str
    reasons: list[str]
    report: str
    requested_by: str


class PromotionDecision(TypedDict):
    """The promotion check's decision on a shadow (include/monitoring/shadow.py `decide`)."""

    decision: Literal["promote", "wait", "retire"]
    reasons: list[str]
    labelled_nights: int
    flights: int
    champion: dict[str, float]  # roc_auc, calibration_gap, brier
    shadow: dict[str, float]
    slices: dict[str, dict[str, float]]  # carrier -> {champion, shadow, rows}
    thresholds: dict[str, Any]


class ShadowCheck(TypedDict):
    """What promote_shadow's check found (XCom)."""

    shadow_version: str | None
    champion_version: str | None
    nights: list[str]  # the labelled nights compared, oldest first
    decision: PromotionDecision | None
