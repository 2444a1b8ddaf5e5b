"""The same DAGs on the server profile's stores, through Airflow (dag.test): the lake and the
training sets in an S3 object store (moto's server), Feast's SQL registry on PostgreSQL and its
online store on Redis, MLflow as a server on PostgreSQL with its artifacts in the object store,
the prediction log and the monitoring tables on PostgreSQL. Nothing is written to the local data
folder's lake, registry or online store: each check below names where the bytes are instead.

The comparison with the embedded profile is made on the data a model is trained on: the training
set that train_model prepared in the object store equals, byte for byte, the one the embedded
stores (local lake, file registry, SQLite online store) give for the same days.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from include.core.settings import get_settings
from tests.e2e.conftest import free_port, online_service, wait_healthy
from tests.e2e.postgres import PostgresServer, find_bindir
from tests.e2e.servers import redis_server, s3_server
from tests.fixtures import write_real_days

DAYS = [datetime(2013, 6, 1, tzinfo=UTC) + timedelta(days=i) for i in range(30)]
TRAIN = {
    "window_end": "2013-06-28",
    "window_days": 21,
    "holdout_days": 4,
    "grid": [{"model": "hist_gradient_boosting", "max_depth": 4, "learning_rate": 0.1, "max_iter": 100}],
    "shuffle_labels": False,
    "require_approval": False,
    "reason": "server stores test",
}
LAKE_BUCKET, MLFLOW_BUCKET = "mlops-lake", "mlops-mlflow"
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


def s3_keys(endpoint: str, bucket: str, prefix: str = "") -> list[str]:
    """Every key under `prefix`, listed by boto3 (independently of the lake's own code)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def servers(airflow_db, tmp_path_factory):
    """moto's S3, PostgreSQL (databases mlflow, feast, predictions, monitoring), Redis, an MLflow
    server on them; the settings pointed at all of it through the environment only."""
    bindir = find_bindir()
    assert bindir, "PostgreSQL server binaries are missing: run `make system` (make test does)"
    pg = PostgresServer(bindir)
    pg.start()
    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("server_stores")
    try:
        with s3_server() as endpoint, redis_server() as redis_url:
            endpoints = {"AWS_ENDPOINT_URL": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint}
            for key, value in {**AWS, **endpoints}.items():
                mp.setenv(key, value)
            import boto3

            s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            for bucket in (LAKE_BUCKET, MLFLOW_BUCKET):
                s3.create_bucket(Bucket=bucket)
            names = ("mlflow", "feast", "predictions", "monitoring")
            urls = {name: pg.create_database(name) for name in names}
            port = free_port()
            log_path = root / "mlflow.log"
            with open(log_path, "w") as log:
                mlflow = subprocess.Popen(
                    [
                        str(Path(sys.executable).parent / "mlflow"),
                        "server",
                        *("--backend-store-uri", urls["mlflow"]),
                        *("--artifacts-destination", f"s3://{MLFLOW_BUCKET}/artifacts"),
                        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
                    ],
                    env=os.environ.copy(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                wait_healthy(f"http://127.0.0.1:{port}/health", mlflow, log_path, "the MLflow server", 180)
                serving_port = free_port()
                mp.setenv("MLOPS_DATA_DIR", str(root / "data"))
                mp.setenv("MLOPS_LAKE_ROOT", f"s3://{LAKE_BUCKET}/lake")
                mp.setenv("MLOPS_ARTIFACTS_ROOT", f"s3://{LAKE_BUCKET}/artifacts")
                mp.setenv("MLOPS_FEAST_REGISTRY_URL", urls["feast"])
                mp.setenv("MLOPS_FEAST_ONLINE_STORE", "redis")
                mp.setenv("AIRFLOW_CONN_FEAST_ONLINE_STORE", redis_url.removesuffix("/0") + "/1")
                mp.setenv("MLOPS_PREDICTION_LOG_URL", urls["predictions"])
                mp.setenv("MLOPS_MONITORING_URL", urls["monitoring"])
                mp.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
                mp.setenv("MLOPS_SERVING_URL", f"http://127.0.0.1:{serving_port}")
                mp.setenv("MLOPS_SERVING_DEPARTURE_DAYS_BACK", str(366 * 20))  # 2013 days, 2026 clock
                # The month is written to a local lake and uploaded (the partitions' own S3 writes
                # and reads are timed by the byte test below, which recomputes two days in place).
                write_real_days(DAYS, lake_root=str(root / "staging"))
                from include.lake import storage

                fs, lake = storage.resolve(get_settings().lake_root)
                fs.put(str(root / "staging") + "/", lake, recursive=True)
                from include.airflow_glue.connections import feature_store
                from include.features.store import apply_if_changed, materialize_interval

                store = feature_store(get_settings())
                apply_if_changed(store, get_settings(), logging.getLogger("test"))
                online = (DAYS[-4], DAYS[-1] + timedelta(days=1))
                materialize_interval(store, get_settings(), *online, logging.getLogger("test"))
                with online_service(root / "data", serving_port) as url:
                    yield {"endpoint": endpoint, "pg": pg, "urls": urls, "url": url, "root": root}
            finally:
                os.killpg(mlflow.pid, 15)
                mlflow.wait(30)
    finally:
        mp.undo()
        pg.stop()


@pytest.fixture(scope="module")
def dags(servers):
    from tests.e2e.conftest import dags_for_test

    dags = dags_for_test()
    for dag in dags.values():
        for t in dag.tasks:
            t.retries = 0
    return dags


@pytest.fixture(scope="module")
def trained(servers, dags):
    run = dags["train_model"].test(run_conf=TRAIN)
    return run, {t.task_id: t.state for t in run.get_task_instances()}


def test_the_lake_is_in_the_object_store_and_nothing_local(servers):
    keys = s3_keys(servers["endpoint"], LAKE_BUCKET, "lake/")
    validated = [k for k in keys if k.startswith("lake/validated/flight_schedules/")]
    features = [k for k in keys if k.startswith("lake/features/carrier_delay_stats/")]
    assert len(validated) == len(features) == len(DAYS)
    assert all(k.endswith("/part-0.parquet") for k in validated)
    data = servers["root"] / "data"
    assert not (data / "lake").exists()
    assert not (data / "feast" / "registry.db").exists() and not (data / "feast" / "online_store.db").exists()


def test_partitions_in_the_object_store_are_the_bytes_a_local_lake_gets(servers, tmp_path):
    from include.lake.partitions import file_sha256, partition_url
    from include.source.dataset import FLIGHT_OUTCOMES

    local = tmp_path / "lake"
    write_real_days(DAYS[:2], lake_root=str(local))
    write_real_days(DAYS[:2])  # in place, through the object store
    for d in DAYS[:2]:
        for zone, table in (("validated", FLIGHT_OUTCOMES.name), ("features", "route_delay_stats")):
            end = d + timedelta(days=1)
            remote = partition_url(get_settings().lake_root, zone, table, d, end)
            assert remote.startswith("s3://")
            assert file_sha256(remote) == file_sha256(partition_url(local, zone, table, d, end))


def test_train_model_deploys_from_the_servers(servers, trained):
    from include.registry import tracking

    run, states = trained
    assert run.state == "success", states
    assert states["deploy_champion"] == "success" and states["reject_candidate"] == "skipped", states
    version = tracking.champion(get_settings()).version
    assert httpx.get(f"{servers['url']}/version").json()["version"] == version
    # the training set went through the object store, the model's files too
    training_sets = s3_keys(servers["endpoint"], LAKE_BUCKET, "lake/training_sets/")
    assert {k.rsplit("/", 1)[1] for k in training_sets} >= {"train.parquet", "holdout.parquet", "meta.json"}
    assert any(k.endswith("MLmodel") for k in s3_keys(servers["endpoint"], MLFLOW_BUCKET, "artifacts/"))
    # Feast's registry is the SQL one
    import sqlalchemy as sa

    with sa.create_engine(servers["urls"]["feast"]).connect() as conn:
        views = conn.execute(sa.text("SELECT count(*) FROM feature_views")).scalar_one()
    assert views == 4


def test_the_training_set_equals_the_embedded_profiles_for_the_same_days(
    servers, trained, tmp_path, monkeypatch
):
    """prepare_training_data on the servers vs the embedded stores on the same days: the same rows
    and features (same frame), so the same fit and the same gate decision follow."""
    import pandas as pd

    from include.features.store import apply_if_changed, open_store
    from include.features.training_set import build_training_set
    from include.lake import storage
    from include.lake.partitions import read_table

    _, states = trained
    assert states["prepare_training_data"] == "success"
    sets = s3_keys(servers["endpoint"], LAKE_BUCKET, "lake/training_sets/")
    meta_keys = [k for k in sets if k.endswith("train.parquet")]
    assert len(meta_keys) == 1
    folder = f"s3://{LAKE_BUCKET}/{meta_keys[0].rsplit('/', 1)[0]}"
    remote = pd.concat(
        [read_table(storage.join(folder, n)).to_pandas() for n in ("train.parquet", "holdout.parquet")],
        ignore_index=True,
    )
    # the embedded profile: a local lake of the same days, file registry, SQLite online store
    for name in ("MLOPS_LAKE_ROOT", "MLOPS_FEAST_REGISTRY_URL", "MLOPS_FEAST_ONLINE_STORE"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "embedded"))
    write_real_days(DAYS)
    settings = get_settings()
    store = open_store(settings)
    apply_if_changed(store, settings, logging.getLogger("test"))
    end = datetime(2013, 6, 28, tzinfo=UTC)
    local = build_training_set(
        store,
        settings.lake_root,
        end - timedelta(days=TRAIN["window_days"]),
        end,
        "flight_delay_v1",
        timedelta(hours=settings.prediction_lead_hours),
    ).frame
    columns = sorted(set(remote.columns) & set(local.columns))
    assert len(columns) == len(local.columns) and len(remote) == len(local) > 5000
    key = ["flight_id"]
    pd.testing.assert_frame_equal(
        remote[columns].sort_values(key).reset_index(drop=True),
        local[columns].sort_values(key).reset_index(drop=True),
        check_dtype=False,
    )


def test_scoring_and_monitoring_read_and_write_the_servers(servers, dags, trained):
    import sqlalchemy as sa

    from include.lake.partitions import interval_key
    from include.serving import prediction_log

    day = DAYS[-2]
    run = dags["score_flights"].test(run_conf={"interval_start": f"{day:%Y-%m-%d}", "days": 1})
    assert run.state == "success", {t.task_id: t.state for t in run.get_task_instances()}
    logged = prediction_log.read(
        prediction_log.engine(get_settings().prediction_log_url),
        source="batch",
        batch_key=interval_key(day, day + timedelta(days=1)),
    )
    assert len(logged) > 500 and logged["flight_id"].is_unique
    assert get_settings().prediction_log_url.startswith("postgresql")
    # /predict answers from the Redis online store
    flight = int(logged["flight_id"].iloc[0])
    answer = httpx.post(f"{servers['url']}/predict", json={"flight_id": flight})
    assert answer.status_code == 200, answer.text
    assert 0 <= answer.json()["score"] <= 1
    run = dags["monitor_model"].test(run_conf={"interval_start": f"{day:%Y-%m-%d}", "days": 1})
    assert run.state == "success", {t.task_id: t.state for t in run.get_task_instances()}
    with sa.create_engine(servers["urls"]["monitoring"]).connect() as conn:
        tables = sa.inspect(conn).get_table_names()
    assert tables, "the monitoring tables are in PostgreSQL"
    reports = s3_keys(servers["endpoint"], LAKE_BUCKET, "artifacts/monitoring/reports/")
    assert any(k.endswith(".html") for k in reports), reports
    assert not (servers["root"] / "data" / "monitoring" / "reports").exists()
