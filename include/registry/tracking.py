"""MLflow: where runs, models and aliases live. No Airflow here.

One setting (`MLFLOW_TRACKING_URI`, see include/core/settings.py) says where MLflow is: a local SQLite
file by default, `make run`'s MLflow server, or a team server on PostgreSQL; nothing else changes.
Models are registered under one name; the aliases `champion` and `challenger` say which version
serves and which was evaluated last (never the deprecated stages). Every alias move is recorded
as tags on the version it moves to, so the registry itself is the deployment history.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

from include.core.runtime_env import NO_PICKLE
from include.core.settings import CHALLENGER, CHAMPION, PROJECT_DIR, Settings
from include.core.urls import redact_url

EXPERIMENT = "flight_delay"


@dataclass(frozen=True)
class AliasedVersion:
    version: str
    run_id: str | None
    tags: dict[str, str]


def is_local(uri: str) -> bool:
    """A tracking URI that MLflow opens itself (a database file), rather than a server."""
    return uri.startswith(("sqlite:", "file:", "postgresql:", "mysql:")) or "://" not in uri


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
    os.environ.update(NO_PICKLE)  # every process that talks to MLflow, whatever started it
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


def git_dirty() -> str:
    """'true' when the checkout has uncommitted changes to tracked files (the commit alone does not
    say what ran), 'false' when clean, 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "-C", str(PROJECT_DIR), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if out.returncode != 0:
        return "unknown"
    return "true" if out.stdout.strip() else "false"


def lock_sha256() -> str:
    """The sha256 of requirements.lock: every library version the code ran with."""
    import hashlib

    lock = PROJECT_DIR / "requirements.lock"
    return hashlib.sha256(lock.read_bytes()).hexdigest() if lock.is_file() else "unknown"


def code_tags() -> dict[str, str]:
    """The code a run ran: commit, whether the tree was dirty, the lock's hash."""
    return {"git_commit": git_commit(), "git_dirty": git_dirty(), "lock_sha256": lock_sha256()}


def pip_requirements() -> list[str]:
    """Explicit requirements of a logged model (inferring them costs ~20 s per model)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "skops")]


@contextlib.contextmanager
def quiet_skops() -> Iterator[None]:
    """skops finds a function's module by reading its name from every loaded module; on Airflow's
    deprecated compatibility modules each read warns, which put ~1,150 lines into every training
    task's log. Those warnings say nothing about the model: hide them while skops works."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The `airflow\\.", category=FutureWarning)
        yield


SKOPS_TRUSTED_TYPES = [
    # Types our own pipelines contain that skops does not trust by default. We build and log
    # these models ourselves; loading a model from elsewhere would need its own review.
    "functools.partial",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


class RegistryUnavailableError(RuntimeError):
    """The MLflow registry could not be asked (connection refused, a 5xx, a timeout): not "no alias"."""


class UntrustedModelError(RuntimeError):
    """A registered version was refused for loading (format, types or missing gate/smoke tags)."""


def is_missing(exc: BaseException) -> bool:
    """True when an MLflow error says the thing asked about does not exist (and only then).

    A missing model is RESOURCE_DOES_NOT_EXIST; MLflow 3.17's stores report a missing alias as
    INVALID_PARAMETER_VALUE "Registered model alias ... not found." (sqlalchemy and file store,
    and the server passes that on)."""
    from mlflow.exceptions import MlflowException

    if not isinstance(exc, MlflowException):
        return False
    if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
        return True
    message = str(exc.message)
    return exc.error_code == "INVALID_PARAMETER_VALUE" and "alias" in message and "not found" in message


def registry_unavailable(what: str, exc: BaseException) -> NoReturn:
    """Raise the project error for an MLflow call that failed for any reason but "does not exist"."""
    import mlflow

    uri = redact_url(mlflow.get_registry_uri())
    detail = redact_url(str(exc))[:400]
    raise RegistryUnavailableError(
        f"could not {what} in the MLflow registry ({uri}): {type(exc).__name__}: {detail}. "
        "Nothing was changed: this is not read as 'no champion'. Check that MLflow answers "
        "(make run starts it; .airflow/logs/mlflow.log), then clear the task; it also retries. "
        "README 'On call' > RegistryUnavailableError."
    ) from exc


@contextlib.contextmanager
def registry_call(what: str) -> Iterator[None]:
    """MLflow calls inside the block that fail (MLflow down, a 5xx, a timeout) raise
    RegistryUnavailableError naming `what`; "does not exist", other errors and ours pass through."""
    import requests
    from mlflow.exceptions import MlflowException

    try:
        yield
    except (RegistryUnavailableError, UntrustedModelError):
        raise
    except (MlflowException, requests.exceptions.RequestException) as exc:
        if is_missing(exc):
            raise  # "does not exist" is an answer, not an outage: the caller's error to name
        registry_unavailable(what, exc)


def alias_version(mlflow_client: Any, model_name: str, alias: str) -> Any | None:
    """The ModelVersion an alias points at, on a client the caller already holds, or None when
    the alias (or the model) does not exist. Any other failure (MLflow down, a 5xx) raises
    RegistryUnavailableError: an outage must fail the task, never look like "no champion"."""
    try:
        return mlflow_client.get_model_version_by_alias(model_name, alias)
    except Exception as exc:
        if is_missing(exc):
            return None
        registry_unavailable(f"read the alias '{alias}' of model {model_name}", exc)


def get_alias(settings: Settings, alias: str) -> AliasedVersion | None:
    """The version an alias points at, or None when the alias (or the model) does not exist;
    RegistryUnavailableError when MLflow cannot be asked."""
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
    client(settings).set_registered_model_alias(settings.model_name, alias, str(version))
    record_alias_move(settings, alias, version, **record)


def record_alias_move(settings: Settings, alias: str, version: str, **record: str) -> None:
    """The tags of a move of `alias` to `version` (`<alias>.since` and `<alias>.<key>`), without
    moving it: a deployment writes these first and moves the alias inside its guarded block."""
    c = client(settings)
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with registry_call(f"record the move of '{alias}' to version {version}"):
        c.set_model_version_tag(settings.model_name, str(version), f"{alias}.since", stamp)
        for key, value in record.items():
            c.set_model_version_tag(settings.model_name, str(version), f"{alias}.{key}", str(value))


def model_uri(settings: Settings, version: str) -> str:
    return f"models:/{settings.model_name}/{version}"


# A version serves (champion, batch scoring, a rollback target) only once the gate passed it and its
# smoke test passed; a rollback with Params override=true records its reason in GATE_OVERRIDE_TAG
# instead of a passed gate.
GATE_TAG, GATE_PASSED = "gate.decision", "deploy"
SMOKE_TAG, SMOKE_PASSED = "smoke_test", "passed"
GATE_OVERRIDE_TAG = "gate.override_reason"


def not_deployable(tags: dict[str, str]) -> list[str]:
    """Why a version with these tags may not serve (empty: it may)."""
    problems = []
    if tags.get(GATE_TAG) != GATE_PASSED and not tags.get(GATE_OVERRIDE_TAG):
        problems.append(f"{GATE_TAG} is {tags.get(GATE_TAG) or 'not set'!r}, not {GATE_PASSED!r}")
    if tags.get(SMOKE_TAG) != SMOKE_PASSED:
        problems.append(f"{SMOKE_TAG} is {tags.get(SMOKE_TAG) or 'not set'!r}, not {SMOKE_PASSED!r}")
    return problems


def refuse_model(settings: Settings, version: str, why: str, cause: BaseException | None = None) -> NoReturn:
    raise UntrustedModelError(
        f"refused to load {settings.model_name} version {version}: {why}. Nothing of it was "
        "deserialized; the champion and the model being served are unchanged. "
        "README 'On call' > UntrustedModelError."
    ) from cause


def load_model(settings: Settings, version: str, *, candidate: bool = False, serving: bool = False) -> Any:
    """The scikit-learn pipeline of a registered version: the one way project code loads a model.

    Only a skops artifact loads, with our SKOPS_TRUSTED_TYPES (never the list the artifact itself
    declares), no `code` paths, never pickle; and, unless `candidate` (the gate's and the smoke
    test's own load of the version they judge), only a version whose tags show a passed gate and a
    passed smoke test. Anything else raises UntrustedModelError before a byte is deserialized.

    With `serving` (batch and online scoring), a version whose smoke test proved its compiled form
    (`serving.path` = fast) loads as that FastModel instead: only the bytes whose sha256 the
    smoke test recorded, only in fast_model's JSON format. Otherwise the pipeline, as above."""
    c = client(settings)
    try:
        mv = c.get_model_version(settings.model_name, str(version))
    except Exception as exc:
        if is_missing(exc):
            refuse_model(settings, version, "no such version in the registry", exc)
        registry_unavailable(f"read version {version} of {settings.model_name}", exc)
    tags = dict(mv.tags)
    if not candidate and (problems := not_deployable(tags)):
        refuse_model(settings, version, "; ".join(problems))
    if serving and tags.get(SERVING_PATH_TAG) == "fast":
        return _load_fast(settings, version, mv.run_id, tags.get(FAST_SHA_TAG, ""))
    return _load_pipeline(settings, version)


# The serving path a version's smoke test chose (include/registry/deploy.py), and the sha256 of its
# compiled form (stored with the version's run as fast_model/fast_model.json).
SERVING_PATH_TAG, FAST_SHA_TAG = "serving.path", "serving.fast_model_sha256"
FAST_ARTIFACT_DIR = "fast_model"


def _load_fast(settings: Settings, version: str, run_id: str, recorded: str) -> Any:
    import tempfile

    import mlflow

    from include.registry import fast_model

    uri = f"runs:/{run_id}/{FAST_ARTIFACT_DIR}/{fast_model.FILE_NAME}"
    with tempfile.TemporaryDirectory(prefix="fast-model-") as tmp:
        try:
            data = Path(mlflow.artifacts.download_artifacts(uri, dst_path=tmp)).read_bytes()
        except Exception as exc:
            registry_unavailable(f"download the compiled model of version {version}", exc)
    if not recorded or fast_model.sha256(data) != recorded:
        why = f"its compiled model's sha256 is not the one its smoke test recorded ({recorded or 'none'})"
        refuse_model(settings, version, why)
    try:
        return fast_model.loads(data)
    except (ValueError, KeyError, TypeError) as exc:
        refuse_model(settings, version, f"its compiled model does not load: {exc}", exc)


def _load_pipeline(settings: Settings, version: str) -> Any:
    import tempfile

    import mlflow
    import skops.io
    import yaml
    from skops.io.exceptions import UntrustedTypesFoundException

    with tempfile.TemporaryDirectory(prefix="model-") as tmp:
        try:
            local = Path(mlflow.artifacts.download_artifacts(model_uri(settings, version), dst_path=tmp))
        except Exception as exc:
            registry_unavailable(f"download the artifacts of version {version}", exc)
        mlmodel = yaml.safe_load((local / "MLmodel").read_text(encoding="utf-8")) or {}
        flavors = mlmodel.get("flavors") or {}
        sk = flavors.get("sklearn") or {}
        fmt = sk.get("serialization_format", "pickle")
        if fmt != "skops":
            why = f"its MLmodel declares serialization_format {fmt!r}, not 'skops'"
            refuse_model(settings, version, why)
        if sk.get("code") or (flavors.get("python_function") or {}).get("code"):
            refuse_model(settings, version, "its MLmodel declares `code` paths (code shipped with it)")
        path = (local / str(sk.get("pickled_model", ""))).resolve()
        if not path.is_file() or local.resolve() not in path.parents:
            why = f"its model file {sk.get('pickled_model')!r} is not in the artifact"
            refuse_model(settings, version, why)
        with quiet_skops():
            extra = sorted(set(skops.io.get_untrusted_types(file=path)) - set(SKOPS_TRUSTED_TYPES))
        if extra:
            refuse_model(settings, version, f"its skops file holds types we do not trust: {extra}")
        try:
            with quiet_skops():
                return skops.io.load(path, trusted=SKOPS_TRUSTED_TYPES)
        except UntrustedTypesFoundException as exc:
            refuse_model(settings, version, f"skops found untrusted types: {exc}", exc)


def model_input_columns(settings: Settings, version: str) -> list[str]:
    """Input column names from the version's logged signature."""
    from mlflow.models import get_model_info

    client(settings)
    with registry_call(f"read the signature of version {version}"):
        info = get_model_info(model_uri(settings, version))
    if info.signature is None:
        return []
    return [c.name for c in info.signature.inputs.inputs]
