"""`make run`'s path under the real scheduler: scripts/run.sh starts Airflow standalone,
queues a bounded backfill, the scheduler ingests it; a cleared task reruns to a
byte-identical partition; run.sh a second time is safe; scripts/stop.sh leaves nothing.

Runs in its own AIRFLOW_HOME, data folder and ports, with the wall clock (no fixed clock:
the real scheduler works on real intervals), so it does not disturb a `make run` in progress.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from include.config import PROJECT_DIR
from include.dataset import SOURCE_TABLES
from include.lake import file_sha256, partition_path, read_partition
from tests.e2e.conftest import source_count

sys.path.insert(0, str(PROJECT_DIR / "scripts"))
from airflow_api import AirflowAPI

DAYS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_with_home(home: Path) -> list[int]:
    found = []
    for env_file in Path("/proc").glob("[0-9]*/environ"):
        try:
            env = env_file.read_bytes().split(b"\0")
        except OSError:
            continue
        if f"AIRFLOW_HOME={home}".encode() in env and int(env_file.parent.name) != os.getpid():
            found.append(int(env_file.parent.name))
    return found


@pytest.fixture(scope="module")
def standalone(tmp_path_factory):
    root = tmp_path_factory.mktemp("standalone")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "MLOPS_", "MLFLOW_TRACKING"))}
    env.update(
        AIRFLOW_HOME=str(root / "airflow"),
        MLOPS_DATA_DIR=str(root / "data"),
        MLOPS_API_PORT=str(free_port()),
        MLOPS_WORKER_LOG_PORT=str(free_port()),
        MLOPS_TRIGGER_LOG_PORT=str(free_port()),
        MLOPS_MLFLOW_PORT=str(free_port()),
        MLOPS_SERVING_PORT=str(free_port()),
        DEMO_DAYS=str(DAYS),
    )
    started = time.monotonic()
    run = subprocess.run(
        ["bash", "scripts/run.sh"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=900
    )
    elapsed = time.monotonic() - started
    try:
        yield env, run, elapsed
    finally:
        subprocess.run(
            ["bash", "scripts/stop.sh"], cwd=PROJECT_DIR, env=env, capture_output=True, timeout=120
        )


def test_run_reaches_the_demo_state(standalone):
    env, run, elapsed = standalone
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert f"{DAYS}/{DAYS} intervals succeeded" in run.stdout
    assert f"http://127.0.0.1:{env['MLOPS_API_PORT']}" in run.stdout
    print(f"run.sh reached the demo state in {elapsed:.0f} s")


def test_partitions_match_the_source(standalone):
    env, run, _ = standalone
    assert run.returncode == 0
    lake = Path(env["MLOPS_DATA_DIR"]) / "lake"
    db = Path(env["MLOPS_DATA_DIR"]) / "source" / "flights.db"
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for n in range(1, DAYS + 1):
        start, end = today - timedelta(days=n), today - timedelta(days=n - 1)
        for table in SOURCE_TABLES:
            expected = source_count(db, table.name, start, end)
            got = len(read_partition(partition_path(lake, "raw", table.name, start, end)))
            assert got == expected, (
                f"{table.name} {start:%F}: {got} rows in the lake, {expected} in the source"
            )
            if table.name == "flight_schedules":
                assert got > 500, "a replayed day holds hundreds of flights"


def test_cleared_task_reruns_to_a_byte_identical_partition(standalone):
    env, run, _ = standalone
    assert run.returncode == 0
    api = AirflowAPI(f"http://127.0.0.1:{env['MLOPS_API_PORT']}", "admin", "admin")
    runs = [r for r in api.dag_runs("ingest_flights") if r["state"] == "success"]
    target = runs[0]
    start = datetime.fromisoformat(target["data_interval_start"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(target["data_interval_end"].replace("Z", "+00:00"))
    path = partition_path(Path(env["MLOPS_DATA_DIR"]) / "lake", "raw", "flight_schedules", start, end)
    before_hash, before_mtime = file_sha256(path), path.stat().st_mtime_ns

    api.post(
        "/api/v2/dags/ingest_flights/clearTaskInstances",
        {
            "dry_run": False,
            "task_ids": ["extract_flight_schedules"],
            "dag_run_id": target["dag_run_id"],
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    ti_path = (
        f"/api/v2/dags/ingest_flights/dagRuns/{target['dag_run_id']}/taskInstances/extract_flight_schedules"
    )
    deadline = time.monotonic() + 240
    while True:
        ti = api.get(ti_path)
        if ti["state"] == "success" and ti["try_number"] >= 2:
            break
        assert ti["state"] not in ("failed", "upstream_failed"), ti
        assert time.monotonic() < deadline, f"cleared task did not rerun: {ti['state']}"
        time.sleep(2)
    assert path.stat().st_mtime_ns != before_mtime, "the partition was rewritten"
    assert file_sha256(path) == before_hash


def test_second_run_is_safe_and_stop_leaves_no_process(standalone):
    env, run, _ = standalone
    assert run.returncode == 0
    again = subprocess.run(
        ["bash", "scripts/run.sh"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=600
    )
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "already running" in again.stdout
    assert "source up to date" in again.stdout

    # A bystander of the user's shell (it sourced .airflow/env.sh) must survive `make stop`.
    bystander = subprocess.Popen(["sleep", "120"], env=env)
    try:
        stop = subprocess.run(
            ["bash", "scripts/stop.sh"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
        )
        assert stop.returncode == 0, stop.stdout + stop.stderr
        home = Path(env["AIRFLOW_HOME"])
        assert processes_with_home(home) == [bystander.pid]
        assert bystander.poll() is None, "stop.sh killed a process that is not Airflow's"
    finally:
        bystander.kill()
        bystander.wait()
