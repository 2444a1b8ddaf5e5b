"""What a task's Airflow context says about its run, as plain values for the steps."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from include.airflow_glue import assets


def run_tags(context: Mapping[str, Any]) -> dict[str, str]:
    """The run's lineage as MLflow tags: DAG, run, what triggered it and why, who."""
    dag_run = context["dag_run"]
    reasons = assets.triggering_extras(context)
    return {
        "airflow.dag_id": dag_run.dag_id,
        "airflow.run_id": dag_run.run_id,
        "airflow.run_type": str(dag_run.run_type),
        "triggered_by": "retrain_request" if reasons else str(dag_run.run_type),
        "trigger_reasons": str(reasons)[:4000] if reasons else "",
        "reason": str(context["params"].get("reason") or ""),
        "triggering_user": str(getattr(dag_run, "triggering_user_name", None) or ""),
        # The DAG version Airflow ran (its serialized DAG) and the bundle's version, when versioned.
        "airflow.dag_version_id": str(getattr(context.get("ti"), "dag_version_id", None) or ""),
        "airflow.bundle_version": str(getattr(dag_run, "bundle_version", None) or ""),
    }


def deployment_record(context: Mapping[str, Any]) -> dict[str, str]:
    """Who deploys, who approved (approve_deployment's responder), from which run and why."""
    from include.airflow_glue.approval import RESPONSE_KEY
    from include.registry.deploy import approver

    params = context["params"]
    return {
        "deployed_by": str(getattr(context["dag_run"], "triggering_user_name", None) or "scheduler"),
        "approved_by": approver(
            bool(params["require_approval"]),
            context["ti"].xcom_pull(task_ids="approve_deployment", key=RESPONSE_KEY),
        ),
        "dag_run": context["run_id"],
        "reason": str(params.get("reason") or "gate passed"),
    }
