"""Test session setup shared by every tier.

Airflow reads its configuration when it is first imported, so the whole test session gets
its own AIRFLOW_HOME and data folder here, at import time, before any test imports Airflow.
The replay clock is fixed (MLOPS_CLOCK_NOW) so every test sees the same 'now'.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from include.core.runtime_env import airflow_env

# A fixed clock: the demo source is built as if on TEST_TODAY, tasks run as if at TEST_NOW.
TEST_TODAY = date(2026, 11, 23)
TEST_NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="airflow-mlops-tests-"))
SESSION_AIRFLOW_HOME = _SESSION_DIR / "airflow"
SESSION_DATA_DIR = _SESSION_DIR / "data"
SESSION_AIRFLOW_HOME.mkdir(parents=True)

os.environ.update(airflow_env(SESSION_AIRFLOW_HOME, data_dir=SESSION_DATA_DIR))
os.environ["MLOPS_CLOCK_NOW"] = TEST_NOW.isoformat()
# The tests' data are October and November 2013 (their fixtures build those months for TEST_TODAY);
# the make run tests clear MLOPS_* and replay the demo's own default anchor.
os.environ["MLOPS_REPLAY_ANCHOR"] = "2013-11-01"
os.environ.pop("MLOPS_LAKE_ROOT", None)
os.environ.pop("MLOPS_ARTIFACTS_ROOT", None)
os.environ.pop("AIRFLOW_CONN_FLIGHTS_SOURCE", None)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("KEEP_TEST_STATE") != "1":
        shutil.rmtree(_SESSION_DIR, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Name the screenshots the UI tests saved, so a reader of the test output can open them."""
    from tests.e2e.browser import SCREENSHOTS

    saved = [p for p in SCREENSHOTS if p.exists()]
    if saved:
        terminalreporter.section("screenshots")
        for path in saved:
            terminalreporter.write_line(str(path))
