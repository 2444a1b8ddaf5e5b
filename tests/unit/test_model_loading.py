"""The one model loader (include/registry/tracking.load_model), registry outages, the gate's
unmeasurable champion, and deployment / rollback as a transaction, all on a real local MLflow
(SQLite + local artifacts in tmp_path); the online service is replaced by two functions."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest

from include.core.settings import CHAMPION, get_settings
from include.registry import deploy, tracking
from include.registry.tracking import RegistryUnavailableError, UntrustedModelError
from tests.fixtures import Boobytrap
from tests.ports import free_port

COLUMNS = ["a", "b", "c"]
PASSED = {"gate.decision": "deploy", "smoke_test": "passed"}


def untrusted_double(x):
    """A function of ours inside a pipeline: a type skops does not trust, nor do we."""
    return x * 2


@pytest.fixture
def local_mlflow(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLOPS_LAKE_ROOT", raising=False)
    previous = mlflow.get_tracking_uri()
    yield get_settings()
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(previous)


def frame(rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = pd.DataFrame(rng.normal(size=(rows, 3)), columns=COLUMNS)
    y = (x["a"] + rng.normal(scale=0.5, size=rows) > 0).astype(int).to_numpy()
    return x, y


def register(settings, model, tags: dict[str, str] | None = None, alias: str | None = None, **log_kw) -> str:
    """Log `model` like train_candidate does (or with `log_kw` overrides), register it, tag it."""
    import mlflow
    from mlflow.models import infer_signature

    x, _ = frame(5)
    tracking.client(settings)
    with mlflow.start_run(experiment_id=tracking.experiment_id(settings)):
        if "signature" not in log_kw:
            log_kw["signature"] = infer_signature(x, np.zeros(len(x)))
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"], **log_kw)
    version = str(mlflow.register_model(info.model_uri, settings.model_name).version)
    client = tracking.client(settings)
    for key, value in (tags or {}).items():
        client.set_model_version_tag(settings.model_name, version, key, value)
    if alias:
        client.set_registered_model_alias(settings.model_name, alias, version)
    return version


def fitted_logistic():
    from sklearn.linear_model import LogisticRegression

    x, y = frame()
    return LogisticRegression().fit(x, y)


def fitted_hgb_pipeline():
    """A pipeline with the types SKOPS_TRUSTED_TYPES names (HGB's TreePredictor)."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = frame()
    return make_pipeline(StandardScaler(), HistGradientBoostingClassifier(max_iter=5)).fit(x, y)


# --- the loader ------------------------------------------------------------------------------


def test_every_process_runs_with_pickle_deserialization_off(tmp_path):
    from include.core.runtime_env import airflow_env

    assert airflow_env(tmp_path)["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"
    assert os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] == "false"  # the test session's too
    from mlflow.environment_variables import MLFLOW_ALLOW_PICKLE_DESERIALIZATION

    assert MLFLOW_ALLOW_PICKLE_DESERIALIZATION.name == "MLFLOW_ALLOW_PICKLE_DESERIALIZATION"
    assert MLFLOW_ALLOW_PICKLE_DESERIALIZATION.get() is False  # what MLflow 3.17 reads


def test_a_pickle_version_is_refused_and_never_unpickled(local_mlflow, tmp_path):
    import mlflow
    from mlflow.exceptions import MlflowException

    settings = local_mlflow
    # control: the payload is live; unpickling it really writes its marker
    live = tmp_path / "live-marker"
    pickle.loads(pickle.dumps(Boobytrap(live)))
    assert live.exists()

    marker = tmp_path / "unpickled-marker"
    version = register(
        settings,
        Boobytrap(marker),
        tags=PASSED,
        alias=CHAMPION,
        serialization_format="pickle",
        signature=False,
    )
    assert not marker.exists()
    with pytest.raises(UntrustedModelError) as refused:
        tracking.load_model(settings, version)
    message = str(refused.value)
    assert f"version {version}" in message and "serialization_format 'pickle'" in message
    assert "unchanged" in message and "UntrustedModelError" in message
    with pytest.raises(UntrustedModelError):
        tracking.load_model(settings, version, candidate=True)  # the gate's own load refuses too
    # MLflow's own loader refuses too in this process (MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false)
    with pytest.raises(MlflowException, match="MLFLOW_ALLOW_PICKLE_DESERIALIZATION"):
        mlflow.sklearn.load_model(tracking.model_uri(settings, version))
    assert not marker.exists()


def test_a_skops_version_with_an_untrusted_type_is_refused_even_if_it_trusts_itself(local_mlflow):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    settings = local_mlflow
    x, y = frame()
    model = make_pipeline(FunctionTransformer(untrusted_double), LogisticRegression()).fit(x, y)
    own = f"{__name__}.untrusted_double"
    # the artifact lists its own type as trusted in its MLmodel: MLflow's loader would accept it
    version = register(settings, model, tags=PASSED, skops_trusted_types=[*tracking.SKOPS_TRUSTED_TYPES, own])
    with pytest.raises(UntrustedModelError, match="types we do not trust") as refused:
        tracking.load_model(settings, version)
    assert own in str(refused.value)


def test_a_version_without_a_passed_gate_or_smoke_test_is_refused(local_mlflow):
    settings = local_mlflow
    ungated = register(settings, fitted_logistic(), tags={"smoke_test": "passed"})
    with pytest.raises(UntrustedModelError, match=r"gate\.decision is 'not set'"):
        tracking.load_model(settings, ungated)
    rejected = register(settings, fitted_logistic(), tags={"gate.decision": "reject", "smoke_test": "passed"})
    with pytest.raises(UntrustedModelError, match=r"gate\.decision is 'reject'"):
        tracking.load_model(settings, rejected)
    unsmoked = register(settings, fitted_logistic(), tags={"gate.decision": "deploy"})
    with pytest.raises(UntrustedModelError, match="smoke_test is 'not set'"):
        tracking.load_model(settings, unsmoked)
    # the gate's and the smoke test's own load of the version they judge needs no tags yet
    assert tracking.load_model(settings, ungated, candidate=True).predict_proba(frame(3)[0]).shape == (3, 2)


def test_control_a_gated_smoke_passed_skops_version_loads(local_mlflow):
    settings = local_mlflow
    model = fitted_hgb_pipeline()
    version = register(settings, model, tags=PASSED, skops_trusted_types=tracking.SKOPS_TRUSTED_TYPES)
    loaded = tracking.load_model(settings, version)
    x, _ = frame(20, seed=1)
    assert np.allclose(loaded.predict_proba(x), model.predict_proba(x))


def test_the_service_keeps_its_model_and_reports_a_refused_champion(local_mlflow, tmp_path):
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from include.serving.app import create_app

    settings = replace(local_mlflow, serving_token="reload-token")
    good = register(settings, fitted_logistic(), tags=PASSED, alias=CHAMPION)
    # no lifespan: no Feast; /reload (with the service's token) refreshes the holder
    app = TestClient(
        create_app(settings),
        base_url="http://127.0.0.1",
        headers={"Authorization": "Bearer reload-token"},
    )
    assert app.post("/reload").json()["version"] == good
    marker = tmp_path / "served-marker"
    bad = register(
        settings,
        Boobytrap(marker),
        tags=PASSED,
        alias=CHAMPION,
        serialization_format="pickle",
        signature=False,
    )
    answer = app.post("/reload").json()
    assert answer["version"] == good and f"version {bad} refused" in answer["error"]
    health = app.get("/health").json()
    assert health["model_version"] == good
    assert (
        health["refused"]["version"] == bad and "serialization_format 'pickle'" in health["refused"]["reason"]
    )
    assert not marker.exists()
    tracking.client(settings).set_registered_model_alias(settings.model_name, CHAMPION, good)
    app.post("/reload")
    assert app.get("/health").json()["refused"] is None  # cleared once champion loads again


# --- outages are not "no alias" --------------------------------------------------------------


def test_get_alias_on_a_stopped_mlflow_raises_and_a_missing_alias_is_none(local_mlflow, monkeypatch):
    settings = local_mlflow
    # control: a registry that answers and has no such model / no such alias -> None
    assert tracking.champion(settings) is None
    register(settings, fitted_logistic())
    assert tracking.champion(settings) is None and tracking.challenger(settings) is None

    port = free_port()  # nothing listens there
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    down = get_settings()
    with pytest.raises(RegistryUnavailableError) as outage:
        tracking.champion(down)
    message = str(outage.value)
    assert f"127.0.0.1:{port}" in message and "read the alias 'champion'" in message
    assert "not read as 'no champion'" in message and "RegistryUnavailableError" in message
    from include.serving.champion import load_champion

    with pytest.raises(RegistryUnavailableError):  # score_flights fails (and retries), never skips
        load_champion(down)


def test_registry_call_names_an_outage_and_lets_other_errors_through():
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

    refused = "API request to http://u:secret@127.0.0.1:1/api failed: Connection refused"
    with pytest.raises(RegistryUnavailableError) as outage, tracking.registry_call("open the training run"):
        raise MlflowException(refused)
    message = str(outage.value)
    assert "could not open the training run" in message and "secret" not in message
    # control: "does not exist" is an answer, and our own errors are not outages
    with pytest.raises(MlflowException), tracking.registry_call("read a version"):
        raise MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST)
    with pytest.raises(ValueError), tracking.registry_call("read a version"):
        raise ValueError("a bug of ours")


# --- the gate: a champion that cannot be measured rejects -------------------------------------


def test_a_champion_that_cannot_be_measured_rejects_the_candidate(local_mlflow):
    from include.training import gate
    from include.training.gate_steps import _champion_evidence

    settings = local_mlflow
    x, y = frame()
    x = x.assign(late=y, carrier="AA", origin="JFK")  # a holdout: inputs, label, slice columns
    champion = register(settings, fitted_logistic(), tags=PASSED, alias=CHAMPION)
    candidate = register(settings, fitted_logistic())
    evidence, _, version, problem = _champion_evidence(settings, candidate, x, y)
    assert evidence is not None and problem is None and version == champion  # control: measured

    evidence, _, _, problem = _champion_evidence(settings, candidate, x.drop(columns=["c"]), y)
    assert evidence is None and problem is not None and "missing ['c']" in problem

    client = tracking.client(settings)
    client.delete_model_version_tag(settings.model_name, champion, "gate.decision")  # now refused
    evidence, _, _, problem = _champion_evidence(settings, candidate, x, y)
    assert evidence is None and problem is not None and "UntrustedModelError" in problem

    ok = gate.ModelEvidence(0.9)
    args = {"baseline_roc_auc": 0.5, "signature_ok": True, "size_mb": 1.0, "latency_ms": 1.0}
    assert gate.decide(ok, champion=None, **args).passed  # control: the first model's rules
    rejected = gate.decide(ok, champion=None, champion_unmeasured=problem, **args)
    assert not rejected.passed and rejected.reasons == [f"champion_measured: {problem}"]


# --- deployment as a transaction, rollback rules ---------------------------------------------


@pytest.fixture
def service(monkeypatch):
    """The online service, as two functions: `state["fail"]` makes the check fail."""
    state = {"fail": False, "reloads": 0}

    def reload(settings, timeout=60.0):
        state["reloads"] += 1
        return {"version": "?", "error": None}

    def check(settings, version, probe):
        if state["fail"]:
            raise deploy.DeploymentError(f"the online service serves version 1, expected {version}")
        return {"score": 0.5, "model_version": version}

    monkeypatch.setattr(deploy, "serving_reload", reload)
    monkeypatch.setattr(deploy, "serving_check", check)
    monkeypatch.setattr(deploy, "probe_from_lake", lambda settings: {})
    return state


def tags_of(settings, version: str) -> dict[str, str]:
    return dict(tracking.client(settings).get_model_version(settings.model_name, version).tags)


def test_a_failed_serving_check_restores_champion(local_mlflow, service):
    settings = local_mlflow
    first = register(settings, fitted_logistic(), tags=PASSED, alias=CHAMPION)
    second = register(settings, fitted_logistic(), tags=PASSED)
    service["fail"] = True
    with pytest.raises(deploy.DeploymentError) as failed:
        deploy.move_champion(settings, second, {}, {"dag_run": "run-1"})
    assert f"champion is version {first} again" in str(failed.value)
    assert tracking.champion(settings).version == first
    assert tags_of(settings, first)["champion.restored_after_failed_deploy_of"] == second
    assert tags_of(settings, second)["champion.previous"] == first  # tags were written first
    # control: the same move with a healthy service goes through
    service["fail"] = False
    assert deploy.move_champion(settings, second, {}, {"dag_run": "run-1"})["previous"] == first
    assert tracking.champion(settings).version == second


def test_a_failed_restore_says_both(local_mlflow, service, monkeypatch):
    settings = local_mlflow
    first = register(settings, fitted_logistic(), tags=PASSED, alias=CHAMPION)
    second = register(settings, fitted_logistic(), tags=PASSED)
    service["fail"] = True

    def mlflow_gone(*args, **kwargs):
        raise ConnectionError("MLflow went away")

    monkeypatch.setattr(tracking, "set_alias", mlflow_gone)  # what _restore calls
    with pytest.raises(deploy.DeploymentError) as failed:
        deploy.move_champion(settings, second, {}, {"dag_run": "run-1"})
    message = str(failed.value)
    assert "failed on the serving surface" in message and "expected" in message
    assert f"Restoring champion to {first} FAILED too" in message and "MLflow went away" in message
    assert f"may point at version {second}" in message and "rollback_model" in message


def test_a_retry_verifies_only_and_keeps_the_first_attempts_previous(local_mlflow, service):
    settings = local_mlflow
    first = register(settings, fitted_logistic(), tags=PASSED, alias=CHAMPION)
    second = register(settings, fitted_logistic(), tags=PASSED)
    record = {"dag_run": "run-1", "deployed_by": "alice"}
    assert deploy.move_champion(settings, second, {}, record)["previous"] == first
    since = tags_of(settings, second)["champion.since"]

    again = deploy.move_champion(settings, second, {}, record)  # the task retried
    assert again["previous"] == first  # not the new version itself
    assert tags_of(settings, second)["champion.previous"] == first
    assert tags_of(settings, second)["champion.since"] == since  # nothing re-recorded

    service["fail"] = True  # a retry whose verification fails goes back to the first previous
    with pytest.raises(deploy.DeploymentError, match=f"champion is version {first} again"):
        deploy.move_champion(settings, second, {}, record)
    assert tracking.champion(settings).version == first


def test_rollback_only_to_a_gated_version_unless_overridden(local_mlflow, service):
    settings = local_mlflow
    x, _ = frame(60, seed=2)
    rejected = register(settings, fitted_logistic(), tags={"gate.decision": "reject", "smoke_test": "passed"})
    champion = register(settings, fitted_logistic(), tags=PASSED, alias=CHAMPION)
    record = {"rolled_back_by": "bob", "reason": "the new one misbehaves", "dag_run": "rb-1"}

    with pytest.raises(deploy.RollbackRefusedError) as refused:
        deploy.rollback(settings, rejected, record, sample=lambda: x)
    message = str(refused.value)
    assert "gate.decision is 'reject'" in message and f"champion unchanged ({champion})" in message
    assert "override=true" in message and "RollbackRefusedError" in message
    assert tracking.champion(settings).version == champion

    with pytest.raises(ValueError, match="needs a reason"):
        deploy.rollback(settings, rejected, {**record, "reason": ""}, sample=lambda: x, override=True)

    result = deploy.rollback(settings, rejected, record, sample=lambda: x, override=True)
    assert result == {
        "version": rejected,
        "previous": champion,
        "probe": {"score": 0.5, "model_version": rejected},
    }
    assert tracking.champion(settings).version == rejected
    tags = tags_of(settings, rejected)
    assert tags["gate.override_reason"] == "the new one misbehaves" and tags["gate.override_by"] == "bob"
    assert tags["smoke_test"] == "passed" and tags["champion.rolled_back_by"] == "bob"
    tracking.load_model(settings, rejected)  # the loader accepts the recorded override

    # control: a gated, smoke-passed version needs no override
    assert deploy.rollback(settings, champion, record, sample=lambda: x)["version"] == champion


def test_skops_name_lookups_on_airflow_shims_stay_out_of_task_logs() -> None:
    """skops reads names from every loaded module; Airflow's deprecated shims warn on each read
    (~1,150 lines per training task log). Inside quiet_skops they do not; outside (control) they do."""
    import warnings

    import airflow.utils.timezone as shim

    from include.registry.tracking import quiet_skops

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_skops():
            getattr(shim, "agm", None)
        assert caught == []
        getattr(shim, "airy", None)
    assert any("airflow.utils.timezone.airy" in str(w.message) for w in caught)


def test_a_retried_register_best_reuses_its_version_instead_of_registering_twice(local_mlflow):
    import mlflow
    from mlflow.models import infer_signature

    from include.training.steps import register_best

    settings = local_mlflow
    x, _ = frame(5)
    tracking.client(settings)
    with mlflow.start_run(experiment_id=tracking.experiment_id(settings)) as parent:
        pass
    with mlflow.start_run(experiment_id=tracking.experiment_id(settings)) as child:
        info = mlflow.sklearn.log_model(
            fitted_logistic(),
            name="model",
            pip_requirements=["scikit-learn"],
            signature=infer_signature(x, np.zeros(5)),
        )
    candidate = {
        "name": "logistic_regression",
        "spec": {"model": "logistic_regression"},
        "run_id": child.info.run_id,
        "model_uri": info.model_uri,
        "metrics": {"roc_auc": 0.7},
        "size_mb": 0.1,
        "latency_ms": 1.0,
    }
    first = register_best(settings, [candidate], parent.info.run_id)
    again = register_best(settings, [candidate], parent.info.run_id)  # the task's retry
    versions = tracking.client(settings).search_model_versions(f"name = '{settings.model_name}'")
    assert first["version"] == again["version"] and len(versions) == 1
    other = {**candidate, "run_id": parent.info.run_id}  # control: another run's model is a new version
    with mlflow.start_run(run_id=parent.info.run_id):
        other["model_uri"] = mlflow.sklearn.log_model(
            fitted_logistic(),
            name="model",
            pip_requirements=["scikit-learn"],
            signature=infer_signature(x, np.zeros(5)),
        ).model_uri
    assert register_best(settings, [other], parent.info.run_id)["version"] != first["version"]
