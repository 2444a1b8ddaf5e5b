"""The MLflow server goes away in the middle of a task, and the task is killed after moving
the alias: through Airflow (dag.test, which retries a failed task like the scheduler does),
with a real MLflow server (REST API, artifacts served by it) on loopback.

Each outage test stops the server just as one task starts its MLflow work
(prepare_training_data, evaluate_gate, deploy_champion, score_flights): the attempt must fail
with an error that names MLflow and the runbook row (never "no champion", never a skip or a
rejection), `champion` must be unchanged, and once the server is back Airflow's retry must end
where an undisturbed run ends. The kill test SIGKILLs the deployment's process right after the
alias moved (no except, no finally runs), then lets the retry finish the transaction.

The MLflow client's own HTTP retries are cut to one for these tests (MLFLOW_HTTP_REQUEST_MAX_RETRIES)
so that an attempt fails in seconds rather than after MLflow's two-minute backoff; what is tested
is what happens after the client gives up.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from include.core.settings import get_settings
from tests.e2e.conftest import free_port, online_service, own_model_world, wait_healthy

DAYS = [datetime(2013, 6, 1, tzinfo=UTC) + timedelta(days=i) for i in range(30)]
# The window of test_train_model, whose first model passes the gate; one candidate keeps it short.
TRAIN = {
    "window_end": "2013-06-28",
    "window_days": 21,
    "holdout_days": 4,
    "grid": [{"model": "hist_gradient_boosting", "max_depth": 4, "learning_rate": 0.1, "max_iter": 100}],
    "shuffle_labels": False,
    "require_approval": False,
    "reason": "registry outage test",
}
SCORE = {"interval_start": "2013-06-28", "days": 1}


class MlflowServer:
    """`mlflow server` as make run starts it (SQLite backend, artifacts served by the server),
    in its own process group so that stop() takes its workers and job runners with it."""

    def __init__(self, root: Path, port: int) -> None:
        self.root, self.port = root, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        (self.root / "artifacts").mkdir(parents=True, exist_ok=True)
        args = [
            *("--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}"),
            *("--artifacts-destination", str(self.root / "artifacts")),
            *("--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"),
        ]
        log = open(self.root / "server.log", "a")  # noqa: SIM115 - the server's whole life
        mlflow = str(Path(sys.executable).parent / "mlflow")
        self.proc = subprocess.Popen(
            [mlflow, "server", *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_healthy(f"{self.url}/health", self.proc, self.root / "server.log", "the MLflow server")

    def stop(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/health", timeout=1)
            except httpx.HTTPError:
                return
            time.sleep(0.5)
        pytest.fail("the MLflow server still answers after stop")


@pytest.fixture(scope="module")
def world(airflow_db, tmp_path_factory):
    """Own data folder and Feast store, a real MLflow server, and the online service on it."""
    mp = pytest.MonkeyPatch()
    online = (DAYS[-4], DAYS[-1] + timedelta(days=1))
    data_dir, port = own_model_world(mp, "outage_data", online, DAYS)
    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server"), free_port())
    server.start()
    mp.setenv("MLFLOW_TRACKING_URI", server.url)
    mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        with online_service(data_dir, port) as url:
            yield {"server": server, "url": url, "mp": mp}
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.stop()
        mp.undo()


@pytest.fixture(scope="module")
def dags(world):
    from tests.e2e.conftest import dags_for_test

    dags = dags_for_test()
    for dag_id in ("train_model", "score_flights"):
        for t in dags[dag_id].tasks:
            t.retries = 0
    return dags


def champion_version() -> str | None:
    from include.registry import tracking

    found = tracking.champion(get_settings())
    return found.version if found else None


def holdout_auc(version: str) -> float:
    """The holdout ROC AUC MLflow recorded for the run that produced `version`."""
    from include.registry import tracking

    client = tracking.client(get_settings())
    mv = client.get_model_version(get_settings().model_name, version)
    return float(client.get_run(mv.run_id).data.metrics["roc_auc"])


def ti(run, task_id: str):
    return next(t for t in run.get_task_instances() if t.task_id == task_id)


class Outage:
    """Wraps the step a task calls: its first attempt finds MLflow stopped; the retry finds it
    back (started again before the step runs) and the champion still what it was."""

    def __init__(self, server: MlflowServer, step: Callable[..., Any]) -> None:
        self.server, self.step = server, step
        self.attempts = 0
        self.failure: BaseException | None = None
        self.champion_at_retry: str | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.attempts += 1
        if self.attempts == 1:
            self.server.stop()
            try:
                return self.step(*args, **kwargs)
            except BaseException as exc:
                self.failure = exc
                raise
        self.server.start()
        self.champion_at_retry = champion_version()
        return self.step(*args, **kwargs)


def with_outage(
    world, dags, mp: pytest.MonkeyPatch, module: Any, name: str, dag_id: str, task_id: str
) -> Outage:
    outage = Outage(world["server"], getattr(module, name))
    mp.setattr(module, name, outage)
    task = dags[dag_id].get_task(task_id)
    mp.setattr(task, "retries", 1)
    mp.setattr(task, "retry_delay", timedelta(0))
    return outage


def assert_clear(outage: Outage, server: MlflowServer) -> None:
    """The first attempt failed because MLflow did not answer, and said so for a person."""
    from include.registry.tracking import RegistryUnavailableError

    assert outage.attempts == 2, "Airflow retried the task once"
    assert isinstance(outage.failure, RegistryUnavailableError), repr(outage.failure)
    message = str(outage.failure)
    assert server.url in message and "README 'On call' > RegistryUnavailableError" in message, message


def test_undisturbed_training_deploys_the_first_champion(world, dags):
    run = dags["train_model"].test(run_conf=TRAIN)
    assert str(run.state) == "success"
    assert champion_version() == "1"
    served = httpx.get(f"{world['url']}/health", timeout=10).json()
    assert served["model_version"] == "1"


@pytest.mark.parametrize(
    ("module_name", "step", "task_id"),
    [
        ("include.training.steps", "open_parent_run", "prepare_training_data"),
        ("include.training.gate_steps", "evaluate_gate", "evaluate_gate"),
        ("include.registry.deploy", "deploy", "deploy_champion"),
    ],
)
def test_training_survives_mlflow_stopping_during(world, dags, monkeypatch, module_name, step, task_id):
    import importlib

    before = champion_version()
    outage = with_outage(
        world, dags, monkeypatch, importlib.import_module(module_name), step, "train_model", task_id
    )
    run = dags["train_model"].test(run_conf=TRAIN)

    assert_clear(outage, world["server"])
    assert outage.champion_at_retry == before, "the outage did not move or drop champion"
    assert str(run.state) == "success"
    assert ti(run, task_id).try_number == 2
    # The end state of an undisturbed run: the new version (the same fit on the same data) is
    # champion, recorded as replacing the one before, and the online service serves it.
    now = champion_version()
    assert now == str(int(before) + 1)
    assert holdout_auc(now) == holdout_auc("1")
    deployed = ti(run, "deploy_champion").xcom_pull(task_ids="deploy_champion")
    assert deployed["previous"] == before
    assert httpx.get(f"{world['url']}/health", timeout=10).json()["model_version"] == now


def test_scoring_survives_mlflow_stopping(world, dags, monkeypatch):
    import include.serving.champion as champion_module

    undisturbed = dags["score_flights"].test(run_conf=SCORE)
    assert str(undisturbed.state) == "success"
    expected = ti(undisturbed, "score_next_day").xcom_pull(task_ids="score_next_day")

    before = champion_version()
    outage = with_outage(
        world, dags, monkeypatch, champion_module, "load_champion", "score_flights", "score_next_day"
    )
    run = dags["score_flights"].test(run_conf=SCORE)

    assert_clear(outage, world["server"])
    assert outage.champion_at_retry == before
    assert str(run.state) == "success"
    scored = ti(run, "score_next_day").xcom_pull(task_ids="score_next_day")
    keep = ("interval", "flights", "model_version", "mean_score", "flagged")
    assert [{k: s[k] for k in keep} for s in scored] == [{k: s[k] for k in keep} for s in expected]
    assert scored[0]["flights"] > 0 and scored[0]["model_version"] == before


def _deploy_killed_after_the_alias_move(version: str, sample: Any, record: dict[str, str]) -> None:
    """Child process: deploy `version`, but die by SIGKILL right after `champion` moved (the
    next step would be the service's reload): nothing after it runs, no restore, no cleanup."""
    import include.registry.deploy as deploy_module

    def killed(*_args: Any, **_kwargs: Any) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    deploy_module.serving_reload = killed  # type: ignore[assignment]
    deploy_module.deploy(get_settings(), version, sample, record)


def test_deploy_killed_after_the_alias_move_is_finished_by_its_retry(world, dags, monkeypatch):
    import include.registry.deploy as deploy_module

    before = champion_version()
    seen: dict[str, Any] = {}
    real_deploy = deploy_module.deploy

    def first_attempt_killed(settings, version, sample, record):
        if "killed" not in seen:
            child = multiprocessing.get_context("spawn").Process(
                target=_deploy_killed_after_the_alias_move, args=(version, sample, record)
            )
            child.start()
            child.join(300)
            seen["killed"] = child.exitcode
            seen["champion_after_kill"] = champion_version()
            raise RuntimeError(
                f"deploy_champion's process died (exit {child.exitcode}) after moving champion"
            )
        return real_deploy(settings, version, sample, record)

    monkeypatch.setattr(deploy_module, "deploy", first_attempt_killed)
    task = dags["train_model"].get_task("deploy_champion")
    monkeypatch.setattr(task, "retries", 1)
    monkeypatch.setattr(task, "retry_delay", timedelta(0))
    run = dags["train_model"].test(run_conf=TRAIN)

    new = str(int(before) + 1)
    assert seen["killed"] == -signal.SIGKILL
    assert seen["champion_after_kill"] == new, "the kill came after the alias move"
    assert str(run.state) == "success"
    assert ti(run, "deploy_champion").try_number == 2
    deployed = ti(run, "deploy_champion").xcom_pull(task_ids="deploy_champion")
    # The retry found the move done and only verified; `previous` is the first attempt's.
    assert deployed["version"] == new and deployed["previous"] == before
    assert champion_version() == new
    assert httpx.get(f"{world['url']}/health", timeout=10).json()["model_version"] == new


def test_a_pickle_champion_set_by_hand_fails_scoring_and_is_never_served(world, dags, tmp_path, monkeypatch):
    """Anyone who can write to MLflow's API can register a pickle version and alias it champion:
    score_flights must fail with the loader's reason, the service must keep serving the model
    it has and say why, and nothing may unpickle it (its payload would write a marker file)."""
    import mlflow

    import include.serving.champion as champion_module
    from include.registry import tracking
    from include.registry.tracking import UntrustedModelError
    from tests.fixtures import Boobytrap

    settings = get_settings()
    before = champion_version()
    marker = tmp_path / "unpickled-marker"
    tracking.client(settings)
    with mlflow.start_run(experiment_id=tracking.experiment_id(settings)):
        info = mlflow.sklearn.log_model(
            Boobytrap(marker), name="model", serialization_format="pickle", pip_requirements=["scikit-learn"]
        )
    bad = str(mlflow.register_model(info.model_uri, settings.model_name).version)
    client = tracking.client(settings)
    for key, value in {"gate.decision": "deploy", "smoke_test": "passed"}.items():  # forged tags too
        client.set_model_version_tag(settings.model_name, bad, key, value)
    client.set_registered_model_alias(settings.model_name, "champion", bad)
    try:
        seen: dict[str, BaseException] = {}
        real = champion_module.load_champion

        def recording(*args: Any, **kwargs: Any) -> Any:
            try:
                return real(*args, **kwargs)
            except BaseException as exc:
                seen["error"] = exc
                raise

        monkeypatch.setattr(champion_module, "load_champion", recording)
        run = dags["score_flights"].test(run_conf=SCORE)
        assert str(run.get_task_instance("score_next_day").state) == "failed"  # not skipped, not served
        assert isinstance(seen["error"], UntrustedModelError), repr(seen.get("error"))
        assert f"version {bad}" in str(seen["error"]) and "serialization_format 'pickle'" in str(
            seen["error"]
        )

        deadline = time.monotonic() + 60
        health: dict[str, Any] = {}
        while time.monotonic() < deadline:  # the service polls the alias every 2 s here
            health = httpx.get(f"{world['url']}/health", timeout=10).json()
            if (health.get("refused") or {}).get("version") == bad:
                break
            time.sleep(1)
        assert (health.get("refused") or {}).get("version") == bad, health
        assert "pickle" in health["refused"]["reason"]
        assert health["model_version"] == before, "the service keeps serving the model it had"
        assert not marker.exists(), "something unpickled the forged version"
    finally:
        client.set_registered_model_alias(settings.model_name, "champion", before)
