"""The server profile's pinned pieces work together, checked on real servers on loopback.

The lock pins the Celery provider, Celery, redis-py, s3fs, boto3 and moto with the rest of the
stack; these tests prove what the pins promise instead of assuming it: the provider loads under
this Airflow and its Celery app talks to a real Redis; Feast's Redis online store uses the same
redis-py; the lake's parquet goes through s3fs to an S3-compatible server (moto's) and back byte
for byte, as MLflow's artifact client (boto3) does.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.e2e.servers import redis_server, s3_server
from tests.ports import free_port


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        yield endpoint


def test_the_celery_provider_loads_under_this_airflow_and_reaches_redis(redis_url, tmp_path):
    """In a fresh interpreter, configured as a Celery deployment is (environment only)."""
    env = {
        **os.environ,
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+sqlite:///{tmp_path / 'celery-results.db'}",
    }
    code = (
        "from airflow.executors.executor_loader import ExecutorLoader\n"
        "executor = ExecutorLoader.get_default_executor()\n"
        "from airflow.providers.celery.executors.celery_executor_utils import app\n"
        "conn = app.connection_for_write(); conn.ensure_connection(max_retries=1); conn.release()\n"
        "print('RESULT', type(executor).__name__, app.conf.broker_url)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    result = [line.split() for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert result == [["RESULT", "CeleryExecutor", redis_url]], done.stdout[-2000:]


def test_control_celery_fails_on_a_port_with_no_redis():
    """The control of the test above: the same check against nothing listening fails."""
    env = {**os.environ, "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    code = (
        "from airflow.providers.celery.executors.celery_executor_utils import app\n"
        "app.connection_for_write().ensure_connection(max_retries=1)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0


def test_feast_and_celery_share_one_redis_client(redis_url):
    import importlib.metadata as md

    import redis

    assert redis.__version__ == md.version("redis")
    client = redis.Redis.from_url(redis_url)
    assert client.ping()
    # Feast's Redis online store imports and connects with the same client library.
    from feast.infra.online_stores.redis import RedisOnlineStore, RedisOnlineStoreConfig

    host_port = redis_url.removeprefix("redis://").split("/")[0]
    config = RedisOnlineStoreConfig(connection_string=host_port)
    assert RedisOnlineStore()._get_client(config).ping()


def test_parquet_through_s3fs_to_an_s3_server_and_back_byte_for_byte(s3_endpoint, tmp_path):
    import boto3
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq
    import s3fs

    creds = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    boto3.client("s3", endpoint_url=s3_endpoint, **creds).create_bucket(Bucket="lake")
    fs = s3fs.S3FileSystem(
        key="test", secret="test", client_kwargs={"endpoint_url": s3_endpoint, "region_name": "us-east-1"}
    )
    table = pa.Table.from_pandas(pd.DataFrame({"flight_id": [1, 2, 3], "carrier": ["UA", "AA", "B6"]}))
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    local = tmp_path / "part-0.parquet"
    pq.write_table(table, local)
    assert buffer.getvalue() == local.read_bytes(), "the same bytes on disk and in memory"

    fs.pipe_file("lake/validated/flight_schedules/part-0.parquet", buffer.getvalue())  # one PUT: atomic
    assert fs.cat_file("lake/validated/flight_schedules/part-0.parquet") == local.read_bytes()
    with fs.open("lake/validated/flight_schedules/part-0.parquet", "rb") as handle:
        assert pq.read_table(handle).equals(table)
    # MLflow's S3 artifact repository uses boto3 against the same endpoint.
    listed = boto3.client("s3", endpoint_url=s3_endpoint, **creds).list_objects_v2(Bucket="lake")
    assert [o["Key"] for o in listed["Contents"]] == ["validated/flight_schedules/part-0.parquet"]
