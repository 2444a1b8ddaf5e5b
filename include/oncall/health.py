"""The on-call page's data: one snapshot of what the pipeline has recorded, read cheaply.

The "Model health" page (plugins/model_health_plugin.py) answers "what is serving, is it
healthy, what broke, where do I look" from what the tasks already wrote: the MLflow registry
(aliases, gate tags, model cards), the monitoring tables, the quarantine records in the lake,
the drift reports and Data Docs on disk, and the online service's /health. Nothing is computed
on request beyond a few small queries, so a page load stays well under 300 ms.

Each section is read on its own: when one source is down (MLflow unreachable, no monitoring
yet) the page still shows the others and says what it could not read.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from include.core.settings import CHALLENGER, CHAMPION, Settings
from include.registry.model_card import redact_url

CHECK_ORDER = ("feature_drift", "prediction_drift", "performance", "slice_performance", "volume", "freshness")
REPORT_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.html$")
SERVING_TIMEOUT_S = 0.5


def mlflow_ui_base(settings: Settings) -> str | None:
    """The MLflow UI's address when MLflow is a server (a local database has no UI to link to)."""
    uri = settings.mlflow_tracking_uri
    return redact_url(uri).rstrip("/") if uri.startswith(("http://", "https://")) else None


def _section(errors: list[str], name: str, read: Callable[[], Any], default: Any) -> Any:
    """Run one reader; a failure becomes a line on the page instead of a broken page."""
    try:
        return read()
    except Exception as exc:  # any source may be down; the page must still render
        errors.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
        return default


# --- MLflow registry -------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _experiment_id(tracking_uri: str, name: str) -> str:
    """An experiment's id (it never changes). Raises LookupError while it does not exist, so that
    absence is not cached."""
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(name)
    if found is None:
        raise LookupError(f"no MLflow experiment {name!r} yet")
    return found.experiment_id


def _experiment_or_none(tracking_uri: str, name: str) -> str | None:
    try:
        return _experiment_id(tracking_uri, name)
    except LookupError:
        return None


@lru_cache(maxsize=64)
def _monitoring_run_id(tracking_uri: str, experiment: str, version: str) -> str:
    """The monitoring run of a version (created once, never changes; ~60 ms to search on a server,
    so it is looked up once). Raises LookupError until monitor_model has created it."""
    from mlflow import MlflowClient

    from include.monitoring.steps import monitoring_run_filter

    found = MlflowClient(tracking_uri=tracking_uri).search_runs(
        [experiment], monitoring_run_filter(version), max_results=1
    )
    if not found:
        raise LookupError(f"no monitoring run for version {version} yet")
    return found[0].info.run_id


def _version_entry(settings: Settings, mv: Any, base: str | None, experiment: str | None) -> dict[str, Any]:
    tags = dict(mv.tags or {})
    version = str(mv.version)
    run_url = None
    if base and experiment and mv.run_id:
        run_url = f"{base}/#/experiments/{experiment}/runs/{mv.run_id}"
    return {
        "version": version,
        "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
        "candidate": tags.get("candidate", ""),
        "aliases": sorted(getattr(mv, "aliases", None) or []),
        "gate_decision": tags.get("gate.decision"),
        "gate_reasons": tags.get("gate.reasons"),
        "smoke_test": tags.get("smoke_test"),
        "champion_since": tags.get(f"{CHAMPION}.since"),
        "deployed_by": tags.get(f"{CHAMPION}.deployed_by"),
        "approved_by": tags.get(f"{CHAMPION}.approved_by"),
        "reason": tags.get(f"{CHAMPION}.reason"),
        "previous": tags.get(f"{CHAMPION}.previous"),
        "run_id": mv.run_id,
        "run_url": run_url,
        "version_url": f"{base}/#/models/{quote(settings.model_name)}/versions/{version}" if base else None,
        "model_card": f"model-card/{version}" if tags.get("model_card.updated_at") else None,
        "model_card_updated": tags.get("model_card.updated_at"),
    }


def registry(settings: Settings, limit: int = 8) -> dict[str, Any]:
    """The champion and the latest registered versions, with their gate decisions."""
    from mlflow.exceptions import MlflowException

    from include.registry import tracking

    client = tracking.client(settings)
    base = mlflow_ui_base(settings)
    experiment = _experiment_or_none(settings.mlflow_tracking_uri, tracking.EXPERIMENT) if base else None
    try:
        versions = client.search_model_versions(
            f"name = '{settings.model_name}'", max_results=limit, order_by=["version_number DESC"]
        )  # MLflow's own filter language; the name comes from configuration
    except MlflowException:
        versions = []
    champion = challenger = None
    with contextlib.suppress(MlflowException):
        champion = client.get_model_version_by_alias(settings.model_name, CHAMPION)
    with contextlib.suppress(MlflowException):
        challenger = str(client.get_model_version_by_alias(settings.model_name, CHALLENGER).version)
    entries = [_version_entry(settings, mv, base, experiment) for mv in versions]
    for entry in entries:  # search results may not carry aliases: fill them from the lookups
        if (
            champion is not None
            and entry["version"] == str(champion.version)
            and CHAMPION not in entry["aliases"]
        ):
            entry["aliases"] = sorted([*entry["aliases"], CHAMPION])
        if entry["version"] == challenger and CHALLENGER not in entry["aliases"]:
            entry["aliases"] = sorted([*entry["aliases"], CHALLENGER])
    return {
        "champion": None if champion is None else _version_entry(settings, champion, base, experiment),
        "candidates": entries,
        "model_url": f"{base}/#/models/{quote(settings.model_name)}" if base else None,
    }


def monitoring_run_url(settings: Settings, version: str) -> str | None:
    """The MLflow run holding a version's nightly metrics (read only: never created here)."""
    base = mlflow_ui_base(settings)
    uri = settings.mlflow_tracking_uri
    experiment = _experiment_or_none(uri, settings.monitoring_experiment) if base else None
    if not (base and experiment):
        return None
    try:
        run_id = _monitoring_run_id(uri, experiment, str(version))
    except LookupError:
        return None
    return f"{base}/#/experiments/{experiment}/runs/{run_id}"


def warm_up() -> None:
    """Import what a page load needs (MLflow's client alone takes seconds), so that the first
    visit after the API server starts is as fast as the next ones."""
    # Loads the request-header plugins MLflow finds by entry point; feast is one (~7 s to import).
    import mlflow.tracking.request_header.registry  # noqa: F401
    import sqlalchemy  # noqa: F401
    from mlflow import MlflowClient  # noqa: F401

    from include.registry import model_card  # noqa: F401


# --- monitoring tables -----------------------------------------------------------------------


@lru_cache(maxsize=4)
def _engine(url: str) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(url, future=True)


def _monitoring_db_exists(url: str) -> bool:
    return not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).exists()


def monitoring(settings: Settings, version: str | None, nights: int = 14) -> dict[str, Any]:
    """The last `nights` departure days of checks for `version` (the champion), the latest
    freshness check and the latest retraining requests."""
    import sqlalchemy as sa

    from include.monitoring.steps import CHECKS_TABLE, REQUESTS_TABLE, report_path

    empty: dict[str, Any] = {"version": version, "days": [], "checks": {}, "freshness": None, "requests": []}
    if not _monitoring_db_exists(settings.monitoring_url):
        return {**empty, "note": "no monitoring run yet (monitor_model runs after each score_flights)"}
    eng = _engine(settings.monitoring_url)
    c = CHECKS_TABLE.c
    with eng.connect() as conn:
        if version is None:
            version = conn.execute(
                sa.select(c.model_version)
                .where(c.model_name == settings.model_name)
                .order_by(c.computed_at.desc())
                .limit(1)
            ).scalar()
        rows = []
        if version is not None:
            last = conn.execute(
                sa.select(sa.func.max(c.day)).where(
                    c.model_name == settings.model_name, c.model_version == str(version)
                )
            ).scalar()
            if last is not None:
                rows = conn.execute(
                    sa.select(c.day, c.check, c.breached, c.value, c.threshold, c.detail, c.computed_at)
                    .where(
                        c.model_name == settings.model_name,
                        c.model_version == str(version),
                        c.day > last - timedelta(days=nights),
                    )
                    .order_by(c.day)
                ).all()
        fresh = conn.execute(
            sa.select(c.day, c.breached, c.value, c.threshold, c.detail, c.computed_at)
            .where(c.model_name == settings.model_name, c.check == "freshness")
            .order_by(c.computed_at.desc())
            .limit(1)
        ).first()
        r = REQUESTS_TABLE.c
        requests = conn.execute(
            sa.select(r.id, r.created_at, r.model_version, r.day, r.reasons, r.status, r.consumed_by)
            .where(r.model_name == settings.model_name)
            .order_by(r.id.desc())
            .limit(5)
        ).all()
    checks: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        checks.setdefault(row.check, []).append(
            {
                "day": row.day.isoformat(),
                "status": {None: "not evaluated", 1: "BREACHED", 0: "ok"}[row.breached],
                "value": row.value,
                "threshold": row.threshold,
                "detail": row.detail,
            }
        )
    days = sorted({row.day for row in rows}, reverse=True)
    reports = {}
    for day in days:
        path = report_path(settings, str(version), day)
        if path.exists():
            reports[day.isoformat()] = f"reports/{path.name}"
    freshness = None
    if fresh is not None:
        freshness = {
            "day": fresh.day.isoformat(),
            "status": {None: "not evaluated", 1: "BREACHED", 0: "ok"}[fresh.breached],
            "lag_hours": fresh.value,
            "max_hours": fresh.threshold,
            "detail": fresh.detail,
            "checked_at": _iso(fresh.computed_at),
        }
    return {
        "version": None if version is None else str(version),
        "days": [d.isoformat() for d in days],
        "checks": {name: checks[name] for name in CHECK_ORDER if name in checks},
        "reports": reports,
        "freshness": freshness,
        "requests": [
            {
                "id": q.id,
                "created_at": _iso(q.created_at),
                "version": q.model_version,
                "day": q.day.isoformat(),
                "reasons": json.loads(q.reasons) if q.reasons.startswith("[") else [q.reasons],
                "status": q.status,
                "consumed_by": q.consumed_by,
            }
            for q in requests
        ],
    }


def _iso(ts: datetime | None) -> str | None:
    if ts is None:
        return None
    return (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).isoformat(timespec="seconds")


# --- lake and Data Docs ------------------------------------------------------------------------


def data_docs_link(settings: Settings, page: str | None) -> str | None:
    """A Data Docs file as a link under the page ("data-docs/..."), only inside the site folder."""
    if not page:
        return None
    path = Path(page.removeprefix("file://"))
    root = settings.data_docs_dir.resolve()
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return None
    return f"data-docs/{quote(rel.as_posix())}"


def quarantine(settings: Settings, limit: int = 20) -> dict[str, Any]:
    """Quarantine records in the lake, newest interval first. A blocked partition with nothing
    published for its interval is waiting for action (README, On call: PartitionQuarantinedError)."""
    root = Path(settings.lake_root)
    entries = []
    for reason in (root / "quarantine").glob("*/interval=*/reason.json"):
        table, interval = reason.parent.parent.name, reason.parent.name.removeprefix("interval=")
        try:
            record = json.loads(reason.read_text())
        except (OSError, ValueError):
            record = {"decision": "unreadable"}
        published = (root / "validated" / table / f"interval={interval}" / "part-0.parquet").exists()
        entries.append(
            {
                "table": table,
                "interval": interval,
                "decision": record.get("decision"),
                "quarantined_rows": record.get("quarantined_rows"),
                "rows": record.get("rows"),
                "failed": record.get("failed", []),
                "forced_reason": record.get("forced_publish_reason"),
                "waiting": record.get("decision") == "block" and not published,
                "data_docs": data_docs_link(settings, record.get("data_docs_page")),
                "folder": str(reason.parent),
            }
        )
    entries.sort(key=lambda e: (e["interval"], e["table"]), reverse=True)
    return {
        "waiting": [e for e in entries if e["waiting"]],
        "recent": entries[:limit],
        "total": len(entries),
        "data_docs_index": "data-docs/index.html"
        if (settings.data_docs_dir / "index.html").exists()
        else None,
    }


# --- serving ---------------------------------------------------------------------------------


def serving(settings: Settings, champion_version: str | None) -> dict[str, Any]:
    """The online service's own /health, with a short timeout (a hung service must not hang the page)."""
    url = f"{settings.serving_url}/health"
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=SERVING_TIMEOUT_S) as resp:
            body = json.loads(resp.read().decode() or "{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return {"reachable": False, "url": redact_url(settings.serving_url), "error": str(reason)[:200]}
    served = body.get("model_version")
    served = None if served is None else str(served)
    return {
        "reachable": True,
        "url": redact_url(settings.serving_url),
        "status": body.get("status"),
        "version": served,
        "matches_champion": served is not None and served == champion_version,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "error": body.get("error"),
        "predictions_logged": body.get("predictions_logged"),
        "prediction_log_errors": body.get("prediction_log_errors"),
    }


# --- the snapshot ------------------------------------------------------------------------------


def snapshot(settings: Settings, nights: int = 14) -> dict[str, Any]:
    """Everything the page shows, as JSON-able data (also served as the page's API)."""
    started = time.perf_counter()
    errors: list[str] = []
    reg = _section(
        errors, "MLflow registry", lambda: registry(settings), {"champion": None, "candidates": []}
    )
    champion = reg.get("champion")
    version = champion["version"] if champion else None
    mon = _section(
        errors,
        "monitoring tables",
        lambda: monitoring(settings, version, nights),
        {"version": version, "days": [], "checks": {}, "freshness": None, "requests": []},
    )
    if mon.get("version"):
        mon["mlflow_run_url"] = _section(
            errors, "MLflow monitoring run", lambda: monitoring_run_url(settings, mon["version"]), None
        )
    return {
        "model_name": settings.model_name,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "champion": champion,
        "candidates": reg.get("candidates", []),
        "model_url": reg.get("model_url"),
        "monitoring": mon,
        "quarantine": _section(
            errors, "lake quarantine", lambda: quarantine(settings), {"waiting": [], "recent": [], "total": 0}
        ),
        "serving": _section(
            errors, "online service", lambda: serving(settings, version), {"reachable": False}
        ),
        "mlflow_ui": mlflow_ui_base(settings),
        "errors": errors,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def report_file(settings: Settings, name: str) -> Path | None:
    """A drift report by file name, only from the reports folder (no path tricks)."""
    if not REPORT_NAME.match(name):
        return None
    path = settings.monitoring_dir / "reports" / name
    return path if path.is_file() else None


def data_docs_file(settings: Settings, relative: str) -> Path | None:
    """A file of the Data Docs site, only from inside the site folder."""
    root = settings.data_docs_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def day_label(day: str) -> str:
    return date.fromisoformat(day).strftime("%a %d %b")
