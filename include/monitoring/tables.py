"""The monitoring tables (`MLOPS_MONITORING_URL`), read and written. I/O.

`monitoring_checks`: one row per check per departure day and version (the verdict);
`monitoring_metrics`: every number of a check, long format (a time series per name);
`retrain_requests`: what monitor_model asked for, and which train_model run took it up;
`alerts_sent`: every alert the project raised (monitoring, failed tasks, overdue decisions), with
the channels it went out through (none configured is still a row: the alert was raised).
"""

from __future__ import annotations

import json
import math
from contextlib import AbstractContextManager
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from include.core.settings import Settings
from include.lake import sql
from include.monitoring.contracts import RetrainRequest
from include.monitoring.policy import RetrainRequestRecord
from include.monitoring.statistics import CheckResult

PENDING, CONSUMED = "pending", "consumed"

METADATA = sa.MetaData()
CHECKS_TABLE = sa.Table(
    "monitoring_checks",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("day", sa.Date, nullable=False),  # the departure day the check is about
    sa.Column("check", sa.String(32), nullable=False),
    sa.Column("breached", sa.Integer, nullable=True),  # 1 / 0, NULL = not evaluated (yet)
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("threshold", sa.Float, nullable=True),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("run_id", sa.String(250), nullable=True),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_monitoring_checks_version_day", "model_name", "model_version", "day", "check"),
)
METRICS_TABLE = sa.Table(
    "monitoring_metrics",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("check", sa.String(32), nullable=False),
    sa.Column("name", sa.String(160), nullable=False),  # e.g. psi.temp_f, roc_auc, lag_hours
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_monitoring_metrics_version_day", "model_name", "model_version", "day", "check"),
)
REQUESTS_TABLE = sa.Table(
    "retrain_requests",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("day", sa.Date, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),  # JSON list
    sa.Column("report", sa.Text, nullable=True),
    sa.Column("requested_by", sa.String(250), nullable=True),  # monitor_model run id
    sa.Column("status", sa.String(16), nullable=False),  # pending | consumed
    sa.Column("consumed_by", sa.String(250), nullable=True),  # train_model run id
    sa.Column("consumed_at", sa.DateTime(timezone=True), nullable=True),
)

ALERTS_TABLE = sa.Table(
    "alerts_sent",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("channels", sa.Text, nullable=False),  # JSON list, e.g. ["smtp:mlops_alerts_smtp"]
)


def connected(settings: Settings) -> AbstractContextManager[sa.Engine]:
    """The monitoring database for one block of work (tables created when missing)."""
    return sql.connected(settings.monitoring_url, METADATA)


# --- checks and metrics ----------------------------------------------------------------------


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _rows(
    settings: Settings, version: str, day: date, results: list[CheckResult], run_id: str | None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The checks rows and the metrics rows of (version, day)."""
    now = datetime.now(UTC)
    base = {"model_name": settings.model_name, "model_version": str(version), "day": day}
    checks = [
        {
            **base,
            "check": r.check,
            "breached": None if r.breached is None else int(r.breached),
            "value": r.value,
            "threshold": r.threshold,
            "detail": r.detail,
            "run_id": run_id,
            "computed_at": now,
        }
        for r in results
    ]
    metrics = [
        {**base, "check": r.check, "name": name, "value": _finite(value), "computed_at": now}
        for r in results
        for name, value in ({"value": r.value, **r.metrics} if r.value is not None else r.metrics).items()
    ]
    return checks, metrics


def record(
    settings: Settings, version: str, day: date, results: list[CheckResult], run_id: str | None
) -> None:
    """Store checks and their numbers for (version, day), replacing that day's earlier values of the
    same checks: a rerun of a night gives the same rows."""
    names = [r.check for r in results]
    key = (
        (CHECKS_TABLE.c.model_name == settings.model_name)
        & (CHECKS_TABLE.c.model_version == str(version))
        & (CHECKS_TABLE.c.day == day)
        & CHECKS_TABLE.c.check.in_(names)
    )
    mkey = (
        (METRICS_TABLE.c.model_name == settings.model_name)
        & (METRICS_TABLE.c.model_version == str(version))
        & (METRICS_TABLE.c.day == day)
        & METRICS_TABLE.c.check.in_(names)
    )
    checks, metrics = _rows(settings, version, day, results, run_id)
    with connected(settings) as eng, eng.begin() as conn:
        conn.execute(sa.delete(CHECKS_TABLE).where(key))
        conn.execute(sa.delete(METRICS_TABLE).where(mkey))
        conn.execute(sa.insert(CHECKS_TABLE), checks)
        if metrics:
            conn.execute(sa.insert(METRICS_TABLE), metrics)


def checks_history(settings: Settings, version: str | None = None) -> pd.DataFrame:
    """Every stored check (of one version, or all), oldest day first."""
    query = sa.select(CHECKS_TABLE).where(CHECKS_TABLE.c.model_name == settings.model_name)
    if version is not None:
        query = query.where(CHECKS_TABLE.c.model_version == str(version))
    with connected(settings) as eng, eng.connect() as conn:
        frame = pd.read_sql(query.order_by(CHECKS_TABLE.c.day, CHECKS_TABLE.c.check), conn)
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


def metrics_history(settings: Settings, version: str) -> pd.DataFrame:
    query = sa.select(METRICS_TABLE).where(
        METRICS_TABLE.c.model_name == settings.model_name, METRICS_TABLE.c.model_version == str(version)
    )
    with connected(settings) as eng, eng.connect() as conn:
        frame = pd.read_sql(query.order_by(METRICS_TABLE.c.day), conn)
    frame["day"] = pd.to_datetime(frame["day"]).dt.date
    return frame


# --- retraining requests ---------------------------------------------------------------------


def last_request(settings: Settings) -> RetrainRequestRecord | None:
    with connected(settings) as eng, eng.connect() as conn:
        row = conn.execute(
            sa.select(REQUESTS_TABLE)
            .where(REQUESTS_TABLE.c.model_name == settings.model_name)
            .order_by(REQUESTS_TABLE.c.id.desc())
            .limit(1)
        ).first()
    if row is None:
        return None
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return RetrainRequestRecord(created, str(row.model_version), str(row.status))


def record_request(
    settings: Settings, version: str, day: date, reasons: list[str], report: str | None, run_id: str | None
) -> int:
    """Store a retraining request; returns its id. A retry of the same monitor_model run (killed
    after storing it, before its asset event) gets the id it stored, not a second request."""
    with connected(settings) as eng, eng.begin() as conn:
        if run_id is not None:
            stored = conn.execute(
                sa.select(REQUESTS_TABLE.c.id).where(
                    REQUESTS_TABLE.c.model_name == settings.model_name,
                    REQUESTS_TABLE.c.model_version == str(version),
                    REQUESTS_TABLE.c.day == day,
                    REQUESTS_TABLE.c.requested_by == run_id,
                )
            ).first()
            if stored is not None:
                return int(stored.id)
        result = conn.execute(
            sa.insert(REQUESTS_TABLE).values(
                created_at=datetime.now(UTC),
                model_name=settings.model_name,
                model_version=str(version),
                day=day,
                reasons=json.dumps(reasons),
                report=report,
                requested_by=run_id,
                status=PENDING,
            )
        )
        key = result.inserted_primary_key
        if key is None:
            raise RuntimeError("the monitoring database returned no id for the retraining request")
        return int(key[0])


def pending_requests(settings: Settings) -> list[RetrainRequest]:
    """The retraining requests no finished train_model run has answered yet (read only: a run
    that reads them and then fails leaves them pending for the next one)."""
    with connected(settings) as eng, eng.connect() as conn:
        pending = conn.execute(
            sa.select(REQUESTS_TABLE)
            .where(REQUESTS_TABLE.c.model_name == settings.model_name, REQUESTS_TABLE.c.status == PENDING)
            .order_by(REQUESTS_TABLE.c.id)
        ).all()
    return [
        RetrainRequest(
            id=r.id,
            model_version=r.model_version,
            day=r.day.isoformat(),
            reasons=json.loads(r.reasons),
            report=r.report,
            requested_by=r.requested_by,
        )
        for r in pending
    ]


def mark_answered(settings: Settings, request_ids: list[int], train_run_id: str) -> int:
    """Mark the requests a train_model run read as consumed by it, once it has decided; those
    another run already answered stay as they are. Returns how many were marked (a retry: 0)."""
    if not request_ids:
        return 0
    with connected(settings) as eng, eng.begin() as conn:
        done = conn.execute(
            sa.update(REQUESTS_TABLE)
            .where(REQUESTS_TABLE.c.id.in_(request_ids), REQUESTS_TABLE.c.status == PENDING)
            .values(status=CONSUMED, consumed_by=train_run_id, consumed_at=datetime.now(UTC))
        )
    return int(done.rowcount or 0)


def requests(settings: Settings) -> pd.DataFrame:
    with connected(settings) as eng, eng.connect() as conn:
        return pd.read_sql(sa.select(REQUESTS_TABLE).order_by(REQUESTS_TABLE.c.id), conn)


# --- alerts ------------------------------------------------------------------------------------


def record_alert(settings: Settings, subject: str, text: str, channels: list[str]) -> None:
    """Keep an alert the project raised (its text as sent: credentials already removed)."""
    with connected(settings) as eng, eng.begin() as conn:
        conn.execute(
            sa.insert(ALERTS_TABLE).values(
                sent_at=datetime.now(UTC), subject=subject[:500], text=text, channels=json.dumps(channels)
            )
        )


def alerts(settings: Settings, limit: int = 50) -> pd.DataFrame:
    """The latest alerts raised, newest first."""
    with connected(settings) as eng, eng.connect() as conn:
        return pd.read_sql(sa.select(ALERTS_TABLE).order_by(ALERTS_TABLE.c.id.desc()).limit(limit), conn)
