"""One place for configuration: environment lookups with defaults, connection ids, paths.

Every setting is read from the environment when it is asked for (never at import time),
so tests and `make run` can point the same code at other folders, clocks or servers.
Secrets never live here: they belong in Airflow connections (`flights_source`, ...), and the one
the service needs (`MLOPS_SERVING_TOKEN`) is only read from the environment.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]

# Airflow connection ids (defined in airflow_settings.yaml, or AIRFLOW_CONN_* variables).
FLIGHTS_SOURCE_CONN_ID = "flights_source"

# Airflow pools (also in airflow_settings.yaml).
SOURCE_DB_POOL = "flights_source_db"
FEAST_REGISTRY_POOL = "feast_registry"  # one slot: registry writes never run concurrently
CHAMPION_POOL = "champion_alias"  # one slot: a deployment and a rollback never run at the same time
FEAST_ONLINE_CONN_ID = "feast_online_store"  # only read when MLOPS_FEAST_ONLINE_STORE is redis/postgres

# Monitoring alerts go through these connections when they exist (never required).
ALERT_SMTP_CONN_ID = "mlops_alerts_smtp"  # SMTP server; extra {"to": "oncall@example.com"}
ALERT_SLACK_CONN_ID = "mlops_alerts_slack"  # Slack incoming webhook (needs the slack provider)

# MLflow model registry: one registered model; aliases say which version does what.
DEFAULT_REPLAY_ANCHOR = "2013-06-01"
"""make run's 14 days then end in late May / early June 2013, where a first model trained on them
passes the gate whatever the weekday (README, "The live flights source": measured per weekday)."""
CHAMPION = "champion"  # the version serving users (batch and online)
CHALLENGER = "challenger"  # the latest candidate that reached the gate
SHADOW = "shadow"  # a gated candidate scoring beside the champion, never served
PROMOTIONS = ("deploy", "shadow")  # what a passed gate does with a challenger when a champion exists


def _env(name: str, default: str) -> str:
    value = os.environ.get(name, "").strip()
    return value or default


@dataclass(frozen=True)
class Settings:
    """Values that differ between a laptop, CI and a production deployment."""

    data_dir: Path
    """Root of local state: the demo source database, the default home of the lake and of the
    artifacts (validation results, Data Docs, reports)."""

    lake_root: str
    """Root of the lake (raw / validated / quarantine / feature partitions, training sets): a
    local folder, or an object store URL (`s3://bucket/prefix`, credentials and endpoint from the
    standard AWS variables, see include/lake/storage.py). Workers that share no disk need the URL."""

    artifacts_root: str
    """Root of the files a task writes for people and for later readers (`MLOPS_ARTIFACTS_ROOT`):
    Great Expectations validation results and the Data Docs site, the nightly drift reports. A
    local folder (default: the data folder, the layout these files always had) or an object store
    URL like the lake's. Workers that share no disk, and the API server whose Model health page
    serves these files, need the URL: a file on one worker's disk is invisible to the others."""

    clock_now: datetime | None
    """Fixed 'now' for the replay clock (tests and replays); None means the wall clock."""

    replay_anchor: date
    """The 2013 date that the day the demo source is built maps onto (shifted by whole weeks)."""

    scale_factor: int
    """How many copies of the 2013 traffic the demo source holds (load tests)."""

    reporting_lag_hours: float
    """Delay between a flight landing and its outcome appearing in the source."""

    schedule_lead_hours: float
    """How long before departure a flight's schedule is published in the source."""

    feast_online_store: str
    """Feast online store: sqlite (embedded, default) | redis | postgres (connection
    `feast_online_store`)."""

    feast_registry_url: str
    """Feast's registry: empty for the embedded file registry under the data folder, or a
    SQLAlchemy URL (`postgresql+psycopg://…`, `MLOPS_FEAST_REGISTRY_URL`) for Feast's SQL registry,
    which every worker shares."""

    feast_chunk_hours: int
    """Materialization window per Feast call: memory stays flat however long the catch-up."""

    prediction_lead_hours: float
    """How long before scheduled departure the model predicts (features as of that instant)."""

    mlflow_tracking_uri: str
    """MLflow tracking + registry: `MLFLOW_TRACKING_URI` (MLflow's own variable, so the CLI, the
    serving app and the tasks agree). Default: a SQLite file under the data folder; `make run`
    points it at its MLflow server (http://127.0.0.1:5000); a team server on PostgreSQL works
    unchanged."""

    model_name: str
    """Registered model name in MLflow."""

    serving_url: str
    """Base URL of the online prediction service that deployments reload and verify."""

    prediction_log_url: str
    """SQLAlchemy URL of the prediction log table (batch and online predictions)."""

    decision_threshold: float
    """P(late) at or above which a flight is flagged late (precision/recall are measured there)."""

    smoke_max_latency_ms: float
    """Deployment smoke test: the median single-flight prediction time allowed (ms)."""

    monitoring_url: str
    """SQLAlchemy URL of the monitoring tables (nightly checks and metrics, retraining requests)."""

    serving_token: str
    """Bearer token that POST /reload of the online service requires (`MLOPS_SERVING_TOKEN`);
    deployments send it. `make run` generates it at first start into $AIRFLOW_HOME/serving_token
    (mode 0600) and exports it to Airflow and the service. Empty: /reload refuses every call."""

    serving_allowed_hosts: tuple[str, ...]
    """Host headers the online service answers (`MLOPS_SERVING_ALLOWED_HOSTS`, comma-separated);
    anything else gets 400, so a page elsewhere cannot reach it through DNS rebinding."""

    serving_departure_days_ahead: float
    """How far ahead of the clock's now a `scheduled_departure` given to /predict may be (days,
    `MLOPS_SERVING_DEPARTURE_DAYS_AHEAD`); later is refused with 422 (schedules are published a
    day ahead)."""

    serving_departure_days_back: float
    """How far back from now a `scheduled_departure` may be (days, `MLOPS_SERVING_DEPARTURE_DAYS_BACK`);
    earlier is refused with 422. Wide by default: a deployment probes the service with a flight
    of its training holdout, and a training window may end in the past (train_model's `window_end`,
    up to 365 days long)."""
    serving_shadow: bool = True
    """Whether the online service also scores the version in `shadow` for each /predict, in its
    log-writer thread after the answer (`MLOPS_SERVING_SHADOW`, on/off): rows `shadow_online`,
    never served."""
    approval_timeout_hours: float = 48.0
    """How long train_model's deployment decision waits for a person (`MLOPS_APPROVAL_TIMEOUT_HOURS`);
    then the candidate is rejected (the champion stays). Read when the DAG is parsed."""
    approval_reminder_hours: float = 24.0
    """After this long without the run finishing, on-call is reminded that a decision waits
    (`MLOPS_APPROVAL_REMINDER_HOURS`, a DeadlineAlert from the run's queued time)."""
    promotion: str = "deploy"
    """What train_model does with a challenger that passed the gate while a champion serves
    (`MLOPS_PROMOTION`, the default of its `promotion` Param): `deploy` replaces the champion now;
    `shadow` scores it beside the champion each night until promote_shadow decides."""
    shadow_nights: int = 3
    """Labelled nights a shadow needs before promote_shadow judges it (`MLOPS_SHADOW_NIGHTS`)."""

    @property
    def mlflow_dir(self) -> Path:
        """Local MLflow state (SQLite database, artifacts) when no server is configured."""
        return self.data_dir / "mlflow"

    @property
    def mlflow_artifacts_uri(self) -> str:
        """Where artifacts go when the tracking URI is a local database (never ./mlruns)."""
        return (self.mlflow_dir / "artifacts").as_uri()

    @property
    def training_sets_root(self) -> str:
        """Train/holdout frames of each train_model run, shared by its mapped candidate tasks and
        its deployment's smoke test: in the lake (`<lake>/training_sets/<run>/`), so workers that
        share no disk read what another wrote."""
        return f"{self.lake_root.rstrip('/')}/training_sets"

    @property
    def monitoring_dir(self) -> Path:
        """Local monitoring state: the cached training references of the monitored versions (each
        worker downloads its own copy from MLflow) and the default SQLite monitoring tables."""
        return self.data_dir / "monitoring"

    @property
    def monitoring_reports_root(self) -> str:
        """Nightly drift reports (HTML, one per version and day), read by the Model health page."""
        return _under(self.artifacts_root, "monitoring", "reports")

    @property
    def monitoring_experiment(self) -> str:
        """MLflow experiment holding one monitoring run per model version (metrics by night)."""
        return f"{self.model_name}-monitoring"

    @property
    def source_db_path(self) -> Path:
        """Default location of the demo source database (SQLite)."""
        return self.data_dir / "source" / "flights.db"

    @property
    def data_docs_root(self) -> str:
        """Great Expectations Data Docs site: one page per validated partition, index.html."""
        return _under(self.artifacts_root, "data_docs")

    @property
    def validation_results_root(self) -> str:
        """Great Expectations validation results (JSON) that the Data Docs site is built from."""
        return _under(self.artifacts_root, "gx_validation_results")


LAKE_URL_SCHEMES = ("s3://",)


def _storage_root(variable: str, root: str) -> str:
    """A storage root (the lake's, the artifacts'): a local path (file:// removed) or an
    object-store URL. Another scheme is refused: fail closed rather than write gs://bucket/lake
    into a local folder named "gs:"."""
    if "://" in root and not root.startswith(("file://", *LAKE_URL_SCHEMES)):
        raise ValueError(
            f"{variable}={root!r}: it must be a local folder or one of "
            f"{', '.join(LAKE_URL_SCHEMES)}; other schemes are not installed. Set a path or an s3:// URL."
        )
    return root.removeprefix("file://")


def _under(root: str, *parts: str) -> str:
    """`root`/`parts` as include/lake/storage.py's `join` names it (core may not import the lake):
    the string pathlib gives for a local root, the URL with "/"-joined parts for an object store."""
    if "://" in root:
        return "/".join([root.rstrip("/"), *parts])
    return str(Path(root).joinpath(*parts))


def get_settings() -> Settings:
    """Read the settings from the environment (cheap; call it where you need it)."""
    data_dir = Path(_env("MLOPS_DATA_DIR", str(PROJECT_DIR / "data"))).resolve()
    now_text = _env("MLOPS_CLOCK_NOW", "")
    clock_now = None
    if now_text:
        clock_now = datetime.fromisoformat(now_text.replace("Z", "+00:00"))
        if clock_now.tzinfo is None:
            clock_now = clock_now.replace(tzinfo=UTC)
    return Settings(
        data_dir=data_dir,
        lake_root=_storage_root("MLOPS_LAKE_ROOT", _env("MLOPS_LAKE_ROOT", str(data_dir / "lake"))),
        artifacts_root=_storage_root("MLOPS_ARTIFACTS_ROOT", _env("MLOPS_ARTIFACTS_ROOT", str(data_dir))),
        clock_now=clock_now,
        replay_anchor=date.fromisoformat(_env("MLOPS_REPLAY_ANCHOR", DEFAULT_REPLAY_ANCHOR)),
        scale_factor=int(_env("MLOPS_SCALE_FACTOR", "1")),
        reporting_lag_hours=float(_env("MLOPS_REPORTING_LAG_HOURS", "6")),
        schedule_lead_hours=float(_env("MLOPS_SCHEDULE_LEAD_HOURS", "24")),
        feast_online_store=_env("MLOPS_FEAST_ONLINE_STORE", "sqlite").lower(),
        feast_registry_url=_env("MLOPS_FEAST_REGISTRY_URL", ""),
        feast_chunk_hours=int(_env("MLOPS_FEAST_CHUNK_HOURS", "24")),
        prediction_lead_hours=float(_env("MLOPS_PREDICTION_LEAD_HOURS", "2")),
        mlflow_tracking_uri=_env("MLFLOW_TRACKING_URI", f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}"),
        model_name=_env("MLOPS_MODEL_NAME", "flight_delay"),
        serving_url=_env("MLOPS_SERVING_URL", "http://127.0.0.1:8000").rstrip("/"),
        prediction_log_url=_env(
            "MLOPS_PREDICTION_LOG_URL", f"sqlite:///{data_dir / 'predictions' / 'prediction_log.db'}"
        ),
        decision_threshold=float(_env("MLOPS_DECISION_THRESHOLD", "0.4")),
        smoke_max_latency_ms=float(_env("MLOPS_SMOKE_MAX_LATENCY_MS", "100")),
        monitoring_url=_env("MLOPS_MONITORING_URL", f"sqlite:///{data_dir / 'monitoring' / 'monitoring.db'}"),
        serving_token=_env("MLOPS_SERVING_TOKEN", ""),
        serving_allowed_hosts=tuple(
            h.strip()
            for h in _env("MLOPS_SERVING_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
            if h.strip()
        ),
        serving_departure_days_ahead=float(_env("MLOPS_SERVING_DEPARTURE_DAYS_AHEAD", "7")),
        serving_departure_days_back=float(_env("MLOPS_SERVING_DEPARTURE_DAYS_BACK", "400")),
        serving_shadow=_env("MLOPS_SERVING_SHADOW", "on").strip().lower() not in {"off", "0", "false", "no"},
        approval_timeout_hours=float(_env("MLOPS_APPROVAL_TIMEOUT_HOURS", "48")),
        approval_reminder_hours=float(_env("MLOPS_APPROVAL_REMINDER_HOURS", "24")),
        promotion=_promotion(_env("MLOPS_PROMOTION", "deploy")),
        shadow_nights=int(_env("MLOPS_SHADOW_NIGHTS", "3")),
    )


def _promotion(value: str) -> str:
    if value not in PROMOTIONS:
        raise ValueError(f"MLOPS_PROMOTION={value!r}: it must be one of {', '.join(PROMOTIONS)}")
    return value
