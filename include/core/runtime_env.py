"""The environment Airflow runs in, for `make run` and for the test session alike.

One function returns every variable, so the scheduler started by `make run` and the Airflow
that the tests start behave the same. `python -m include.core.runtime_env <airflow_home>` prints
them as shell `export` lines (the Makefile sources that file).
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from include.core.settings import PROJECT_DIR

# Telemetry of every library is off: these machines have no network and calls would hang.
TELEMETRY_OFF: dict[str, str] = {
    "DO_NOT_TRACK": "1",
    "SCARF_ANALYTICS": "false",
    "AIRFLOW__USAGE_DATA_COLLECTION__ENABLED": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "FEAST_USAGE": "False",
    "GX_ANALYTICS_ENABLED": "False",
}

# No library may unpickle a model: MLflow 3.17 reads this (mlflow.environment_variables), and its
# own loaders (pickle, cloudpickle and even skops with the artifact's own trusted list) refuse
# while it is false. Project code loads models only through include/registry/tracking.load_model.
NO_PICKLE: dict[str, str] = {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}

API_HOST = "127.0.0.1"
DEFAULT_API_PORT = 8080
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin"  # local demo only: the API listens on loopback


def api_port() -> int:
    """Port of the Airflow API/UI: 8080 unless MLOPS_API_PORT says otherwise."""
    return int(os.environ.get("MLOPS_API_PORT") or DEFAULT_API_PORT)


def api_url() -> str:
    return f"http://{API_HOST}:{api_port()}"


def mlflow_port() -> int:
    """Port of `make run`'s MLflow server (UI and API): 5000 unless MLOPS_MLFLOW_PORT says otherwise."""
    return int(os.environ.get("MLOPS_MLFLOW_PORT") or 5000)


def serving_port() -> int:
    """Port of `make run`'s online prediction service: 8000 unless MLOPS_SERVING_PORT says otherwise."""
    return int(os.environ.get("MLOPS_SERVING_PORT") or 8000)


def services_env() -> dict[str, str]:
    """Where `make run`'s own services listen; tasks and the serving app find them here.

    Only `make run` sets these: tests use MLflow's local SQLite default and start their own
    service. A team server is one variable away (MLFLOW_TRACKING_URI in the environment wins)."""
    return {
        "MLOPS_MLFLOW_PORT": str(mlflow_port()),
        "MLOPS_SERVING_PORT": str(serving_port()),
        "MLFLOW_TRACKING_URI": os.environ.get("MLFLOW_TRACKING_URI") or f"http://{API_HOST}:{mlflow_port()}",
        "MLOPS_SERVING_URL": os.environ.get("MLOPS_SERVING_URL") or f"http://{API_HOST}:{serving_port()}",
    }


def airflow_env(
    airflow_home: Path,
    *,
    project_dir: Path = PROJECT_DIR,
    data_dir: Path | None = None,
    port: int | None = None,
) -> dict[str, str]:
    """Environment variables for an Airflow of this project living in `airflow_home`."""
    api_port_ = port or api_port()
    venv_bin = Path(sys.executable).parent
    env = {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project_dir / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project_dir / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        # Sized for 2 cores: the default of 32 forks 32 idle workers (~4.4 GB).
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / "passwords.json"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{API_HOST}:{api_port_}/execution/",
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": str(api_port_),
        "MLOPS_API_PORT": str(api_port_),
        "AIRFLOW__API__BASE_URL": f"http://{API_HOST}:{api_port_}",
        # Log servers of the scheduler's workers and of the triggerer (UI reads task logs there).
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": os.environ.get("MLOPS_WORKER_LOG_PORT") or "8793",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": os.environ.get("MLOPS_TRIGGER_LOG_PORT") or "8794",
        # Pick up edited DAG files within 30 s instead of 5 minutes.
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "PYTHONPATH": str(project_dir),
        # These machines set PYTHONDONTWRITEBYTECODE: cache bytecode in the project instead.
        "PYTHONPYCACHEPREFIX": str(project_dir / ".cache" / "pycache"),
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLOPS_DATA_DIR": str(data_dir or Path(os.environ.get("MLOPS_DATA_DIR", project_dir / "data"))),
        **TELEMETRY_OFF,
        **NO_PICKLE,
    }
    return env


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m include.core.runtime_env <airflow_home>", file=sys.stderr)
        return 2
    for key, value in {**airflow_env(Path(argv[0]).resolve()), **services_env()}.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
