"""The page's reads of the monitoring tables: a version's last nights, freshness, retraining requests.

Why a few small queries rather than one: each answers one question on the page, and the nights
are bounded by the version's own latest day (not today), so a model not scored for a while still
shows its last nights. The tables are written by monitor_model (include/monitoring/tables.py).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from include.core.settings import Settings
from include.lake import storage
from include.monitoring.records import report_name
from include.monitoring.tables import ALERTS_TABLE, CHECKS_TABLE, METRICS_TABLE, REQUESTS_TABLE
from include.oncall.sections import AlertEntry, CheckNight, Freshness, MonitoringSection, RequestEntry

CHECK_ORDER = (
    "feature_drift",
    "prediction_drift",
    "performance",
    "slice_performance",
    "attribution_drift",
    "fairness",
    "volume",
    "freshness",
)
STATUS = {None: "not evaluated", 1: "BREACHED", 0: "ok"}  # the tables' `breached` column


@lru_cache(maxsize=4)
def _engine(url: str) -> Any:
    return sa.create_engine(url, future=True)


def _monitoring_db_exists(url: str) -> bool:
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _latest_version(conn: Any, model_name: str) -> str | None:
    """The version checked last, when the page has no champion to ask about."""
    c = CHECKS_TABLE.c
    return conn.execute(
        sa.select(c.model_version).where(c.model_name == model_name).order_by(c.computed_at.desc()).limit(1)
    ).scalar()


def _check_rows(conn: Any, model_name: str, version: str, nights: int) -> list[Any]:
    """The version's checks of its last `nights` departure days (counted from its latest day)."""
    c = CHECKS_TABLE.c
    last = conn.execute(
        sa.select(sa.func.max(c.day)).where(c.model_name == model_name, c.model_version == version)
    ).scalar()
    if last is None:
        return []
    return conn.execute(
        sa.select(c.day, c.check, c.breached, c.value, c.threshold, c.detail, c.computed_at)
        .where(c.model_name == model_name, c.model_version == version, c.day > last - timedelta(days=nights))
        .order_by(c.day)
    ).all()


def _latest_freshness(conn: Any, model_name: str) -> Any | None:
    """The latest freshness check, whatever version it ran for (the online store is shared)."""
    c = CHECKS_TABLE.c
    return conn.execute(
        sa.select(c.day, c.breached, c.value, c.threshold, c.detail, c.computed_at)
        .where(c.model_name == model_name, c.check == "freshness")
        .order_by(c.computed_at.desc())
        .limit(1)
    ).first()


def _latest_requests(conn: Any, model_name: str) -> list[Any]:
    r = REQUESTS_TABLE.c
    return conn.execute(
        sa.select(r.id, r.created_at, r.model_version, r.day, r.reasons, r.status, r.consumed_by)
        .where(r.model_name == model_name)
        .order_by(r.id.desc())
        .limit(5)
    ).all()


def _latest_alerts(conn: Any) -> list[AlertEntry]:
    """The last alerts raised; none while nothing has been raised (the table is created then)."""
    if not sa.inspect(conn).has_table(ALERTS_TABLE.name):
        return []
    a = ALERTS_TABLE.c
    rows = conn.execute(sa.select(a.sent_at, a.subject, a.channels).order_by(a.id.desc()).limit(8)).all()
    return [
        {"sent_at": _iso(r.sent_at), "subject": r.subject, "channels": list(json.loads(r.channels or "[]"))}
        for r in rows
    ]


SYSTEM_METRICS = {
    ("service_health", "requests"): "requests since the last night",
    ("service_health", "error_share"): "error share (5xx)",
    ("service_health", "p99_ms"): "/predict p99 (ms, bucket bound)",
    ("service_health", "feature_read_failures"): "feature-read failures",
    ("storage", "bytes.lake"): "lake (MB)",
    ("storage", "bytes.prediction_log"): "prediction log (MB)",
    ("storage", "bytes.monitoring_db"): "monitoring database (MB)",
}


def _system_series(conn: Any, model_name: str, days: list[date]) -> dict[str, list[float | None]]:
    """The system's numbers on `days` (oldest first), whatever version was serving: the service,
    the stores' sizes in MB, and each DAG's longest run (s)."""
    if not days:
        return {}
    m = METRICS_TABLE.c
    rows = conn.execute(
        sa.select(m.day, m.check, m.name, m.value).where(
            m.model_name == model_name,
            m.check.in_(["service_health", "storage", "task_durations"]),
            m.day >= min(days),
            m.day <= max(days),
        )
    ).all()
    found: dict[str, dict[date, float]] = {}
    for r in rows:
        label = SYSTEM_METRICS.get((r.check, r.name))
        if label is None and r.check == "task_durations" and r.name.startswith("seconds."):
            label = f"{r.name.removeprefix('seconds.')} run (s)"
        if label is None or r.value is None:
            continue
        value = r.value / 1e6 if r.check == "storage" else r.value
        found.setdefault(label, {})[r.day] = value
    order = [*SYSTEM_METRICS.values(), *sorted(k for k in found if k not in SYSTEM_METRICS.values())]
    return {k: [found[k].get(d) for d in days] for k in order if k in found}


def _check_series(rows: list[Any]) -> dict[str, list[CheckNight]]:
    """Each check's nights in day order, the checks in the page's order."""
    checks: dict[str, list[CheckNight]] = {}
    for row in rows:
        checks.setdefault(row.check, []).append(
            {
                "day": row.day.isoformat(),
                "status": STATUS[row.breached],
                "value": row.value,
                "threshold": row.threshold,
                "detail": row.detail,
            }
        )
    return {name: checks[name] for name in CHECK_ORDER if name in checks}


def _reports(settings: Settings, version: str | None, days: list[date]) -> dict[str, str]:
    """Links to the nights' HTML reports that exist (served under the page's reports/): one
    listing of the reports root, not one request per night."""
    if not days:
        return {}
    stored = {location.rsplit("/", 1)[-1] for location in storage.ls(settings.monitoring_reports_root)}
    reports = {}
    for day in days:
        name = report_name(settings, str(version), day)
        if name in stored:
            reports[day.isoformat()] = f"reports/{name}"
    return reports


def _freshness(fresh: Any) -> Freshness:
    return {
        "day": fresh.day.isoformat(),
        "status": STATUS[fresh.breached],
        "lag_hours": fresh.value,
        "max_hours": fresh.threshold,
        "detail": fresh.detail,
        "checked_at": _iso(fresh.computed_at),
    }


def _request(q: Any) -> RequestEntry:
    return {
        "id": q.id,
        "created_at": _iso(q.created_at),
        "version": q.model_version,
        "day": q.day.isoformat(),
        "reasons": json.loads(q.reasons) if q.reasons.startswith("[") else [q.reasons],
        "status": q.status,
        "consumed_by": q.consumed_by,
    }


def monitoring(settings: Settings, version: str | None, nights: int = 14) -> MonitoringSection:
    """The last `nights` departure days of checks for `version` (the champion), the latest
    freshness check and the latest retraining requests."""
    empty: MonitoringSection = {
        "version": version,
        "days": [],
        "checks": {},
        "freshness": None,
        "requests": [],
    }
    if not _monitoring_db_exists(settings.monitoring_url):
        empty["note"] = "no monitoring run yet (monitor_model runs after each score_flights)"
        return empty
    with _engine(settings.monitoring_url).connect() as conn:
        if version is None:
            version = _latest_version(conn, settings.model_name)
        rows = [] if version is None else _check_rows(conn, settings.model_name, str(version), nights)
        fresh = _latest_freshness(conn, settings.model_name)
        requests = _latest_requests(conn, settings.model_name)
        alerts = _latest_alerts(conn)
        days = sorted({row.day for row in rows}, reverse=True)
        system = _system_series(conn, settings.model_name, sorted(days))
    return {
        "version": None if version is None else str(version),
        "days": [d.isoformat() for d in days],
        "checks": _check_series(rows),
        "reports": _reports(settings, version, days),
        "freshness": None if fresh is None else _freshness(fresh),
        "requests": [_request(q) for q in requests],
        "alerts": alerts,
        "system": system,
    }
