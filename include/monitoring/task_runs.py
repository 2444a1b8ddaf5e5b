"""`task_runs`: every task try's start and end, written by the task's own callbacks
(include/airflow_glue/timing.py), read by monitor_model's run-time check. I/O.

Airflow 3 gives a task no access to its metadata database, so the project keeps the timings it
needs itself, in the monitoring database.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from include.core.settings import Settings
from include.monitoring.tables import METADATA, connected

TASK_RUNS_TABLE = sa.Table(
    "task_runs",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("task_id", sa.String(250), nullable=False),
    sa.Column("run_id", sa.String(250), nullable=False),
    sa.Column("try_number", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_task_runs_ended", "ended_at"),
)


def _utc(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def record_task_run(
    settings: Settings,
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int,
    state: str,
    started_at: datetime,
    ended_at: datetime,
) -> None:
    """One finished task try, for the nightly run-time check."""
    row = {
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "try_number": try_number,
        "state": state,
        "started_at": _utc(started_at),
        "ended_at": _utc(ended_at),
    }
    with connected(settings) as eng, eng.begin() as conn:
        conn.execute(sa.insert(TASK_RUNS_TABLE), [row])


def run_times(
    settings: Settings, since: datetime, until: datetime
) -> dict[str, list[tuple[datetime, float]]]:
    """Each DAG's runs whose last task ended in (since, until]: (end, first start to last end in s)."""
    t = TASK_RUNS_TABLE
    query = (
        sa.select(t.c.dag_id, t.c.run_id, sa.func.min(t.c.started_at), sa.func.max(t.c.ended_at))
        .where(t.c.ended_at > since - timedelta(days=1))
        .group_by(t.c.dag_id, t.c.run_id)
    )
    with connected(settings) as eng, eng.connect() as conn:
        rows = conn.execute(query).all()
    out: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for dag_id, _, first, last in rows:
        first, last = _utc(first), _utc(last)
        if since < last <= until:
            out[str(dag_id)].append((last, (last - first).total_seconds()))
    return dict(out)
