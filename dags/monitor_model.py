# TaskFlow wiring passes a task's output (an XComArg) where the next task declares the value it
# receives; mypy cannot see through the decorator, so only that check is off in this file.
# mypy: disable-error-code="arg-type"
"""
### monitor_model: drift, label-delayed performance, freshness → report → alert / retraining request

**When it runs.** Whenever `flight_predictions` is emitted (score_flights scored a day), i.e.
nightly after scoring; by hand with Params `interval_start` and `days` (scored intervals).

**What it does** (for the model version that scored the night; thresholds: `include/monitoring/policy.py`
MonitoringPolicy, overridable with `MLOPS_MONITOR_<SETTING>`):
1. `check_drift`: each feature of the night's served flights (the prediction log) against the
   version's training reference (Wasserstein distance in reference std for numbers,
   Jensen-Shannon for categories; PSI and KS reported beside). A feature drifts when it is
   further from the reference than 1.5 x the farthest single day of the training window was;
   the night drifts when 20 % of the features do. The same for the scores, and volume.
2. `evaluate_performance`: every scored day of the last two weeks whose labels are complete
   (outcomes validated for the day and the next 2 days, 95 % of its flights labelled) and not
   judged yet: ROC AUC, calibration (late share vs. mean score), slices. A day waiting for labels
   is recorded as *not evaluated* and judged on a later night.
   The same labelled days are judged for attribution drift (the model's reasons: each feature's
   share of the score's sensitivity, against the training holdout's) and fairness (the gaps in
   late-flag rate, recall and calibration between carriers, origins and hour bands, against the
   holdout's gaps).
3. `check_freshness`: the online store must hold features up to the end of the night's interval;
   `record_service_health`: the online service's /metrics since the last night (errors,
   /predict p99; an unreachable service is a breach), the growth of the lake, the prediction
   log and the monitoring database, and each DAG's run time against its week (all shown as
   trends on Model health).
4. `build_report`: an HTML report (path in the log), every number in the monitoring tables
   (`monitoring_checks`, `monitoring_metrics`) and on the version's MLflow run in experiment
   `flight_delay-monitoring` (one step per day), also when nothing fires.
5. `apply_policy`: a check breached `consecutive_nights` nights in a row → a WARNING block in the
   log (report path, runbook step) and a notification when `mlops_alerts_smtp` /
   `mlops_alerts_slack` exists.
6. `request_retraining`: persistent drift or decay emits `retrain_request` (reasons in the extra;
   train_model runs on it), unless one is pending for the same version (dedupe) or one was made
   within `cooldown_days` (cooldown). Skipped otherwise, with the reason.

**When a task is red** (runbook: README.md, *On call*).
- `FileNotFoundError ... has no monitoring reference`: the champion was trained before monitoring
  existed; run train_model.
- `LookupError: nothing to monitor`: no predictions for the interval and no champion; run
  score_flights (or train_model first).
- An alert is not a failure: the run stays green; read the WARNING block and the report.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from airflow.sdk import Param, dag, task

from include.airflow_glue import assets
from include.airflow_glue.defaults import task_defaults
from include.monitoring.contracts import (
    AlertDecision,
    CheckRecord,
    DayPerformance,
    NightSummary,
    ReportResult,
    RetrainRequestExtra,
)


@dag(
    schedule=assets.FLIGHT_PREDICTIONS,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args=task_defaults(retries=1),
    tags=["mlops", "monitoring"],
    doc_md=__doc__,
    params={
        "interval_start": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Manual run: first scored interval (UTC day) to monitor.",
        ),
        "days": Param(
            1, type="integer", minimum=1, maximum=31, description="Manual run: how many intervals."
        ),
    },
)
def monitor_model() -> None:
    @task(inlets=[assets.FLIGHT_PREDICTIONS, assets.TRAINING_SET], outlets=[assets.MONITORING_REPORT])
    def check_drift(**context) -> list[NightSummary]:
        """Feature drift, prediction drift and volume of each scored interval (oldest first)."""
        from include.core.settings import get_settings
        from include.monitoring.policy import monitoring_policy
        from include.monitoring.steps import check_drift

        params = context["params"]
        return check_drift(
            get_settings(),
            assets.triggering_extras(context),
            params.get("interval_start"),
            int(params.get("days") or 1),
            context["run_id"],
            monitoring_policy(),
        )

    @task(
        inlets=[assets.FLIGHT_PREDICTIONS, assets.VALIDATED["flight_outcomes"]],
        outlets=[assets.MONITORING_REPORT],
    )
    def evaluate_performance(nights: list[NightSummary], **context) -> list[DayPerformance]:
        """Every scored day whose labels are now complete; days still waiting are recorded as such."""
        from include.core.settings import get_settings
        from include.monitoring.policy import monitoring_policy
        from include.monitoring.steps import evaluate_after

        return evaluate_after(get_settings(), nights, context["run_id"], monitoring_policy())

    @task(inlets=[assets.ONLINE_STORE], outlets=[assets.MONITORING_REPORT])
    def check_freshness(nights: list[NightSummary], **context) -> CheckRecord:
        """The online store holds features up to the end of the latest monitored interval."""
        from include.airflow_glue.connections import feature_store
        from include.core.settings import get_settings
        from include.monitoring.policy import monitoring_policy
        from include.monitoring.steps import check_freshness

        settings = get_settings()
        return check_freshness(
            settings, feature_store(settings), nights[-1], context["run_id"], monitoring_policy()
        )

    @task(inlets=[assets.FLIGHT_PREDICTIONS], outlets=[assets.MONITORING_REPORT])
    def record_service_health(nights: list[NightSummary], **context) -> list[CheckRecord]:
        """The online service's /metrics since the last night, storage growth, DAG run times."""
        from include.core.settings import get_settings
        from include.monitoring.health_steps import record_service_health
        from include.monitoring.policy import monitoring_policy

        night = nights[-1]
        return record_service_health(
            get_settings(),
            night["model_version"],
            date.fromisoformat(night["day"]),
            context["run_id"],
            monitoring_policy(),
        )

    @task(outlets=[assets.MONITORING_REPORT])
    def build_report(
        nights: list[NightSummary],
        performance: list[DayPerformance],
        freshness: CheckRecord,
        health: list[CheckRecord],
    ) -> ReportResult:
        """HTML report of the latest night; the nights' numbers as MLflow metric histories."""
        from include.core.settings import get_settings
        from include.monitoring.policy import monitoring_policy
        from include.monitoring.steps import build_report

        return build_report(get_settings(), nights, performance, freshness, monitoring_policy(), health)

    @task
    def apply_policy(report: ReportResult, **context) -> AlertDecision:
        """Alerts for checks breached several nights in a row; whether to request retraining."""
        import logging

        from include.airflow_glue import alerting
        from include.core.settings import get_settings
        from include.monitoring.policy import monitoring_policy
        from include.monitoring.steps import alert_notice, apply_policy

        settings = get_settings()
        decision = apply_policy(settings, report, monitoring_policy())
        notice = alert_notice(settings, decision)
        if notice is not None:
            sent = alerting.send(*notice, context)
            logging.getLogger("airflow.task").info(
                "alert sent through: %s", ", ".join(sent) or "no notifier connection configured"
            )
        return decision

    @task(inlets=[assets.MONITORING_REPORT], outlets=[assets.RETRAIN_REQUEST])
    def request_retraining(decision: AlertDecision, **context) -> RetrainRequestExtra:
        """Emit `retrain_request` (train_model runs on it) when the policy asks for retraining."""
        from airflow.sdk.exceptions import AirflowSkipException

        from include.core.settings import get_settings
        from include.monitoring.steps import request_retraining

        if not decision["retrain"]:
            raise AirflowSkipException("no retraining: " + "; ".join(decision["reasons"]))
        extra = request_retraining(get_settings(), decision, context["run_id"])
        assets.emit(context, assets.RETRAIN_REQUEST, extra)
        return extra

    nights = check_drift()
    performance = evaluate_performance(nights)
    freshness = check_freshness(nights)
    report = build_report(nights, performance, freshness, record_service_health(nights))
    request_retraining(apply_policy(report))


monitor_model()
