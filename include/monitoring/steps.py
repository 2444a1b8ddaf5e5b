"""The steps of monitor_model, one function per task. No Airflow here: XCom-sized dicts in and out.

Each step joins the pure checks (statistics.py) and policy (policy.py) to what monitoring reads
(reads.py: the prediction log, the lake's outcomes, the champion's training reference), stores
(tables.py: one row per check per day, every number as a time series, retraining requests) and
publishes (records.py: an HTML report per night, metrics on the version's MLflow run).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd

from include.core.settings import Settings
from include.lake.partitions import interval_key, parse_interval_key, write_text_atomic
from include.monitoring import model_checks
from include.monitoring import statistics as monitoring
from include.monitoring.contracts import (
    AlertDecision,
    CheckRecord,
    DayPerformance,
    NightSummary,
    ReportResult,
    RetrainRequestExtra,
)
from include.monitoring.policy import (
    CHECKS,
    LABELLED_CHECKS,
    PERFORMANCE,
    MonitoringPolicy,
    alert_block,
    decide,
    trailing_breaches,
)
from include.monitoring.reads import (
    labelled_frame,
    load_reference,
    night_day,
    outcome_days,
    scored_days,
    scored_intervals,
    served_frame,
    yardstick,
)
from include.monitoring.records import (
    log_to_mlflow,
    mlflow_run_for,
    mlflow_run_url,
    report_name,
    report_path,
)
from include.monitoring.statistics import CheckResult, LabelStatus
from include.monitoring.tables import checks_history, last_request, metrics_history, record, record_request
from include.registry import tracking

log = logging.getLogger("airflow.task")


def _served_version(served: pd.DataFrame) -> str:
    """The model version that scored most of the served flights."""
    return str(served["model_version"].mode().iloc[0])


def _log_results(about: object, version: str, results: list[CheckResult]) -> None:
    for r in results:
        log.info("%s %s v%s %s: %s", about, r.check, version, r.status, r.detail)


# --- a night: drift and volume ---------------------------------------------------------------


def check_night(
    settings: Settings, start: datetime, end: datetime, run_id: str | None, policy: MonitoringPolicy
) -> NightSummary:
    """Feature drift, prediction drift and volume of one scored interval, stored and returned."""
    from include.training.candidates import CATEGORICAL

    key, day = interval_key(start, end), night_day(start, end)
    served = served_frame(settings, key)
    if served.empty:
        champion = tracking.champion(settings)
        if champion is None:
            raise LookupError(
                f"nothing to monitor for {key}: no predictions were logged and no champion exists"
            )
        version = champion.version
    else:
        version = _served_version(served)
    reference, meta = load_reference(settings, version)
    ruler = yardstick(settings, version, reference, policy)
    daily_rows = float(meta.get("daily_rows", 0.0))
    results, per_feature = monitoring.night_checks(reference, daily_rows, served, ruler, CATEGORICAL, policy)
    record(settings, version, day, results, run_id)
    _log_results(key, version, results)
    return NightSummary(
        interval=key,
        day=day.isoformat(),
        model_version=version,
        rows=len(served),
        checks=[r.as_dict() for r in results],
        features=[f.as_dict() for f in per_feature],
    )


def check_drift(
    settings: Settings,
    event_extras: list[dict[str, Any]],
    interval_start: str | None,
    days: int,
    run_id: str | None,
    policy: MonitoringPolicy,
) -> list[NightSummary]:
    """`check_night` for each scored interval a run monitors (oldest first): those the triggering
    flight_predictions events list, or, by hand, `days` intervals from `interval_start`."""
    intervals = scored_intervals(event_extras, interval_start, days)
    if not intervals:
        raise ValueError(
            "nothing to monitor: no triggering flight_predictions event and no Params interval_start"
        )
    return [check_night(settings, start, end, run_id, policy) for start, end in intervals]


# --- labelled days: performance --------------------------------------------------------------


def evaluated_days(settings: Settings) -> set[tuple[str, date]]:
    """(version, day) pairs whose performance was already judged (labels were complete)."""
    h = checks_history(settings)
    done = h[(h["check"] == PERFORMANCE) & h["breached"].notna()]
    return {(str(v), d) for v, d in zip(done["model_version"], done["day"], strict=True)}


def _judge_day(
    settings: Settings,
    served: pd.DataFrame,
    version: str,
    day: date,
    outcomes: set[date],
    policy: MonitoringPolicy,
) -> tuple[LabelStatus, list[CheckResult]]:
    """A scored day's performance and slices once its labels are complete; else 'not evaluated'."""
    from include.training.candidates import slice_auc

    labelled = labelled_frame(settings, served, day, policy)
    status = monitoring.labels_complete(day, outcomes, len(served), len(labelled), policy)
    if not status.complete:
        waiting = CheckResult(
            PERFORMANCE, None, None, policy.auc_floor, f"labels incomplete: {status.detail}"
        )
        return status, [waiting]
    _, meta = load_reference(settings, version)
    perf = monitoring.performance_check(
        labelled["late"],
        labelled["score"],
        settings.decision_threshold,
        meta.get("holdout_roc_auc"),
        policy,
    )
    slices = monitoring.slice_check(slice_auc(labelled, labelled["score"].to_numpy()), policy)
    return status, [perf, slices, *model_checks.day_checks(settings, version, meta, labelled, policy)]


def evaluate_performance(
    settings: Settings, until: date, run_id: str | None, policy: MonitoringPolicy, lookback_days: int = 14
) -> list[DayPerformance]:
    """Judge every scored day up to `until` whose labels are now complete and that was not judged
    yet; days still waiting for labels are recorded as 'not evaluated' with what they wait for."""
    have = outcome_days(settings.lake_root)
    done = evaluated_days(settings)
    out: list[DayPerformance] = []
    for day, key in scored_days(settings, until, lookback_days).items():
        served = served_frame(settings, key)
        if served.empty:
            continue
        version = _served_version(served)
        if (version, day) in done:
            continue
        status, results = _judge_day(settings, served, version, day, have, policy)
        record(settings, version, day, results, run_id)
        _log_results(day, version, results)
        out.append(
            DayPerformance(
                day=day.isoformat(),
                model_version=version,
                labels=status.detail,
                checks=[r.as_dict() for r in results],
            )
        )
    return out


def evaluate_after(
    settings: Settings, nights: list[NightSummary], run_id: str | None, policy: MonitoringPolicy
) -> list[DayPerformance]:
    """`evaluate_performance` up to the latest of the monitored nights."""
    until = max(date.fromisoformat(n["day"]) for n in nights)
    return evaluate_performance(settings, until, run_id, policy)


# --- freshness -------------------------------------------------------------------------------


def check_freshness(
    settings: Settings, store: Any, night: NightSummary, run_id: str | None, policy: MonitoringPolicy
) -> CheckRecord:
    """The online store must hold features up to the end of the monitored interval."""
    from include.features.store import materialized_until

    _, end = parse_interval_key(night["interval"])
    result = monitoring.freshness_check(materialized_until(store), end, policy)
    record(settings, night["model_version"], date.fromisoformat(night["day"]), [result], run_id)
    log.info("%s freshness %s: %s", night["interval"], result.status, result.detail)
    return result.as_dict()


# --- the report ------------------------------------------------------------------------------


def streaks(settings: Settings, version: str, until: date) -> tuple[dict[str, int], dict[str, str]]:
    """Each check's run of breached days up to `until`, and its latest detail.

    Performance days that are still waiting for labels are left out (they have no verdict yet);
    for the nightly checks, a night without a verdict breaks the run."""
    h = checks_history(settings, version)
    h = h[h["day"] <= until]
    counts: dict[str, int] = {}
    details: dict[str, str] = {}
    for check in CHECKS:
        rows = h[h["check"] == check]
        if check in LABELLED_CHECKS:
            rows = rows[rows["breached"].notna()]
        flags = [None if pd.isna(b) else bool(b) for b in rows["breached"]]
        counts[check] = trailing_breaches(flags)
        if len(rows):
            details[check] = str(rows["detail"].iloc[-1])
    return counts, details


def build_report(
    settings: Settings,
    nights: list[NightSummary],
    performance: list[DayPerformance],
    freshness: CheckRecord | None,
    policy: MonitoringPolicy,
    health: list[CheckRecord] | None = None,
) -> ReportResult:
    """The HTML report of the latest night, and every number of the run's days on MLflow."""
    from include.monitoring import report as monitoring_report

    night = nights[-1]
    version, day = night["model_version"], date.fromisoformat(night["day"])
    reference, _ = load_reference(settings, version)
    served = served_frame(settings, night["interval"])
    counts, _ = streaks(settings, version, day)
    mlflow_run = mlflow_run_for(settings, version)
    links = {"MLflow monitoring run": mlflow_run_url(settings, mlflow_run) or f"run {mlflow_run}"}
    page = monitoring_report.render(
        model_name=settings.model_name,
        night=dict(night),
        performance=[dict(p) for p in performance if p["model_version"] == version],
        freshness=dict(freshness) if freshness is not None else None,
        streaks=counts,
        policy=policy.as_dict(),
        reference=reference,
        served=served,
        metrics=metrics_history(settings, version),
        links={k: v for k, v in links.items() if v.startswith("http")},
        health=[dict(h) for h in health or []],
    )
    path = report_path(settings, version, day)
    write_text_atomic(path, page)
    days = {date.fromisoformat(n["day"]) for n in nights if n["model_version"] == version}
    days |= {date.fromisoformat(p["day"]) for p in performance if p["model_version"] == version}
    log_to_mlflow(settings, version, days, (report_name(settings, version, day), page))
    log.info("monitoring report: %s (MLflow run %s)", path, mlflow_run)
    return ReportResult(report=path, mlflow_run_id=mlflow_run, model_version=version, day=day.isoformat())


# --- the policy: alerts and retraining requests ----------------------------------------------


def apply_policy(
    settings: Settings, report: ReportResult, policy: MonitoringPolicy, now: datetime | None = None
) -> AlertDecision:
    """Alerts for the checks breached several nights in a row up to the report's day, and whether
    to request retraining; the WARNING block goes to the log."""
    version, until = report["model_version"], date.fromisoformat(report["day"])
    counts, details = streaks(settings, version, until)
    decision = decide(counts, details, version, last_request(settings), now or datetime.now(UTC), policy)
    outcome = AlertDecision(
        alerts=decision.alerts,
        retrain=decision.retrain,
        reasons=decision.reasons,
        streaks=counts,
        model_version=version,
        day=until.isoformat(),
        report=report["report"],
    )
    if outcome["alerts"]:
        log.warning("\n%s", alert_block(outcome, report["report"]))
    else:
        log.info("no alert: %s; nights in a row breached: %s", outcome["reasons"][0], outcome["streaks"])
    return outcome


def alert_notice(settings: Settings, decision: AlertDecision) -> tuple[str, str] | None:
    """The notification's subject and text when the policy alerts (None otherwise)."""
    if not decision["alerts"]:
        return None
    subject = f"[airflow-mlops] monitoring alert: {settings.model_name}"
    return subject, alert_block(decision, decision["report"])


def request_retraining(settings: Settings, decision: AlertDecision, run_id: str) -> RetrainRequestExtra:
    """Store the retraining request the policy decided on; returns the `retrain_request` extra."""
    request_id = record_request(
        settings,
        decision["model_version"],
        date.fromisoformat(decision["day"]),
        decision["reasons"],
        decision["report"],
        run_id,
    )
    return RetrainRequestExtra(
        request_id=request_id,
        model_version=decision["model_version"],
        day=decision["day"],
        reasons=decision["reasons"],
        report=decision["report"],
        requested_by=run_id,
    )
