# TaskFlow wiring passes a task's output (an XComArg) where the next task declares the value it
# receives; mypy cannot see through the decorator, so only that check is off in this file.
# mypy: disable-error-code="arg-type"
"""
### train_model: training set → candidates → best → gate → (approval) → deploy or reject

**When it runs.** Mondays 03:00 UTC; whenever monitoring emits `retrain_request` (its reasons are
recorded on the MLflow run); by hand with the Params form (training window, holdout days, search
grid, `require_approval`, reason).

**What it does.**
1. `prepare_training_data`: the point-in-time training set from Feast (FeatureService
   `flight_delay_v1`) for `[window_end - window_days, window_end)`; holdout = the latest
   `holdout_days` days (time-based split). Opens the MLflow parent run (lineage: partitions and
   hashes, windows, git commit, dag/run id).
2. `plan_candidates` → `train_candidate` (one mapped task per grid entry): fit, measure on the
   holdout (ROC AUC, PR AUC, log loss, Brier, precision/recall at the threshold, slices), log a
   child MLflow run with the model (signature, input example, pinned requirements), permutation
   importance and ROC/calibration plots.
3. `register_best`: best holdout ROC AUC → registered version, alias `challenger`.
4. `evaluate_gate`: challenger vs. the naive baseline and the `champion` on the same holdout, plus
   slices, signature, size and latency (thresholds: `include/training/gate.py` GateThresholds). The
   decision table is in this task's log and on the MLflow run (`gate_decision.json`, tags).
5. `choose_path`: `reject_candidate`, or `approve_deployment` when `require_approval` (a person
   answers in Browse → Required Actions, which shows the gate's table and the model card link:
   **Deploy** or **Reject**; nobody answering within `MLOPS_APPROVAL_TIMEOUT_HOURS` (48) is a
   Reject, and on-call is reminded after `MLOPS_APPROVAL_REMINDER_HOURS` (24)), or straight to
   `deploy_champion`: smoke test from the registry, move `champion`, the online service reloads
   and must serve the new version; otherwise `champion` is put back and the task fails. A retry
   finds the version already champion and only verifies. Runs in the one-slot pool
   `champion_alias`, shared with rollback_model. A Reject runs `reject_deployment`: the version
   is tagged with who rejected it (`approval.*`), the champion stays.

**When a task is red** (runbook: README.md, *On call*).
- Skipped `prepare_training_data` ("not training: only N day(s) with validated outcomes and
  features"): too little data in the window (a new install: the weekly run fires when the
  scheduler first starts). Ingest more days or choose another window; nothing to fix otherwise.
- `TrainingSetError`: the window has no features or labels; run ingest_flights /
  materialize_features for it, or choose another window.
- `CandidateSpecError`: a search-grid entry is wrong; fix the Params and trigger again.
- `DeploymentError`: the smoke test or the serving check failed. The log says what `champion` is
  now (unchanged or restored, or that the restore failed too). Fix the service (make run starts
  it), then clear `deploy_champion`.
- `RegistryUnavailableError`: MLflow did not answer (not "no champion"); the task retries.
- `UntrustedModelError`: the loader refused a version (not skops, untrusted types, no passed gate
  or smoke test); nothing was deserialized, the champion is unchanged.
- A rejected candidate is not a failure: the run is green, `reject_candidate` logs why, and the
  champion is unchanged. To deploy it anyway, fix the cause; the gate is not bypassable.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from include.airflow_glue import approval, assets
from include.airflow_glue.connections import feature_store
from include.airflow_glue.defaults import task_defaults
from include.airflow_glue.run_context import deployment_record, run_tags
from include.core.settings import CHAMPION_POOL, get_settings
from include.training.candidates import DEFAULT_GRID
from include.training.contracts import (
    CandidateResult,
    GateReport,
    PreparedRun,
    RegisteredCandidate,
    Rejection,
)

_settings = get_settings()  # environment only (cheap): the decision's deadlines
APPROVAL_TIMEOUT = timedelta(hours=_settings.approval_timeout_hours)
APPROVAL_REMINDER = timedelta(hours=_settings.approval_reminder_hours)


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC"), assets=assets.RETRAIN_REQUEST
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    # Training takes minutes; a run that waits for a person may take until the decision's timeout.
    dagrun_timeout=APPROVAL_TIMEOUT + timedelta(hours=3),
    deadline=approval.reminder(APPROVAL_REMINDER, APPROVAL_TIMEOUT),
    default_args=task_defaults(retries=1, retry_delay=timedelta(minutes=2)),
    tags=["mlops", "training", "mlflow"],
    doc_md=__doc__,
    params={
        "window_end": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Last day (exclusive, UTC) of the training window. Empty: the day before the "
            "latest validated outcomes (labels of the latest day are still arriving).",
        ),
        "window_days": Param(
            28, type="integer", minimum=3, maximum=365, description="Training window length."
        ),
        "holdout_days": Param(
            3, type="integer", minimum=1, maximum=30, description="Latest days of the window held out."
        ),
        "grid": Param(
            DEFAULT_GRID,
            type="array",
            items={"type": "object"},
            minItems=1,
            maxItems=12,
            description='Candidates: [{"model": "logistic_regression", "C": 1.0}, '
            '{"model": "hist_gradient_boosting", "max_depth": 6, ...}]',
        ),
        "promotion": Param(
            _settings.promotion,
            enum=["deploy", "shadow"],
            description="With a champion serving, a challenger that passes the gate is deployed now "
            "(deploy) or scored beside it each night until promote_shadow decides (shadow).",
        ),
        "require_approval": Param(
            False,
            type="boolean",
            description="Wait for a person to choose Deploy or Reject (Browse > Required Actions) "
            "before deploying; no answer in time is a Reject.",
        ),
        "reason": Param("", type="string", description="Why this run (kept on the MLflow run)."),
        "shuffle_labels": Param(
            False,
            type="boolean",
            description="Audit the gate: train on shuffled labels. The gate must reject the result.",
        ),
    },
)
def train_model() -> None:
    @task(
        inlets=[assets.FEATURE_DEFINITIONS, assets.FEATURE_PARTITIONS, assets.VALIDATED["flight_outcomes"]],
        outlets=[assets.TRAINING_SET],
    )
    def prepare_training_data(**context) -> PreparedRun:
        """Training set from Feast, split by time; opens the MLflow parent run.

        Too few days with labels and features (a new install) skips the run instead of failing it."""
        from airflow.sdk.exceptions import AirflowSkipException

        from include.core.settings import get_settings
        from include.monitoring.tables import pending_requests
        from include.training.data import NotEnoughDataError, window_end
        from include.training.steps import open_parent_run, prepare_training_data

        settings, params, run_id = get_settings(), context["params"], context["run_id"]
        # Retraining requests of monitor_model are answered by the next run, whatever triggered it;
        # close_retrain_requests marks them once the run has decided.
        answered = pending_requests(settings)
        try:
            end = window_end(params.get("window_end"), settings.lake_root)
            days, holdout_days = int(params["window_days"]), int(params["holdout_days"])
            prepared = prepare_training_data(settings, feature_store(), end, days, holdout_days, run_id)
        except NotEnoughDataError as exc:
            raise AirflowSkipException(f"not training: {exc}") from exc
        return open_parent_run(settings, prepared, run_tags(context), dict(params), answered)

    @task
    def plan_candidates(**context) -> list[dict]:
        """The search grid from the Params, each entry checked before any training starts."""
        from include.training.candidates import checked_grid

        return checked_grid(context["params"]["grid"])  # CandidateSpecError names a bad entry

    @task(max_active_tis_per_dagrun=2, inlets=[assets.TRAINING_SET], outlets=[assets.CANDIDATE_RUNS])
    def train_candidate(spec: dict, prepared: PreparedRun, **context) -> CandidateResult:
        """Fit one candidate, measure it on the holdout, log a child MLflow run."""
        from include.core.settings import get_settings
        from include.training.steps import train_candidate

        return train_candidate(
            get_settings(),
            prepared,
            spec,
            prepared["parent_run_id"],
            run_tags(context),
            shuffle_labels=bool(context["params"]["shuffle_labels"]),
        )

    @task(inlets=[assets.CANDIDATE_RUNS], outlets=[assets.MODEL_VERSIONS])
    def register_best(candidates: list[CandidateResult], prepared: PreparedRun) -> RegisteredCandidate:
        """Best holdout ROC AUC → registered version with alias `challenger`."""
        from include.core.settings import get_settings
        from include.training.steps import register_best

        return register_best(get_settings(), list(candidates), prepared["parent_run_id"])

    @task(inlets=[assets.MODEL_VERSIONS, assets.TRAINING_SET, assets.CHAMPION_MODEL])
    def evaluate_gate(prepared: PreparedRun, registered: RegisteredCandidate) -> GateReport:
        """Challenger vs. baseline and champion on the same holdout: the decision and its reasons."""
        from include.core.settings import get_settings
        from include.training.gate_steps import evaluate_gate

        return evaluate_gate(get_settings(), feature_store(), prepared, registered)

    @task.branch
    def choose_path(decision: GateReport, **context) -> str:
        if not decision["passed"]:
            return "reject_candidate"
        if context["params"]["require_approval"]:
            return "approve_deployment"
        # A first model has no champion to be compared with in shadow: it deploys.
        shadow = context["params"]["promotion"] == "shadow" and decision["champion_version"] is not None
        return "shadow_by_policy" if shadow else "no_approval_required"

    @task
    def reject_candidate(decision: GateReport) -> Rejection:
        """Not deployed: the run and the decision stay in MLflow for audit; champion unchanged."""
        from include.training.gate_steps import reject

        return reject(decision)

    approve_deployment = approval.decision(
        "approve_deployment",
        deploy_task="deploy_champion",
        shadow_task="start_shadow",
        reject_task="reject_deployment",
        timeout=APPROVAL_TIMEOUT,
        subject="Deploy {{ ti.xcom_pull(task_ids='evaluate_gate')['model_name'] }} version "
        "{{ ti.xcom_pull(task_ids='evaluate_gate')['version'] }} as champion?",
        body="Gate report (all checks passed):\n\n```\n"
        "{{ ti.xcom_pull(task_ids='evaluate_gate')['table'] }}\n```\n\n"
        "Model card: [version {{ ti.xcom_pull(task_ids='evaluate_gate')['version'] }}]"
        "(/model-health/model-card/{{ ti.xcom_pull(task_ids='evaluate_gate')['version'] }}). "
        "Champion now: {{ ti.xcom_pull(task_ids='evaluate_gate')['champion'] }}.\n\n"
        "**Deploy** moves `champion` to it (smoke test and serving check first). **Shadow** scores it "
        "beside the champion each night, never served, until promote_shadow decides on its labelled "
        "nights. **Reject** keeps the champion; so does no answer within the deadline.",
    )

    @task(
        trigger_rule="one_success",
        inlets=[assets.MODEL_VERSIONS, assets.TRAINING_SET],
        outlets=[assets.MODEL_VERSIONS],
    )
    def start_shadow(**context) -> dict:
        """Smoke-test the challenger and point `shadow` at it: scored beside the champion, never served."""
        from include.registry import shadow
        from include.training.data import smoke_sample

        prepared = context["ti"].xcom_pull(task_ids="prepare_training_data")
        decision = context["ti"].xcom_pull(task_ids="evaluate_gate")
        record = deployment_record(context)
        return shadow.start(get_settings(), decision["version"], smoke_sample(prepared), record)

    @task
    def reject_deployment(**context) -> Rejection:
        """A person chose Reject (or nobody answered in time): recorded on the version; champion unchanged."""
        from include.training.gate_steps import reject_by_person

        ti = context["ti"]
        response = ti.xcom_pull(task_ids="approve_deployment", key=approval.RESPONSE_KEY)
        return reject_by_person(get_settings(), ti.xcom_pull(task_ids="evaluate_gate"), response)

    no_approval_required = EmptyOperator(task_id="no_approval_required")
    shadow_by_policy = EmptyOperator(task_id="shadow_by_policy")

    @task(
        trigger_rule="one_success",
        inlets=[assets.MODEL_VERSIONS, assets.TRAINING_SET],
        outlets=[assets.CHAMPION_MODEL],
        pool=CHAMPION_POOL,
    )
    def deploy_champion(**context) -> dict:
        """Smoke test, move `champion`, reload serving and verify it; restore on failure.

        Runs after `no_approval_required` or an approved `approve_deployment` only (skipped when
        both are), so its inputs are pulled rather than passed."""
        from include.core.settings import get_settings
        from include.registry.deploy import deploy
        from include.training.data import smoke_sample

        prepared = context["ti"].xcom_pull(task_ids="prepare_training_data")
        decision = context["ti"].xcom_pull(task_ids="evaluate_gate")
        result = deploy(
            get_settings(), decision["version"], smoke_sample(prepared), deployment_record(context)
        )
        assets.emit(
            context,
            assets.CHAMPION_MODEL,
            {"version": result["version"], "previous": result["previous"], "by": "train_model"},
        )
        return dict(result)

    @task(trigger_rule="none_failed")
    def close_retrain_requests(**context) -> int:
        """Mark the retraining requests this run answered as consumed, now that it has decided
        (deployed, or rejected by the gate or a person). A failed run leaves them pending, so the
        next run answers them; a retry marks nothing twice."""
        from include.core.settings import get_settings
        from include.monitoring.tables import mark_answered

        prepared = context["ti"].xcom_pull(task_ids="prepare_training_data")
        ids = list(prepared.get("retrain_request_ids") or []) if prepared else []
        return mark_answered(get_settings(), ids, context["run_id"])

    prepared = prepare_training_data()
    grid = plan_candidates()
    candidates = train_candidate.partial(prepared=prepared).expand(spec=grid)
    registered = register_best(candidates, prepared)
    decision = evaluate_gate(prepared, registered)
    path = choose_path(decision)
    rejected = reject_candidate(decision)
    path >> [rejected, approve_deployment, no_approval_required, shadow_by_policy]
    deployed = deploy_champion()
    refused = reject_deployment()
    shadowed = start_shadow()
    [approve_deployment, no_approval_required] >> deployed
    approve_deployment >> refused
    [shadow_by_policy, approve_deployment] >> shadowed
    [rejected, deployed, refused, shadowed] >> close_retrain_requests()


train_model()
