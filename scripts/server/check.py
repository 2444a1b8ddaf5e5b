"""Is every server of the server profile up? One line per check; exit 1 when one fails.

Usage (with the server profile's env.sh sourced): python -m scripts.server.check [--wait SECONDS]

Checks: Airflow's /api/v2/monitor/health (metadatabase, scheduler, dag processor, triggerer),
a Celery ping answered by every worker, MLflow's /health, an object put, read and deleted on the
S3 server, Redis (broker and online-store databases), each PostgreSQL role in its own database,
and each worker's log server listening on its loopback address. --wait retries the failing checks until
they pass or the time is up.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable

from include.core import runtime_env


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read().decode()


def airflow() -> str:
    health = json.loads(_get(f"{runtime_env.api_url()}/api/v2/monitor/health"))
    parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
    states = {part: (health.get(part) or {}).get("status") for part in parts}
    if any(state != "healthy" for state in states.values()):
        raise RuntimeError(f"not healthy: {states}")
    return ", ".join(f"{part} healthy" for part in parts)


def celery_workers() -> str:
    from airflow.providers.celery.executors.celery_executor_utils import app

    answers = app.control.inspect(timeout=5).ping() or {}
    names = sorted(answer.split("@")[0] for answer in answers)
    if names != sorted(runtime_env.SERVER_WORKERS):
        raise RuntimeError(f"ping answered by {sorted(answers)}")
    return "ping answered by " + ", ".join(sorted(answers))


def mlflow() -> str:
    body = _get(f"{os.environ['MLFLOW_TRACKING_URI']}/health").strip()
    if body != "OK":
        raise RuntimeError(f"/health says {body!r}")
    return f"{os.environ['MLFLOW_TRACKING_URI']}/health OK"


def s3() -> str:
    import boto3

    client = boto3.client("s3")  # endpoint, keys and region from the environment
    bucket, key = runtime_env.LAKE_BUCKET, f"_health/{uuid.uuid4().hex}"
    client.put_object(Bucket=bucket, Key=key, Body=b"ok")
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    finally:
        client.delete_object(Bucket=bucket, Key=key)
    if body != b"ok":
        raise RuntimeError(f"read back {body!r}")
    buckets = sorted(b["Name"] for b in client.list_buckets()["Buckets"])
    return f"put/get/delete s3://{bucket}/_health/...; buckets {buckets}"


def redis() -> str:
    import redis as redis_py

    for url in (os.environ["AIRFLOW__CELERY__BROKER_URL"], os.environ["AIRFLOW_CONN_FEAST_ONLINE_STORE"]):
        if not redis_py.Redis.from_url(url).ping():
            raise RuntimeError("no PONG")
    return "PING db 0 (broker), db 1 (online store)"


def postgres() -> str:
    import psycopg

    urls = {
        "airflow": os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"],
        "flights": os.environ["AIRFLOW_CONN_FLIGHTS_SOURCE"],
        "mlflow": os.environ["MLFLOW_BACKEND_STORE_URI"],
        "feast": os.environ["MLOPS_FEAST_REGISTRY_URL"],
        "mlops": os.environ["MLOPS_MONITORING_URL"],
    }
    for db, url in urls.items():
        conninfo = url.replace("postgresql+psycopg://", "postgresql://", 1)
        with psycopg.connect(conninfo, connect_timeout=5) as conn:
            user, name = conn.execute("SELECT current_user, current_database()").fetchone() or ("", "")
        if (user, name) != (db, db):
            raise RuntimeError(f"{db}: connected as {user} to {name}")
    return "roles " + ", ".join(urls) + " each in its own database"


def log_servers() -> str:
    port = int(os.environ["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"])
    found = []
    for name, address in runtime_env.SERVER_WORKERS.items():
        with socket.create_connection((address, port), timeout=5):
            found.append(f"{name} {address}:{port}")
    return ", ".join(found)


CHECKS: dict[str, Callable[[], str]] = {
    "postgresql": postgres,
    "redis": redis,
    "s3": s3,
    "mlflow": mlflow,
    "airflow": airflow,
    "celery": celery_workers,
    "log servers": log_servers,
}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.server.check")
    parser.add_argument("--wait", type=float, default=0, help="retry failing checks this long (s)")
    args = parser.parse_args(argv)
    deadline = time.monotonic() + args.wait
    pending = dict(CHECKS)
    while True:
        errors = {}
        for name, check in list(pending.items()):
            try:
                print(f"  ok    {name:<12} {check()}", flush=True)
                del pending[name]
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
        if not pending:
            return 0
        if time.monotonic() >= deadline:
            for name, error in errors.items():
                print(f"  FAIL  {name:<12} {error}", flush=True)
            return 1
        time.sleep(3)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
