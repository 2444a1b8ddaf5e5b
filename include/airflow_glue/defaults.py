"""The default_args every DAG starts from: an owner, retries, the retry policy (contract errors
fail at once, include/airflow_glue/retry.py), the failure callback and the success callback
that records the task's run time (include/airflow_glue/timing.py).

One place, so that no DAG can forget the callback that ends a failed task's log with the
failure block (tests/dags checks every task has it).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from include.airflow_glue.alerting import on_task_failure
from include.airflow_glue.retry import RETRY_POLICY
from include.airflow_glue.timing import on_task_success


def task_defaults(
    *,
    owner: str = "ml-platform",
    retries: int = 1,
    retry_delay: timedelta = timedelta(minutes=1),
    **extra: Any,
) -> dict[str, Any]:
    """default_args for a DAG: `owner` is the team on call for it; `extra` adds task arguments."""
    return {
        "owner": owner,
        "on_failure_callback": on_task_failure,
        "on_success_callback": on_task_success,
        "retries": retries,
        "retry_delay": retry_delay,
        "retry_policy": RETRY_POLICY,
        **extra,
    }
