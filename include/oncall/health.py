"""The on-call page's data: one snapshot of what the pipeline has recorded, read cheaply.

The "Model health" page (plugins/model_health_plugin.py) answers "what is serving, is it
healthy, what broke, where do I look" from what the tasks already wrote: the MLflow registry
(aliases, gate tags, model cards), the monitoring tables, the quarantine records in the lake,
the drift reports and Data Docs on disk, and the online service's /health. Nothing is computed
on request beyond a few small queries, so a page load stays well under 300 ms.

Each section is read on its own (one reader per source: registry_reader, monitoring_reader,
lake_reader, serving_reader): when one source is down (MLflow unreachable, no monitoring yet)
the page still shows the others and says what it could not read. The files the page serves
are chosen in include/oncall/files.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from include.core.settings import Settings
from include.core.urls import redact_url
from include.oncall.lake_reader import quarantine
from include.oncall.monitoring_reader import monitoring
from include.oncall.registry_reader import monitoring_run_url, registry
from include.oncall.sections import (
    MonitoringSection,
    QuarantineSection,
    RegistrySection,
    ServingSection,
    Snapshot,
)
from include.oncall.serving_reader import serving
from include.registry import tracking

T = TypeVar("T")


def _section(errors: list[str], name: str, read: Callable[[], T], default: T) -> T:
    """Run one reader; a failure becomes a line on the page instead of a broken page (credentials
    in any URL of the message removed: a driver error often quotes its connection URL)."""
    try:
        return read()
    except Exception as exc:  # any source may be down; the page must still render
        first = str(exc).splitlines()[0][:300] if str(exc) else ""
        errors.append(redact_url(f"{name}: {type(exc).__name__}: {first}"))
        return default


def snapshot(settings: Settings, nights: int = 14) -> Snapshot:
    """Everything the page shows, as JSON-able data (also served as the page's API)."""
    started = time.perf_counter()
    errors: list[str] = []
    no_registry: RegistrySection = {"champion": None, "shadow": None, "candidates": [], "model_url": None}
    reg = _section(errors, "MLflow registry", lambda: registry(settings), no_registry)
    champion = reg["champion"]
    version = champion["version"] if champion else None
    no_monitoring: MonitoringSection = {
        "version": version,
        "days": [],
        "checks": {},
        "freshness": None,
        "requests": [],
    }
    mon = _section(errors, "monitoring tables", lambda: monitoring(settings, version, nights), no_monitoring)
    monitored = mon.get("version")
    if monitored:
        mon["mlflow_run_url"] = _section(
            errors, "MLflow monitoring run", lambda: monitoring_run_url(settings, monitored), None
        )
    no_quarantine: QuarantineSection = {"waiting": [], "recent": [], "total": 0}
    no_serving: ServingSection = {"reachable": False}
    return {
        "model_name": settings.model_name,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "champion": champion,
        "shadow": reg["shadow"],
        "candidates": reg["candidates"],
        "model_url": reg["model_url"],
        "monitoring": mon,
        "quarantine": _section(errors, "lake quarantine", lambda: quarantine(settings), no_quarantine),
        "serving": _section(errors, "online service", lambda: serving(settings, version), no_serving),
        "mlflow_ui": tracking.ui_base(settings),
        "errors": errors,
        "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
    }


def warm_up() -> None:
    """Import what a page load needs (MLflow's client alone takes seconds), so that the first
    visit after the API server starts is as fast as the next ones. The monitoring tables (and
    SQLAlchemy) come with this module's readers."""
    # Loads the request-header plugins MLflow finds by entry point; feast is one (~7 s to import).
    import mlflow.tracking.request_header.registry  # noqa: F401
    from mlflow import MlflowClient  # noqa: F401

    from include.monitoring import records  # noqa: F401  (the monitoring run's filter)
    from include.registry import model_card  # noqa: F401
