"""`make run PROFILE=server` under the real scheduler: scripts/run_server.sh starts PostgreSQL,
Redis, the S3 server, MLflow and Airflow as separate components with two Celery workers, and the
demo (14 days ingested, features online in Redis, train_model, deploy, score, monitor) runs on
them. Then each worker's own folder is wiped and a training of four candidates runs them on both
workers (nothing is handed over through a worker's disk); a worker SIGKILLed in the middle of a
candidate has that task retried on the other worker, and the run ends green; scripts/stop.sh
leaves nothing.

Its own home and ports (MLOPS_SERVER_<NAME>_PORT); the wall clock (the scheduler works on real
intervals). The figures of the profile (benchmarks/bench_profile.py) are printed at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from benchmarks.bench_profile import measure
from include.core.runtime_env import ADMIN_USER, SERVER_PORTS, SERVER_WORKERS, admin_password
from include.core.settings import PROJECT_DIR
from scripts.airflow_api import AirflowAPI
from tests.e2e.servers import processes_with_home
from tests.ports import free_port

DAYS = 14
CANDIDATE = {"model": "logistic_regression", "C": 1.0}
# What each worker keeps of its own folder when it is wiped: the files of the running worker.
WORKER_OWN = ("env.sh", "worker.pid", "worker.log", "log-server.log")


@pytest.fixture(scope="module")
def server():
    # Right under the temporary folder: as root, PostgreSQL runs as its own system user, which
    # must walk into the home (pytest's own temporary folders are 0700).
    root = Path(tempfile.mkdtemp(prefix="airflow-mlops-server-"))
    root.chmod(0o755)  # the secrets inside stay 0600 in their 0700 folder
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "MLFLOW_", "AWS_"))}
    env.update({f"MLOPS_SERVER_{name.upper()}_PORT": str(free_port()) for name in SERVER_PORTS})
    env.update(
        AIRFLOW_HOME=str(root / "home"),
        DEMO_DAYS=str(DAYS),
        # A lost worker's task is failed (and retried) after 60 s without a heartbeat, not 5 min.
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="60",
    )
    started = time.monotonic()
    run = subprocess.run(
        ["bash", "scripts/run_server.sh"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=2400,
    )
    elapsed = time.monotonic() - started
    print(f"run_server.sh: {elapsed:.0f} s")
    try:
        yield env, run, elapsed
    finally:
        subprocess.run(
            ["bash", "scripts/stop.sh"], cwd=PROJECT_DIR, env=env, capture_output=True, timeout=300
        )
        shutil.rmtree(root, ignore_errors=True)


def sourced(env: dict[str, str], *argv: str) -> str:
    """Run the project's Python with the profile's env.sh sourced (its secrets included); stdout."""
    python = str(PROJECT_DIR / ".venv" / "bin" / "python")
    done = subprocess.run(
        ["bash", "-c", '. "$AIRFLOW_HOME/env.sh" && exec "$@"', "sourced", python, *argv],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def api(env: dict[str, str]) -> AirflowAPI:
    port = env["MLOPS_SERVER_API_PORT"]
    return AirflowAPI(f"http://127.0.0.1:{port}", ADMIN_USER, admin_password(Path(env["AIRFLOW_HOME"])))


def task_instances(client: AirflowAPI, dag_id: str, run_id: str) -> list[dict]:
    return client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=200")["task_instances"]


def trigger(client: AirflowAPI, candidates: int, reason: str) -> str:
    grid = [{**CANDIDATE, "C": 0.5 * (n + 1)} for n in range(candidates)]
    conf = {"grid": grid, "require_approval": False, "reason": reason}
    run = client.post("/api/v2/dags/train_model/dagRuns", {"logical_date": None, "conf": conf})
    return str(run["dag_run_id"])


def wait_run(client: AirflowAPI, dag_id: str, run_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
        if state in ("success", "failed"):
            return str(state)
        time.sleep(5)
    pytest.fail(f"{dag_id} {run_id} did not finish in {timeout:.0f} s")


def test_the_demo_reaches_its_state_on_the_servers(server):
    _env, run, _ = server
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert f"ingest_flights: {DAYS}/{DAYS} intervals succeeded" in run.stdout
    assert "champion: flight_delay version 1" in run.stdout  # trained, gated, deployed
    answer = json.loads(run.stdout.split("/predict", 1)[1].split("-> ", 1)[1].splitlines()[0])
    assert str(answer["model_version"]) == "1" and 0 <= answer["score"] <= 1  # features read from Redis
    assert "report: s3://" in run.stdout  # monitor_model wrote its drift report to the object store


def test_partitions_in_s3_match_the_postgresql_source(server):
    env, run, _ = server
    assert run.returncode == 0
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    intervals = [(today - timedelta(days=n), today - timedelta(days=n - 1)) for n in range(1, DAYS + 1)]
    spans = json.dumps([[a.isoformat(), b.isoformat()] for a, b in intervals])
    rows = json.loads(sourced(env, "-m", "tests.e2e.server_counts", spans))
    assert len(rows) == DAYS * 6
    for table, start, got, expected in rows:
        assert got == expected, f"{table} {start}: {got} rows in S3, {expected} in the source"
    assert min(got for table, _, got, _ in rows if table == "flight_schedules") > 500


def test_training_after_the_workers_folders_are_wiped_runs_on_both_workers(server):
    env, run, _ = server
    assert run.returncode == 0
    home = Path(env["AIRFLOW_HOME"])
    wiped = 0
    for name in SERVER_WORKERS:
        for child in (home / "workers" / name).iterdir():
            if child.name in WORKER_OWN:
                continue
            # A folder stays, emptied: the running worker holds it as its TMPDIR or data folder,
            # as a fresh machine's worker would find it.
            for item in child.iterdir() if child.is_dir() else [child]:
                shutil.rmtree(item) if item.is_dir() else item.unlink()
                wiped += 1
    assert wiped, "the workers' folders held nothing to wipe"
    client = api(env)
    # Four candidates at once: a worker holds two (concurrency 2, prefetch 1), so both take some.
    run_id = trigger(client, 4, "e2e: workers' folders wiped")
    assert wait_run(client, "train_model", run_id, 1500) == "success"
    tis = task_instances(client, "train_model", run_id)
    hosts = {t["hostname"] for t in tis if t["task_id"] == "train_candidate" and t["state"] == "success"}
    assert hosts == set(SERVER_WORKERS.values()), hosts
    print(json.dumps(measure(client, home), indent=2))  # both workers up: the profile's figures


def test_a_worker_killed_in_the_middle_of_a_task_is_replaced_by_the_other(server):
    env, run, _ = server
    assert run.returncode == 0
    client = api(env)
    run_id = trigger(client, 2, "e2e: a worker killed")
    deadline = time.monotonic() + 900
    victim = None
    while victim is None and time.monotonic() < deadline:
        running = [
            t
            for t in task_instances(client, "train_model", run_id)
            if t["task_id"] == "train_candidate" and t["state"] == "running" and t["hostname"]
        ]
        victim = running[0] if running else None
        time.sleep(1)
    assert victim, "no train_candidate ran"
    worker = next(name for name, address in SERVER_WORKERS.items() if address == victim["hostname"])
    pgid = int((Path(env["AIRFLOW_HOME"]) / f"{worker}.pgid").read_text())
    os.killpg(pgid, signal.SIGKILL)  # the worker and its task processes die at once
    assert wait_run(client, "train_model", run_id, 1500) == "success"
    again = next(
        t
        for t in task_instances(client, "train_model", run_id)
        if t["task_id"] == "train_candidate" and t["map_index"] == victim["map_index"]
    )
    assert again["state"] == "success" and again["try_number"] >= 2, again
    assert again["hostname"] != victim["hostname"]


def test_no_database_is_locked_and_stop_leaves_nothing(server):
    env, _run, _ = server
    home = Path(env["AIRFLOW_HOME"])
    logs = [p for p in home.rglob("*.log") if p.is_file()]
    assert len(logs) > 10
    assert not [p for p in logs if "database is locked" in p.read_text(errors="replace")]
    done = subprocess.run(
        ["bash", "scripts/stop.sh"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    time.sleep(2)
    assert processes_with_home(home) == []
