# TaskFlow wiring passes a task's output (an XComArg) where the next task declares the value it
# receives; mypy cannot see through the decorator, so only that check is off in this file.
# mypy: disable-error-code="arg-type"
"""
### promote_shadow: the shadow against the champion on the same labelled flights → promote, wait or retire

**When it runs.** Whenever `flight_predictions` is emitted (score_flights scored a night, and the
shadow beside the champion when one is in `shadow`); by hand from the UI. With no version in
shadow it does nothing (green, `check_shadow` says so).

**What it does.**
1. `check_shadow`: every night both versions scored whose labels are complete (the monitoring
   rule: outcomes of the day and the next 2 days validated, 95 % of the flights labelled): ROC AUC,
   calibration gap and carrier slices of the two on exactly the same flights. The decision
   (thresholds: `include/monitoring/shadow.py` ShadowThresholds; nights: `MLOPS_SHADOW_NIGHTS`)
   is recorded on the shadow version (`shadow.decision`, `shadow.reasons`), like the gate's.
2. `choose_action`: `promote_champion` (a deployment: smoke test, `champion` moved, the service
   verified, or restored; the one-slot pool `champion_alias`), `retire_shadow` (the alias is
   removed, the version tagged why), or `keep_waiting`.

**When a task is red** (runbook: README.md, *On call*).
- `DeploymentError` in `promote_champion`: the promotion's smoke test or serving check failed; the
  champion was restored and the shadow stays in shadow. Fix the service, then clear the task.
- `RegistryUnavailableError`: MLflow did not answer (not "no shadow"); the task retries.
- Waiting is not a failure: the run is green and `check_shadow` says how many nights are labelled.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import dag, task

from include.airflow_glue import assets
from include.airflow_glue.defaults import task_defaults
from include.core.settings import CHAMPION_POOL
from include.monitoring.contracts import ShadowCheck


@dag(
    schedule=assets.FLIGHT_PREDICTIONS,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args=task_defaults(retries=1),
    tags=["mlops", "deployment", "shadow"],
    doc_md=__doc__,
)
def promote_shadow() -> None:
    @task(inlets=[assets.FLIGHT_PREDICTIONS, assets.VALIDATED["flight_outcomes"], assets.MODEL_VERSIONS])
    def check_shadow() -> ShadowCheck:
        """Shadow vs champion on their labelled nights: the decision, recorded on the shadow version."""
        from include.core.settings import get_settings
        from include.monitoring.policy import monitoring_policy
        from include.monitoring.shadow_steps import check_shadow

        return check_shadow(get_settings(), monitoring_policy())

    @task.branch
    def choose_action(check: ShadowCheck) -> str:
        decision = check["decision"]["decision"] if check["decision"] else "wait"
        return {"promote": "promote_champion", "retire": "retire_shadow"}.get(decision, "keep_waiting")

    @task(inlets=[assets.MODEL_VERSIONS], outlets=[assets.CHAMPION_MODEL], pool=CHAMPION_POOL)
    def promote_champion(check: ShadowCheck, **context) -> dict:
        """Deploy the shadow (smoke test, move `champion`, verify serving; restore on failure)."""
        from include.core.settings import get_settings
        from include.monitoring.shadow_steps import promote

        record = {
            "deployed_by": "promote_shadow",
            "approved_by": "promotion check",
            "dag_run": context["run_id"],
        }
        result = promote(get_settings(), check, {**record, "reason": "shadow promoted"})
        assets.emit(
            context,
            assets.CHAMPION_MODEL,
            {"version": result["version"], "previous": result["previous"], "by": "promote_shadow"},
        )
        return result

    @task(outlets=[assets.MODEL_VERSIONS])
    def retire_shadow(check: ShadowCheck) -> str:
        """Remove the `shadow` alias; the version keeps its decision and reasons as tags."""
        from include.core.settings import get_settings
        from include.monitoring.shadow_steps import retire

        return retire(get_settings(), check)

    checked = check_shadow()
    action = choose_action(checked)
    action >> [promote_champion(checked), retire_shadow(checked), EmptyOperator(task_id="keep_waiting")]


promote_shadow()
