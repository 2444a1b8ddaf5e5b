"""MLflow: where runs, models and aliases live. No Airflow here.

One setting (`MLFLOW_TRACKING_URI`, see include/core/settings.py) says where MLflow is: a local SQLite
file by default, `make run`'s MLflow server, or a team server on PostgreSQL; nothing else changes.
Models are registered under one name; the aliases `champion` and `challenger` say which version
serves and which was evaluated last (never the deprecated stages). Every alias move is recorded
as tags on the version it moves to, so the registry itself is the deployment history.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from include.core.settings import CHALLENGER, CHAMPION, PROJECT_DIR, Settings

EXPERIMENT = "flight_delay"

_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s?#]*@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|token|access_token|secret|api_key|key|sig|signature)=)[^&\s]+",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class AliasedVersion:
    version: str
    run_id: str | None
    tags: dict[str, str]


def is_local(uri: str) -> bool:
    """A tracking URI that MLflow opens itself (a database file), rather than a server."""
    return uri.startswith(("sqlite:", "file:", "postgresql:", "mysql:")) or "://" not in uri


def redact_url(text: str) -> str:
    """`text` with any `user:password@` of a URL removed and secret-looking query values masked.

    Why here: the tracking URI is where credentials usually sit, and whatever shows it (a model
    card, the on-call page, a log line, the serving URL beside it) must not leak them."""
    text = _CREDENTIALS.sub(lambda m: m.group("scheme"), str(text))
    return _SECRET_QUERY.sub(lambda m: m.group("key") + "***", text)


def ui_base(settings: Settings) -> str | None:
    """The MLflow UI's address when MLflow is a server (a local database has no UI to link to)."""
    uri = settings.mlflow_tracking_uri
    return redact_url(uri).rstrip("/") if uri.startswith(("http://", "https://")) else None


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    """A run's page in the MLflow UI at `base` (see `ui_base`)."""
    return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"


def model_url(base: str, model_name: str, version: str | None = None) -> str:
    """A registered model's page in the MLflow UI, or one of its versions'."""
    url = f"{base}/#/models/{quote(model_name)}"
    return url if version is None else f"{url}/versions/{version}"


def client(settings: Settings) -> Any:
    """An MlflowClient on the configured tracking + registry URI (creates the local folder)."""
    import mlflow
    from mlflow import MlflowClient

    uri = settings.mlflow_tracking_uri
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def experiment_id(settings: Settings, name: str = EXPERIMENT) -> str:
    """An experiment (the project's by default); artifacts go under the data folder when MLflow
    is local."""
    c = client(settings)
    found = c.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    location = settings.mlflow_artifacts_uri if is_local(settings.mlflow_tracking_uri) else None
    try:
        return c.create_experiment(name, artifact_location=location)
    except Exception:  # created meanwhile by a parallel task
        found = c.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


def git_commit() -> str:
    """The project's commit (lineage); 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def pip_requirements() -> list[str]:
    """Explicit requirements of a logged model (inferring them costs ~20 s per model)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops")]


SKOPS_TRUSTED_TYPES = [
    # Types our own pipelines contain that skops does not trust by default. We build and log
    # these models ourselves; loading a model from elsewhere would need its own review.
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


def alias_version(mlflow_client: Any, model_name: str, alias: str) -> Any | None:
    """The ModelVersion an alias points at, on a client the caller already holds, or None when
    the alias (or the model) does not exist: a reader shows "none" rather than failing."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def get_alias(settings: Settings, alias: str) -> AliasedVersion | None:
    """The version an alias points at, or None when the alias (or the model) does not exist."""
    mv = alias_version(client(settings), settings.model_name, alias)
    if mv is None:
        return None
    return AliasedVersion(str(mv.version), mv.run_id, dict(mv.tags))


def champion(settings: Settings) -> AliasedVersion | None:
    return get_alias(settings, CHAMPION)


def challenger(settings: Settings) -> AliasedVersion | None:
    return get_alias(settings, CHALLENGER)


def set_alias(settings: Settings, alias: str, version: str, **record: str) -> None:
    """Point `alias` at `version` and record who, when and why as tags on that version."""
    c = client(settings)
    c.set_registered_model_alias(settings.model_name, alias, str(version))
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    c.set_model_version_tag(settings.model_name, str(version), f"{alias}.since", stamp)
    for key, value in record.items():
        c.set_model_version_tag(settings.model_name, str(version), f"{alias}.{key}", str(value))


def model_uri(settings: Settings, version: str) -> str:
    return f"models:/{settings.model_name}/{version}"


def load_model(settings: Settings, version: str) -> Any:
    """The scikit-learn pipeline of a registered version (skops format: safe to load)."""
    import mlflow.sklearn

    client(settings)
    return mlflow.sklearn.load_model(model_uri(settings, version))


def model_input_columns(settings: Settings, version: str) -> list[str]:
    """Input column names from the version's logged signature."""
    from mlflow.models import get_model_info

    client(settings)
    info = get_model_info(model_uri(settings, version))
    if info.signature is None:
        return []
    return [c.name for c in info.signature.inputs.inputs]
