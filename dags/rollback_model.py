"""
### rollback_model: move `champion` back to an earlier version

**When it runs.** By hand only, with Params `version` (a registered version of the model) and
`reason` (required).

**What it does.** Checks the version exists, moves `champion`
to it (the version's tags record who, when, why and what it replaced), makes the online service
reload and verifies that it serves that version; if the service does not, `champion` is put back
and the task fails. Safe to retry: a version that already is the champion is only
re-verified. Emits `champion_model`. Batch scoring picks the version up on its next run.

**When a task is red** (runbook: README.md, *On call*).
- `ValueError` "no version": the version does not exist; look it up in MLflow's Models page.
- `DeploymentError`: the service did not load it; the log says what `champion` is now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from include.airflow_glue import assets
from include.airflow_glue.defaults import task_defaults


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args=task_defaults(retries=1, retry_delay=timedelta(seconds=30)),
    tags=["mlops", "deployment", "mlflow"],
    doc_md=__doc__,
    params={
        "version": Param(
            "", type="string", pattern="^[0-9]+$", description="Registered version to serve again."
        ),
        "reason": Param("", type="string", minLength=3, description="Why (kept on the version's tags)."),
    },
)
def rollback_model() -> None:
    @task(outlets=[assets.CHAMPION_MODEL])
    def rollback_champion(**context) -> dict:
        """Move `champion` to the Params version, reload serving, verify; restore on failure."""
        from include.core.settings import get_settings
        from include.registry.deploy import rollback

        params, dag_run = context["params"], context["dag_run"]
        result = rollback(
            get_settings(),
            str(params["version"]),
            {
                "rolled_back_by": str(getattr(dag_run, "triggering_user_name", None) or "unknown"),
                "reason": str(params["reason"]),
                "dag_run": context["run_id"],
            },
        )
        assets.emit(context, assets.CHAMPION_MODEL, {**result, "by": "rollback_model"})
        return dict(result)

    rollback_champion()


rollback_model()
