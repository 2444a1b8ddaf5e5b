"""The record_service_health step of monitor_model. I/O.

Each night: scrape the online service's /metrics (the counters since the previous scrape, kept in
`service_scrapes`), measure the bytes of the lake, the prediction log and the monitoring
database, and read the DAG run times of the last day from `task_runs` (task_runs.py: written by
each task's own callback, since Airflow's metadata database is not a task's to query). The three
checks (health.py) are stored like the others (`monitoring_checks`, `monitoring_metrics`: the
time series Model health draws its trends from), so the policy alerts on them when they are
breached `consecutive_nights` in a row.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from include.core.settings import Settings
from include.lake import storage
from include.monitoring import health
from include.monitoring.contracts import CheckRecord
from include.monitoring.policy import STORAGE, MonitoringPolicy
from include.monitoring.statistics import CheckResult
from include.monitoring.tables import METADATA, METRICS_TABLE, connected, record
from include.monitoring.task_runs import run_times

log = logging.getLogger("airflow.task")

SCRAPES_TABLE = sa.Table(
    "service_scrapes",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("snapshot", sa.Text, nullable=False),  # ServiceSnapshot as JSON
)


def duration_result(settings: Settings, now: datetime, policy: MonitoringPolicy) -> CheckResult:
    """The last day's longest run of each DAG against its runs of the week before."""
    tonight = {
        d: max(s for _, s in runs) for d, runs in run_times(settings, now - timedelta(days=1), now).items()
    }
    before = {
        d: [s for _, s in runs]
        for d, runs in run_times(settings, now - timedelta(days=8), now - timedelta(days=1)).items()
    }
    return health.duration_check(tonight, before, policy)


# --- the service -----------------------------------------------------------------------------


def scrape(settings: Settings, timeout: float = 10.0) -> tuple[health.ServiceSnapshot | None, str | None]:
    """The service's counters now, or why it could not be asked."""
    url = f"{settings.serving_url}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return health.parse_metrics(resp.read().decode()), None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"{url}: {type(exc).__name__}: {exc}"


def _previous_scrape(settings: Settings) -> health.ServiceSnapshot | None:
    t = SCRAPES_TABLE
    with connected(settings) as eng, eng.connect() as conn:
        row = conn.execute(sa.select(t.c.snapshot).order_by(t.c.id.desc()).limit(1)).first()
    return None if row is None else health.ServiceSnapshot.from_dict(json.loads(row[0]))


def _keep_scrape(settings: Settings, snapshot: health.ServiceSnapshot, now: datetime) -> None:
    with connected(settings) as eng, eng.begin() as conn:
        conn.execute(
            sa.insert(SCRAPES_TABLE), [{"taken_at": now, "snapshot": json.dumps(snapshot.as_dict())}]
        )


def service_result(settings: Settings, now: datetime, policy: MonitoringPolicy) -> CheckResult:
    current, problem = scrape(settings)
    if current is None:
        return health.service_check(None, problem, policy)
    night = health.since(_previous_scrape(settings), current)
    _keep_scrape(settings, current, now)
    return health.service_check(night, None, policy)


# --- storage ---------------------------------------------------------------------------------


def _database_bytes(url: str, tables: tuple[str, ...]) -> int:
    """A SQLite database's files (with its WAL), or the PostgreSQL tables' total relation size."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
    eng = sa.create_engine(url, future=True)
    try:
        with eng.connect() as conn:
            return int(
                sum(
                    conn.execute(
                        sa.text("SELECT COALESCE(pg_total_relation_size(to_regclass(:t)), 0)"), {"t": t}
                    ).scalar()
                    or 0
                    for t in tables
                )
            )
    finally:
        eng.dispose()


def storage_sizes(settings: Settings) -> dict[str, float]:
    """Bytes of the lake, the prediction log and the monitoring database now."""
    from include.serving.prediction_log import PREDICTION_LOG

    return {
        "lake": float(storage.size(settings.lake_root)),
        "prediction_log": float(_database_bytes(settings.prediction_log_url, (PREDICTION_LOG.name,))),
        "monitoring_db": float(_database_bytes(settings.monitoring_url, tuple(METADATA.tables))),
    }


def _earlier_totals(settings: Settings, day: date, nights: int = 14) -> list[float]:
    """The total bytes recorded on the nights before `day` (oldest first)."""
    m = METRICS_TABLE
    query = (
        sa.select(m.c.day, sa.func.max(m.c.value))
        .where((m.c.check == STORAGE) & (m.c.name == "bytes.total") & (m.c.day < day))
        .group_by(m.c.day)
        .order_by(m.c.day.desc())
        .limit(nights)
    )
    with connected(settings) as eng, eng.connect() as conn:
        rows = conn.execute(query).all()
    return [float(v) for _, v in reversed(rows) if v is not None]


def storage_result(settings: Settings, day: date, policy: MonitoringPolicy) -> CheckResult:
    return health.storage_check(storage_sizes(settings), _earlier_totals(settings, day), policy)


# --- the step --------------------------------------------------------------------------------


def record_service_health(
    settings: Settings, version: str, day: date, run_id: str | None, policy: MonitoringPolicy
) -> list[CheckRecord]:
    """The night's service health, storage and DAG run times, stored for (version, day)."""
    now = datetime.now(UTC)
    results = [
        service_result(settings, now, policy),
        storage_result(settings, day, policy),
        duration_result(settings, now, policy),
    ]
    record(settings, version, day, results, run_id)
    for r in results:
        log.info("%s %s: %s", r.check, r.status, r.detail)
    return [r.as_dict() for r in results]
