"""DAG integrity: every DAG file imports cleanly, cheaply, and follows the house rules."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from include.airflow_glue.retry import RETRY_POLICY
from include.core.settings import PROJECT_DIR

DAGS_DIR = PROJECT_DIR / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))
HEAVY_MODULES = ("pandas", "numpy", "pyarrow", "sklearn", "mlflow", "feast", "great_expectations")

EXPECTED_TASKS = {
    "ingest_flights": {
        "extract_flight_schedules",
        "extract_flight_outcomes",
        "extract_weather_observations",
        "extract_airports",
        "extract_airlines",
        "extract_planes",
        "validate_flight_schedules",
        "validate_flight_outcomes",
        "validate_weather_observations",
    },
    "materialize_features": {
        "plan_intervals",
        "apply_definitions",
        "build_feature_partitions",
        "materialize_online",
        "verify_online_reads",
    },
    "train_model": {
        "prepare_training_data",
        "plan_candidates",
        "train_candidate",
        "register_best",
        "evaluate_gate",
        "choose_path",
        "reject_candidate",
        "approve_deployment",
        "reject_deployment",
        "no_approval_required",
        "shadow_by_policy",
        "start_shadow",
        "deploy_champion",
        "close_retrain_requests",
    },
    "score_flights": {"score_next_day"},
    "rollback_model": {"rollback_champion"},
    "promote_shadow": {"check_shadow", "choose_action", "promote_champion", "retire_shadow", "keep_waiting"},
    "monitor_model": {
        "check_drift",
        "evaluate_performance",
        "check_freshness",
        "record_service_health",
        "build_report",
        "apply_policy",
        "request_retraining",
    },
}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_dag_files_exist():
    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}, "\n".join(f"{k}:\n{v}" for k, v in dagbag.import_errors.items())


def test_dag_id_is_file_stem(dagbag):
    ids_by_file = {Path(dag.fileloc).stem: dag_id for dag_id, dag in dagbag.dags.items()}
    for path in DAG_FILES:
        assert ids_by_file.get(path.stem) == path.stem, f"{path.name} must define the DAG {path.stem!r}"


def test_expected_dags_and_tasks(dagbag):
    for dag_id, tasks in EXPECTED_TASKS.items():
        dag = dagbag.dags.get(dag_id)
        assert dag is not None, f"DAG {dag_id} missing"
        assert set(dag.task_ids) == tasks


@pytest.mark.parametrize("dag_id", sorted(EXPECTED_TASKS))
def test_house_rules(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.tags, f"{dag_id}: add tags"
    assert dag.doc_md and len(dag.doc_md) > 200, f"{dag_id}: doc_md must be written for the on-call engineer"
    assert dag.start_date is not None and dag.start_date.tzinfo is not None, (
        f"{dag_id}: static tz-aware start_date"
    )
    assert dag.max_active_runs and dag.max_active_runs <= 16
    for task in dag.tasks:
        assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id}: set an owner"
        assert task.retries >= 1, f"{dag_id}.{task.task_id}: retries >= 1"
        assert task.retry_policy is RETRY_POLICY, f"{dag_id}.{task.task_id}: default_args from task_defaults"
        callbacks = (
            task.on_failure_callback
            if isinstance(task.on_failure_callback, list)
            else [task.on_failure_callback]
        )
        assert any(getattr(c, "__name__", "") == "on_task_failure" for c in callbacks), (
            f"{dag_id}.{task.task_id}: default_args on_failure_callback = on_task_failure (the failure block)"
        )


def test_start_dates_are_static():
    """Two parses at different moments give the same start_date (no datetime.now())."""
    script = (
        "import json, time\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"b1 = DagBag(dag_folder={str(DAGS_DIR)!r}); time.sleep(1.1)\n"
        f"b2 = DagBag(dag_folder={str(DAGS_DIR)!r})\n"
        "dates = {k: [str(d.start_date), str(b2.dags[k].start_date)] for k, d in b1.dags.items()}\n"
        "print(json.dumps(dates))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    dates = json.loads(out.stdout.strip().splitlines()[-1])
    for dag_id, (first, second) in dates.items():
        assert first == second, f"{dag_id}: start_date moves between parses ({first} vs {second})"


def modules_loaded_by(path: Path, names: tuple[str, ...]) -> list[str]:
    """Which of `names` running the file `path` imports, in a fresh interpreter."""
    script = (
        "import json, runpy, sys\n"
        f"runpy.run_path({str(path)!r})\n"
        f"print(json.dumps([m for m in {names!r} if m in sys.modules]))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_no_heavy_imports_at_module_level(dag_file):
    """Parsing a DAG file must not import the heavy libraries (they belong inside tasks)."""
    loaded = modules_loaded_by(dag_file, HEAVY_MODULES)
    assert loaded == [], f"{dag_file.name} imports {loaded} at module level: import them inside tasks"


PLUGIN_FILES = sorted((PROJECT_DIR / "plugins").glob("*.py"))


@pytest.mark.parametrize("plugin_file", PLUGIN_FILES, ids=lambda p: p.name)
def test_plugins_import_nothing_heavy(plugin_file):
    """Every task process imports the plugins folder: a plugin loads its libraries (and Airflow's
    API security, ~1.5 s and 30 MB) on first request, not at import."""
    lazy = (*HEAVY_MODULES, "airflow.api_fastapi.core_api.security", "include.oncall.health")
    loaded = modules_loaded_by(plugin_file, lazy)
    assert loaded == [], f"{plugin_file.name} imports {loaded} at module level: import them in its routes"
