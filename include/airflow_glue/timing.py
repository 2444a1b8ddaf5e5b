"""Every task's own record of how long it ran, for monitor_model's nightly run-time check.

A task cannot query Airflow's metadata database in Airflow 3, so each task writes its try's start
and end to the monitoring database (`task_runs`) from its success and failure callbacks
(task_defaults). Never raises: a timing that could not be written is a warning in the log, not a
failed task.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("airflow.task")


def record(context: Any, state: str) -> None:
    """Write this task try's timing (state: success | failed)."""
    try:
        from include.core.settings import get_settings
        from include.monitoring.task_runs import record_task_run

        ti = context["ti"]
        ended = datetime.now(UTC)
        record_task_run(
            get_settings(),
            dag_id=str(ti.dag_id),
            task_id=str(ti.task_id),
            run_id=str(ti.run_id),
            try_number=int(getattr(ti, "try_number", 0) or 0),
            state=state,
            started_at=getattr(ti, "start_date", None) or ended,
            ended_at=ended,
        )
    except Exception as exc:
        log.warning("could not record the task's run time (%s: %s)", type(exc).__name__, exc)


def on_task_success(context: Any) -> None:
    """Every DAG's on_success_callback (task_defaults)."""
    record(context, "success")
