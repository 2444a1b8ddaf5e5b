"""Where monitoring publishes a version's nights: its MLflow run and its HTML reports. I/O.

One MLflow run per model version in experiment `<model>-monitoring`, tagged with the version and
its training run; every stored number of a night becomes a metric history (step = day number).
The report of a night is a file under the settings' reports root (a folder or s3://, so the
Model health page on the API server serves what a worker wrote), attached to that run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from include.core.settings import Settings
from include.lake import storage
from include.monitoring.tables import metrics_history
from include.registry import tracking


def report_name(settings: Settings, version: str, day: date) -> str:
    """The file name of a version's report of a night (the page links reports/<name>)."""
    return f"{settings.model_name}_v{version}_{day.isoformat()}.html"


def report_path(settings: Settings, version: str, day: date) -> str:
    """Where that report is stored: a path or an s3:// URL (what XCom, alerts and retraining
    requests carry)."""
    return storage.join(settings.monitoring_reports_root, report_name(settings, version, day))


def monitoring_run_filter(version: str) -> str:
    """MLflow's filter for the monitoring run of a version (its own query language; the version
    is a registry version number)."""
    return f"tags.`monitoring.model_version` = '{int(version)}'"


def mlflow_run_for(settings: Settings, version: str) -> str:
    """The monitoring run of a version (created once): tagged with the version and its training run."""
    client = tracking.client(settings)
    exp = tracking.experiment_id(settings, settings.monitoring_experiment)
    found = client.search_runs([exp], monitoring_run_filter(version), max_results=1)
    if found:
        return found[0].info.run_id
    mv = client.get_model_version(settings.model_name, str(version))
    run = client.create_run(
        exp,
        run_name=f"monitor {settings.model_name} v{version}",
        tags={
            "monitoring.model_name": settings.model_name,
            "monitoring.model_version": str(version),
            "monitoring.training_run_id": mv.run_id or "",
        },
    )
    return run.info.run_id


def mlflow_run_url(settings: Settings, run_id: str) -> str | None:
    """A browser link to an MLflow run when MLflow is a server (None for a local database); no
    credentials of the tracking URI in it."""
    base = tracking.ui_base(settings)
    if base is None:
        return None
    run = tracking.client(settings).get_run(run_id)
    return tracking.run_url(base, run.info.experiment_id, run_id)


def log_to_mlflow(
    settings: Settings, version: str, days: set[date], report: tuple[str, str] | None = None
) -> str:
    """The stored numbers of `days` as MLflow metric histories (step = day number), plus the
    report, given as (file name, HTML): logged from memory, as the report may not be a local file."""
    from mlflow.entities import Metric

    client = tracking.client(settings)
    run_id = mlflow_run_for(settings, version)
    frame = metrics_history(settings, version).dropna(subset=["value"])
    frame = frame[frame["day"].isin(days)]
    epoch = date(1970, 1, 1)
    batch = [
        Metric(
            key=f"{row.check}.{row.name}"[:250].replace("=", "_"),
            value=float(row.value),
            timestamp=int(datetime(row.day.year, row.day.month, row.day.day, tzinfo=UTC).timestamp() * 1000),
            step=(row.day - epoch).days,
        )
        for row in frame.itertuples()
    ]
    for i in range(0, len(batch), 900):
        client.log_batch(run_id, metrics=batch[i : i + 900])
    if report is not None:
        name, html = report
        client.log_text(run_id, html, f"reports/{name}")
    return run_id
