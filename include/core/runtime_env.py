"""The environment Airflow runs in, for `make run` and for the test session alike.

One function returns every variable, so the scheduler started by `make run` and the Airflow
that the tests start behave the same. `python -m include.core.runtime_env <airflow_home>` prints
them as shell `export` lines (the Makefile sources that file).
"""

from __future__ import annotations

import json
import os
import secrets
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
# Secrets generated at first start, each in a 0600 file of the Airflow home (never in the repo).
PASSWORDS_FILE = "passwords.json"  # the simple auth manager's: {"admin": "<password>"}
SERVING_TOKEN_FILE = "serving_token"  # the online service's POST /reload token
# The log servers of the scheduler's workers and of the triggerer listen on every interface in
# Airflow 3.3 (no host setting): `make run` does not start them (scripts/airflow_local_settings.py
# passes --skip-serve-logs). Task logs are files the API server reads itself (LocalExecutor).
LOG_SERVERS_ENV = "MLOPS_AIRFLOW_LOG_SERVERS"


def _write_secret(path: Path, text: str) -> None:
    """Create `path` readable by its owner only (mode 0600 from the start, never wider)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: narrow it too
    with os.fdopen(fd, "w") as out:
        out.write(text)


def ensure_admin_password(airflow_home: Path) -> bool:
    """Generate the Airflow admin password into $AIRFLOW_HOME/passwords.json unless one is there;
    True when it was generated now. The old default `admin` is replaced."""
    path = airflow_home / PASSWORDS_FILE
    try:
        current = json.loads(path.read_text()).get(ADMIN_USER)
    except (OSError, ValueError, AttributeError):
        current = None
    if current and current != "admin":
        path.chmod(0o600)
        return False
    _write_secret(path, json.dumps({ADMIN_USER: secrets.token_urlsafe(18)}) + "\n")
    return True


def admin_password(airflow_home: Path | None = None) -> str:
    """The Airflow admin password `make run` generated ($AIRFLOW_HOME/passwords.json)."""
    home = airflow_home or Path(os.environ.get("AIRFLOW_HOME") or PROJECT_DIR / ".airflow")
    path = home / PASSWORDS_FILE
    try:
        return str(json.loads(path.read_text())[ADMIN_USER])
    except (OSError, ValueError, KeyError) as exc:
        raise RuntimeError(
            f"no Airflow password for {ADMIN_USER!r} in {path} ({exc}): "
            "`make run` generates it at first start"
        ) from exc


def ensure_serving_token(airflow_home: Path) -> str:
    """The online service's /reload token from $AIRFLOW_HOME/serving_token, generated when missing."""
    path = airflow_home / SERVING_TOKEN_FILE
    token = path.read_text().strip() if path.is_file() else ""
    if not token:
        token = secrets.token_urlsafe(32)
        _write_secret(path, token + "\n")
    path.chmod(0o600)
    return token


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
    """Environment variables for an Airflow of this project living in `airflow_home`.

    At first call for a home it creates that home's secrets (admin password, serving token)."""
    api_port_ = port or api_port()
    airflow_home.mkdir(parents=True, exist_ok=True)
    ensure_admin_password(airflow_home)
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
        # user:role (the password is in the passwords file, generated at first start)
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(airflow_home / PASSWORDS_FILE),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{API_HOST}:{api_port_}/execution/",
        "AIRFLOW__API__HOST": API_HOST,
        "AIRFLOW__API__PORT": str(api_port_),
        "MLOPS_API_PORT": str(api_port_),
        "AIRFLOW__API__BASE_URL": f"http://{API_HOST}:{api_port_}",
        # Log servers of the scheduler's workers and of the triggerer: off (LOG_SERVERS_ENV); the
        # ports stay distinct per Airflow home for whoever turns them on (MLOPS_AIRFLOW_LOG_SERVERS=on).
        LOG_SERVERS_ENV: os.environ.get(LOG_SERVERS_ENV) or "off",
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": os.environ.get("MLOPS_WORKER_LOG_PORT") or "8793",
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": os.environ.get("MLOPS_TRIGGER_LOG_PORT") or "8794",
        # The tasks (deploy_champion, rollback_model) and the service share the /reload token.
        "MLOPS_SERVING_TOKEN": ensure_serving_token(airflow_home),
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
    home = Path(argv[0]).resolve()
    for key, value in {**airflow_env(home), **services_env()}.items():
        if key == "MLOPS_SERVING_TOKEN":  # read from its 0600 file when sourced: not copied here
            value_expr = f'"$(cat {shlex.quote(str(home / SERVING_TOKEN_FILE))})"'
            print(f"export {key}={value_expr}")
        else:
            print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
