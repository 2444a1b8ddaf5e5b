"""
### rollback_model: move `champion` back to an earlier version

**When it runs.** By hand only, with Params `version` (a registered version of the model),
`reason` (required) and `override` (default off).

**What it does.** Checks the version exists and that it passed the gate (`gate.decision=deploy`)
and its smoke test (`smoke_test=passed`); otherwise it refuses, unless `override` is on (the
reason is kept as the version's `gate.override_reason` tag). Runs the smoke test again on the
version's own holdout (its monitoring reference), moves `champion` to it (the version's tags
record who, when, why and what it replaced), makes the online service reload and verifies that
it serves that version; if the service does not, `champion` is put back and the task fails.
Safe to retry: a version that already is the champion is only re-verified. Runs in the one-slot
pool `champion_alias`, shared with train_model's deploy_champion. Emits `champion_model`. Batch
scoring picks the version up on its next run.

**When a task is red** (runbook: README.md, *On call*).
- `ValueError` "no version": the version does not exist; look it up in MLflow's Models page.
- `RollbackRefusedError`: the version did not pass the gate or its smoke test; pick another, or
  trigger with `override` on and a reason.
- `DeploymentError`: the smoke test failed or the service did not load it; the log says what
  `champion` is now.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from include.airflow_glue import assets
from include.airflow_glue.defaults import task_defaults
from include.core.settings import CHAMPION_POOL


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
        "override": Param(
            False,
            type="boolean",
            description="Roll back to a version that did not pass the gate or its smoke test (the reason "
            "is kept as its gate.override_reason tag). The smoke test runs again either way.",
        ),
    },
)
def rollback_model() -> None:
    @task(inlets=[assets.MODEL_VERSIONS], outlets=[assets.CHAMPION_MODEL], pool=CHAMPION_POOL)
    def rollback_champion(**context) -> dict:
        """Check the Params version may serve, smoke-test it, move `champion`, reload serving,
        verify; restore on failure."""
        from include.core.settings import get_settings
        from include.registry.deploy import rollback
        from include.training.reference import own_smoke_sample

        settings, params, dag_run = get_settings(), context["params"], context["dag_run"]
        version = str(params["version"])
        result = rollback(
            settings,
            version,
            {
                "rolled_back_by": str(getattr(dag_run, "triggering_user_name", None) or "unknown"),
                "reason": str(params["reason"]),
                "dag_run": context["run_id"],
            },
            sample=lambda: own_smoke_sample(settings, version),
            override=bool(params.get("override")),
        )
        assets.emit(context, assets.CHAMPION_MODEL, {**result, "by": "rollback_model"})
        return dict(result)

    rollback_champion()


rollback_model()
