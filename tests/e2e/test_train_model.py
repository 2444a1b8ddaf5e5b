"""Training, the gate, deployment, serving and rollback, end to end through Airflow.

Real June 2013 flights as validated partitions and features, real Feast (duckdb offline, SQLite
online), a real MLflow registry (SQLite), the real online service (uvicorn on loopback) started
here; the DAGs run with dag.test. The tests run in file order and build on each other: the
first training deploys version 1, a shuffled-label candidate is rejected, a deployment whose
serving check fails restores the champion, one whose smoke test fails never moves it, a second
training deploys, rollback moves back, a rollback to the rejected version is refused unless
overridden with a reason.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from include.core.settings import get_settings
from tests.e2e.conftest import free_port, online_service, own_model_world

DAYS = [datetime(2013, 6, 1, tzinfo=UTC) + timedelta(days=i) for i in range(30)]
TRAIN = {"window_end": "2013-06-28", "window_days": 21, "holdout_days": 4}
SMALL_GRID = [
    {"model": "logistic_regression", "C": 1.0},
    {"model": "hist_gradient_boosting", "max_depth": 4, "learning_rate": 0.1, "max_iter": 100},
]


@pytest.fixture(scope="module")
def world(airflow_db):
    """Own data folder (lake, Feast, MLflow, prediction log) and a running online service."""
    mp = pytest.MonkeyPatch()
    online = (DAYS[-4], DAYS[-1] + timedelta(days=1))
    data_dir, port = own_model_world(mp, "model_data", online, DAYS)
    with online_service(data_dir, port) as url:
        yield {"url": url, "port": port, "data_dir": data_dir, "mp": mp}
    mp.undo()


@pytest.fixture(scope="module")
def dags(world):
    from tests.e2e.conftest import dags_for_test

    dags = dags_for_test()
    for dag_id in ("train_model", "score_flights", "rollback_model", "promote_shadow"):
        for t in dags[dag_id].tasks:
            t.retries = 0  # failures now, not after the production retry delays
    return dags


def states(run) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in run.get_task_instances()}


DEFAULTS = {**TRAIN, "grid": SMALL_GRID, "shuffle_labels": False, "require_approval": False}


def train(dags, **conf):
    # dag.test() keeps a run's conf in the DAG's params: every run states all of them.
    return dags["train_model"].test(run_conf={**DEFAULTS, **conf})


def champion_version() -> str | None:
    from include.registry import tracking

    found = tracking.champion(get_settings())
    return found.version if found else None


def version_tags(version: str) -> dict[str, str]:
    from include.registry import tracking

    return dict(tracking.client(get_settings()).get_model_version(get_settings().model_name, version).tags)


def test_first_training_deploys_and_serving_follows(world, dags):
    from include.registry import tracking

    run = train(dags, reason="first model")
    s = states(run)
    assert s["deploy_champion"] == "success", s
    assert s["reject_candidate"] == "skipped" and s["approve_deployment"] == "skipped"
    assert s["train_candidate"] == "success"
    version = champion_version()
    assert version == tracking.challenger(get_settings()).version
    tags = version_tags(version)
    assert tags["gate.decision"] == "deploy" and tags["smoke_test"] == "passed"
    assert tags["champion.previous"] == "none"
    served = httpx.get(f"{world['url']}/version").json()
    assert served["version"] == version
    # The deployment proved the compiled form on the holdout, and the service serves through it.
    assert tags["serving.path"] == "fast", tags.get("serving.reason")
    assert float(tags["serving.parity_max_abs_diff"]) <= 1e-5 and int(tags["serving.parity_rows"]) > 100
    assert served["serving_path"] == tags["serving.fast_kind"] in ("treelite", "linear")

    # MLflow holds the record: a parent run, one child per candidate with metrics and artifacts.
    client = tracking.client(get_settings())
    mv = client.get_model_version(get_settings().model_name, version)
    child = client.get_run(mv.run_id)
    for metric in ("roc_auc", "pr_auc", "log_loss", "brier", "precision_at_threshold", "recall_at_threshold"):
        assert metric in child.data.metrics
    assert child.data.tags["gate.decision"] == "deploy"
    assert child.data.tags["feature_service"] == "flight_delay_v1"
    assert len(child.data.tags["partitions_sha256"]) == 64
    parent_id = child.data.tags["mlflow.parentRunId"]
    children = client.search_runs(
        [child.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'"
    )
    assert len(children) == len(SMALL_GRID)
    artifacts = {a.path for a in client.list_artifacts(mv.run_id)} | {
        a.path for a in client.list_artifacts(mv.run_id, "plots")
    }
    assert {"gate_decision.json", "lineage.json", "plots/roc_calibration.png"} <= artifacts
    assert "fast_model/fast_model.json" in {a.path for a in client.list_artifacts(mv.run_id, "fast_model")}
    info = __import__("mlflow").models.get_model_info(f"models:/{get_settings().model_name}/{version}")
    assert info.signature is not None and info.saved_input_example_info is not None

    # The champion's model card was rebuilt at deployment, from the registry and the lineage.
    from include.registry import model_card

    page = model_card.load_html(get_settings(), version)
    assert page is not None and f'id="model-version">{version}<' in page
    assert 'class="state champion"' in page
    assert "<th>decision</th><td>deploy</td>" in page and "decision: DEPLOY" in page
    assert "2013-06-07T00:00:00+00:00 → 2013-06-28T00:00:00+00:00 (21 days)" in page
    assert version_tags(version)["model_card.event"] == "deployed"


def test_the_champion_has_a_lineage_and_reproduces_identically(world, dags, capsys, tmp_path):
    """After the first deployment: the lineage names the exact partitions (hashes equal to the
    files), the FeatureService, the commit, the gate and the deployment, and is stored with the
    version; the reproduction rebuilds the same training set and model (exit 0). Tampering with a
    validated partition, or a changed feature definition, makes it exit 2 naming what changed."""
    import json
    from pathlib import Path

    from include.lake.partitions import file_sha256
    from include.registry import lineage, tracking
    from include.training import reproduce

    settings = get_settings()
    version = champion_version()
    record, _ = lineage.collect(settings, version)
    assert record["validated_partitions"], record["missing"]
    assert all(file_sha256(f["path"]) == f["sha256"] for f in record["validated_partitions"])
    assert record["features"]["feature_service"] == "flight_delay_v1" and record["features"]["partitions"]
    assert len(record["training_set"]["sha256"]) == 64 and record["training_set"]["rows"] > 1000
    assert (
        record["code"]["git_commit"] == tracking.git_commit() and record["code"]["lock_sha256"] != "unknown"
    )
    assert record["gate"]["decision"] == "deploy" and record["deployments"][0]["event"] == "deploy"
    run_id = tracking.client(settings).get_model_version(settings.model_name, version).run_id
    local = tracking.client(settings).download_artifacts(run_id, lineage.ARTIFACT, str(tmp_path))
    stored = json.loads(Path(local).read_text())
    assert stored["version"] == version and stored["event"] == "deployed"

    assert reproduce.main([version]) == 0
    out = capsys.readouterr().out
    assert "identical: same training set, metrics and predictions" in out and "max |Δp| 0.0" in out

    # Tampering: one validated partition rewritten with one value changed.
    target = record["validated_partitions"][0]["path"]
    original = Path(target).read_bytes()
    import pandas as pd

    frame = pd.read_parquet(target)
    frame.loc[frame.index[0], "carrier"] = "ZZ"
    try:
        frame.to_parquet(target)
        assert reproduce.main([version]) == 2
        out = capsys.readouterr().out
        assert f"validated partition {record['validated_partitions'][0]['table']}" in out and "changed" in out
    finally:
        Path(target).write_bytes(original)
    # A changed feature definition names the FeatureService; control first: unchanged inputs pass.
    assert reproduce.changed_inputs(record, record["features"]["definitions_sha256"]) == []
    named = reproduce.changed_inputs(record, "0" * 64)
    assert len(named) == 1 and named[0].startswith(
        "FeatureService flight_delay_v1: its feature definitions changed"
    )


def test_predict_answers_for_a_scheduled_flight_and_refuses_bad_input(world, dags):
    import pandas as pd

    from include.lake.partitions import partition_path
    from include.serving import prediction_log
    from include.source.dataset import FLIGHT_SCHEDULES

    url, version = world["url"], champion_version()
    last = DAYS[-1]
    flights = pd.read_parquet(
        partition_path(
            get_settings().lake_root, "validated", FLIGHT_SCHEDULES.name, last, last + timedelta(days=1)
        )
    )
    flight_id = int(flights["flight_id"].iloc[0])
    answer = httpx.post(f"{url}/predict", json={"flight_id": flight_id})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model_version"] == version and 0.0 <= body["score"] <= 1.0

    by_keys = httpx.post(
        f"{url}/predict",
        json={"carrier": "UA", "origin": "EWR", "dest": "ORD", "scheduled_departure": "2013-06-30T18:00:00Z"},
    )
    assert by_keys.status_code == 200, by_keys.text

    assert httpx.post(f"{url}/predict", json={"flight_id": 999_999_999}).status_code == 404
    assert httpx.post(f"{url}/predict", json={"flight": 1}).status_code == 422
    assert httpx.post(f"{url}/predict", json={"carrier": "UA"}).status_code == 422
    assert (
        httpx.post(
            f"{url}/predict", content=b"not json", headers={"content-type": "application/json"}
        ).status_code
        == 422
    )

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        logged = prediction_log.read(
            prediction_log.engine(get_settings().prediction_log_url), source="online"
        )
        if len(logged) >= 2:
            break
        time.sleep(0.5)
    assert flight_id in set(logged["flight_id"]) and set(logged["model_version"]) == {version}


def test_batch_scoring_writes_one_prediction_per_scheduled_flight(world, dags):
    import pandas as pd

    from include.lake.partitions import interval_key, partition_path
    from include.serving import prediction_log
    from include.source.dataset import FLIGHT_SCHEDULES

    day = DAYS[-2]
    conf = {"interval_start": f"{day:%Y-%m-%d}", "days": 1}
    for _ in range(2):  # a rerun replaces, never duplicates
        run = dags["score_flights"].test(run_conf=conf)
        assert states(run)["score_next_day"] == "success"
    scheduled = pd.read_parquet(
        partition_path(
            get_settings().lake_root, "validated", FLIGHT_SCHEDULES.name, day, day + timedelta(days=1)
        )
    )
    logged = prediction_log.read(
        prediction_log.engine(get_settings().prediction_log_url),
        source="batch",
        batch_key=interval_key(day, day + timedelta(days=1)),
    )
    assert len(logged) == scheduled["flight_id"].nunique() > 500
    assert logged["flight_id"].is_unique and set(logged["flight_id"]) == set(scheduled["flight_id"])
    assert set(logged["model_version"]) == {champion_version()}
    assert logged["score"].between(0, 1).all() and logged["features"].str.startswith("{").all()


def test_shuffled_labels_are_rejected_and_champion_unchanged(world, dags):
    before = champion_version()
    run = train(dags, grid=SMALL_GRID[1:], shuffle_labels=True, reason="gate audit")
    s = states(run)
    assert s["reject_candidate"] == "success" and s["deploy_champion"] == "skipped", s
    assert champion_version() == before
    from include.registry import tracking

    rejected = tracking.challenger(get_settings()).version
    world["rejected"] = rejected  # the rollback test below tries to serve it
    tags = version_tags(rejected)
    assert rejected != before and tags["gate.decision"] == "reject"
    assert "absolute_floor" in tags["gate.reasons"] or "beats_baseline" in tags["gate.reasons"]
    assert tags["model_card.event"] == "gate"
    from include.registry import model_card

    assert "<th>decision</th><td>reject</td>" in model_card.load_html(get_settings(), rejected)


def test_a_window_without_data_skips_training(world, dags):
    before = champion_version()
    run = train(dags, window_end="2013-05-10", reason="no data there")
    s = states(run)
    assert s["prepare_training_data"] == "skipped" and s["deploy_champion"] == "skipped", s
    assert str(run.state) == "success" and champion_version() == before


def test_failed_serving_check_restores_the_previous_champion(world, dags):
    before = champion_version()
    world["mp"].setenv("MLOPS_SERVING_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    try:
        run = train(dags, reason="serving down")
    finally:
        world["mp"].setenv("MLOPS_SERVING_URL", world["url"])
    s = states(run)
    assert s["evaluate_gate"] == "success" and s["deploy_champion"] == "failed", s
    assert champion_version() == before
    from include.registry import tracking

    failed = tracking.challenger(get_settings()).version
    assert version_tags(before).get("champion.restored_after_failed_deploy_of") == failed


def test_a_failed_smoke_test_leaves_the_champion_alone(world, dags):
    before = champion_version()
    world["mp"].setenv("MLOPS_SMOKE_MAX_LATENCY_MS", "0.0001")  # no model predicts that fast
    try:
        run = train(dags, grid=SMALL_GRID, reason="smoke test must fail")
    finally:
        world["mp"].delenv("MLOPS_SMOKE_MAX_LATENCY_MS")
    s = states(run)
    assert s["evaluate_gate"] == "success" and s["deploy_champion"] == "failed", s
    assert champion_version() == before
    from include.registry import tracking

    failed = tracking.challenger(get_settings()).version
    assert version_tags(failed)["smoke_test"] == "failed"
    assert httpx.get(f"{world['url']}/version").json()["version"] == before


def test_second_training_deploys_then_rollback_moves_back(world, dags):
    """(A person's Deploy and Reject are answered through Airflow's REST API under the scheduler:
    tests/e2e/test_scheduler_run.py; dag.test cannot wait for a person.)"""
    first = champion_version()
    run = dags["train_model"].test(run_conf={**DEFAULTS, "reason": "second"})
    s = states(run)
    assert s["approve_deployment"] == "skipped" and s["deploy_champion"] == "success", s
    assert s["reject_deployment"] == "skipped", s
    second = champion_version()
    assert second != first and version_tags(second)["champion.previous"] == first
    assert version_tags(second)["champion.approved_by"] == "not required (require_approval off)"

    back = {"version": first, "reason": "e2e rollback", "override": False}
    run = dags["rollback_model"].test(run_conf=back)
    assert states(run)["rollback_champion"] == "success"
    assert champion_version() == first
    assert httpx.get(f"{world['url']}/version").json()["version"] == first
    assert version_tags(first)["champion.reason"] == "e2e rollback"
    assert version_tags(first)["champion.previous"] == second
    assert version_tags(first)["model_card.event"] == "rollback"
    assert version_tags(second)["model_card.event"] == "replaced"
    from include.registry import model_card

    assert 'class="state retired"' in model_card.load_html(get_settings(), second)


def test_rollback_to_a_rejected_version_is_refused_unless_overridden(world, dags):
    before, rejected = champion_version(), world["rejected"]
    conf = {"version": rejected, "reason": "e2e: serve the rejected one", "override": False}
    run = dags["rollback_model"].test(run_conf=conf)
    assert states(run)["rollback_champion"] == "failed"
    assert champion_version() == before
    assert httpx.get(f"{world['url']}/version").json()["version"] == before
    assert "gate.override_reason" not in version_tags(rejected)

    run = dags["rollback_model"].test(run_conf={**conf, "override": True})
    assert states(run)["rollback_champion"] == "success"
    assert champion_version() == rejected
    assert httpx.get(f"{world['url']}/version").json()["version"] == rejected  # the service loaded it
    tags = version_tags(rejected)
    assert tags["gate.override_reason"] == "e2e: serve the rejected one" and tags["smoke_test"] == "passed"
    assert tags["champion.previous"] == before
    assert httpx.get(f"{world['url']}/health").json()["refused"] is None


def test_a_shadow_scores_beside_the_champion_and_the_check_promotes_it(world, dags):
    """promotion=shadow: the challenger is smoke-tested and put in `shadow`, the champion stays and
    serves; score_flights logs both versions for the same flights (the shadow's as `shadow` rows);
    promote_shadow waits until 3 nights are labelled, then compares them on the same flights. The
    champion here is the shuffled-label version a rollback override put back (ROC AUC ~0.5), so the
    answer is known: the shadow is promoted, through a verified deployment."""
    import pandas as pd

    from include.core.settings import SHADOW
    from include.lake.partitions import interval_key
    from include.registry import tracking
    from include.serving import prediction_log

    before = champion_version()
    run = train(dags, promotion="shadow", reason="e2e: shadow")
    s = states(run)
    assert s["shadow_by_policy"] == "success" and s["start_shadow"] == "success", s
    assert s["deploy_champion"] == "skipped" and s["no_approval_required"] == "skipped", s
    shadow = tracking.get_alias(get_settings(), SHADOW)
    assert shadow is not None and shadow.version != before and champion_version() == before
    assert version_tags(shadow.version)["shadow.state"] == "scoring"
    assert httpx.get(f"{world['url']}/version").json()["version"] == before  # serving unchanged

    waiting = dags["promote_shadow"].test()
    assert states(waiting)["keep_waiting"] == "success", states(waiting)
    assert version_tags(shadow.version)["shadow.decision"] == "wait"

    nights = [datetime(2013, 6, d, tzinfo=UTC) for d in (20, 21, 22)]  # labels complete by June 25
    run = dags["score_flights"].test(run_conf={"interval_start": "2013-06-20", "days": 3})
    assert states(run)["score_next_day"] == "success"
    log = prediction_log.read(prediction_log.engine(get_settings().prediction_log_url))
    for start in nights:
        night = log[log["batch_key"] == interval_key(start, start + timedelta(days=1))]
        served, shadowed = night[night["source"] == "batch"], night[night["source"] == "shadow"]
        assert set(served["model_version"]) == {before} and set(shadowed["model_version"]) == {shadow.version}
        assert len(served) > 500 and set(served["flight_id"]) == set(shadowed["flight_id"])
        assert not pd.Series(served["score"].to_numpy()).equals(pd.Series(shadowed["score"].to_numpy()))
    # Serving never answers with the shadow: it scores it after each answer, in its log writer's
    # thread, and logs that score as `shadow_online` under the same request id.
    deadline = time.monotonic() + 30  # the service follows the alias within its poll (2 s here)
    while httpx.get(f"{world['url']}/health").json().get("shadow_version") != shadow.version:
        assert time.monotonic() < deadline, httpx.get(f"{world['url']}/health").json()
        time.sleep(1)
    keys = {"carrier": "UA", "origin": "EWR", "dest": "ORD", "scheduled_departure": "2013-06-30T18:00:00Z"}
    answer = httpx.post(f"{world['url']}/predict", json=keys)
    assert answer.status_code == 200 and answer.json()["model_version"] == before, answer.text
    eng = prediction_log.engine(get_settings().prediction_log_url)
    logged: dict[str, str] = {}
    while len(logged) < 2 and time.monotonic() < deadline + 10:  # the writer flushes every 0.5 s
        rows = prediction_log.read(eng, request_id=answer.json()["request_id"])
        logged = dict(zip(rows["source"], rows["model_version"], strict=True))
        time.sleep(0.5)
    assert logged == {"online": before, "shadow_online": shadow.version}, logged

    decided = dags["promote_shadow"].test()
    s = states(decided)
    assert s["promote_champion"] == "success" and s["retire_shadow"] == "skipped", s
    tags = version_tags(shadow.version)
    assert tags["shadow.decision"] == "promote" and tags["shadow.labelled_nights"] == "3", tags
    assert tags["shadow.state"] == "promoted" and "shadow ROC AUC" in tags["shadow.reasons"]
    assert champion_version() == shadow.version and tracking.get_alias(get_settings(), SHADOW) is None
    assert httpx.get(f"{world['url']}/version").json()["version"] == shadow.version
    assert tags["champion.previous"] == before
