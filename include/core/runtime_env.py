"""The environment Airflow runs in, for `make run` and for the test session alike.

One function returns every variable, so the scheduler started by `make run` and the Airflow
that the tests start behave the same. `python -m include.core.runtime_env <airflow_home>` prints
them as shell `export` lines (the Makefile sources that file).

The server profile (`make run PROFILE=server`, scripts/run_server.sh) runs the same DAGs and code
on PostgreSQL, Redis, an S3 server and Celery workers, all on loopback: `server_env` builds on
`airflow_env`, and `python -m include.core.runtime_env --profile server <home>` prints it. Its
secrets are generated at first start, each in a 0600 file of the home; the printed lines read
them from there when sourced and never contain one.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shlex
import socket
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
OPENLINEAGE_DIR = "openlineage"  # under the Airflow home (a worker's folder in the server profile)
OPENLINEAGE_NAMESPACE = "airflow-mlops"


def openlineage_env(folder: Path) -> dict[str, str]:
    """Airflow's OpenLineage provider: on, each event a JSON file in `folder` (one file per event,
    so concurrent tasks never interleave). MLOPS_OPENLINEAGE_TRANSPORT (the provider's JSON) wins:
    an HTTP consumer (Marquez) is that one variable (README, "Lineage"); AIRFLOW__OPENLINEAGE__DISABLED
    turns it off. Task events carry their inlets and outlets (include/airflow_glue/openlineage.py)."""
    folder.mkdir(parents=True, exist_ok=True)
    transport = {"type": "file", "log_file_path": str(folder / "event"), "append": False}
    return {
        "AIRFLOW__OPENLINEAGE__TRANSPORT": os.environ.get("MLOPS_OPENLINEAGE_TRANSPORT")
        or json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": OPENLINEAGE_NAMESPACE,
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "include.airflow_glue.openlineage.AssetLineageExtractor",
        # The task's code is named by the commit the lineage record holds, not copied into events
        # (an emission policy: the provider's older `disable_source_code` warns on every event).
        "AIRFLOW__OPENLINEAGE__EMISSION_POLICY": json.dumps(
            [{"scope": {}, "controls": {"include_source_code": False}}]
        ),
        # Emit from a thread of the task process, bounded by execution_timeout (10 s), instead of
        # forking a task process that holds scikit-learn's and OpenMP's threads.
        "AIRFLOW__OPENLINEAGE__EXECUTE_IN_THREAD": "True",
    }


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
        # make run's MLflow server: no job runner. MLflow 3.17 otherwise starts 7 huey consumer
        # processes for jobs the project never submits (measured: ~270 MB RSS each).
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
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
        # Bytecode: the venv's is compiled when it is built (make venv); the project's own modules
        # are cached beside them even where the machine sets PYTHONDONTWRITEBYTECODE (an empty
        # value turns it off). A PYTHONPYCACHEPREFIX would hide the venv's bytecode: measured,
        # `import airflow` 7.5 s from source against 2.3 s compiled, in every Airflow process.
        "PYTHONDONTWRITEBYTECODE": "",
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "MLOPS_DATA_DIR": str(data_dir or Path(os.environ.get("MLOPS_DATA_DIR", project_dir / "data"))),
        **openlineage_env(airflow_home / OPENLINEAGE_DIR),
        **TELEMETRY_OFF,
        **NO_PICKLE,
    }
    return env


# ---------------------------------------------------------------------------------------------
# The server profile: every server on 127.0.0.1, every piece of state under one home.

SERVER_HOME = ".airflow-server"  # under the project, unless AIRFLOW_HOME says otherwise
SECRETS_DIR = "secrets"  # 0700; one 0600 file per secret
# One database and one login role of the same name each: Airflow's metadata (and Celery's
# results), the flights source, MLflow's backend store, Feast's SQL registry, and the project's
# own tables (prediction log, monitoring).
PG_DATABASES = ("airflow", "flights", "mlflow", "feast", "mlops")
LAKE_BUCKET = "mlops-lake"
MLFLOW_BUCKET = "mlops-mlflow"
S3_REGION = "us-east-1"
# Defaults away from the embedded profile's and from moto's own 5000 (MLflow's default too);
# each is MLOPS_SERVER_<NAME>_PORT in the environment.
SERVER_PORTS: dict[str, int] = {
    "pg": 55432,
    "redis": 56379,
    "s3": 59000,
    "mlflow": 55000,
    "api": 58080,
    "serving": 58000,
    "worker_log": 58793,
    "trigger_log": 58795,
}
# The Celery workers and the loopback address each one's log server listens on. The API server
# fetches a running task's log from http://<the task's hostname>:<worker_log_server_port>: one
# port for every worker, so two workers on one machine differ by address (127.0.0.0/8 is all
# loopback), and each reports its address as its hostname (`airflow_hostname`).
SERVER_WORKERS: dict[str, str] = {"worker1": "127.0.0.2", "worker2": "127.0.0.3"}
WORKER_CONCURRENCY = 2
HOSTNAME_ENV = "MLOPS_AIRFLOW_HOSTNAME"


def airflow_hostname() -> str:
    """Airflow's [core] hostname_callable in the server profile: the address of this component's
    log server (MLOPS_AIRFLOW_HOSTNAME), the machine's name when unset."""
    return os.environ.get(HOSTNAME_ENV) or socket.getfqdn()


def server_home() -> Path:
    """Home of the server profile: $AIRFLOW_HOME, or .airflow-server in the project."""
    return Path(os.environ.get("AIRFLOW_HOME") or PROJECT_DIR / SERVER_HOME)


def server_port(name: str) -> int:
    """Port of one server of the server profile (SERVER_PORTS), MLOPS_SERVER_<NAME>_PORT wins."""
    return int(os.environ.get(f"MLOPS_SERVER_{name.upper()}_PORT") or SERVER_PORTS[name])


def _fernet_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


# name of the secret's file -> how a new one is made
SERVER_SECRETS = {
    **{f"pg-{db}": lambda: secrets.token_hex(24) for db in PG_DATABASES},
    "redis": lambda: secrets.token_hex(24),
    "s3-access-key": lambda: secrets.token_hex(10).upper(),
    "s3-secret-key": lambda: secrets.token_hex(20),
    "jwt-secret": lambda: secrets.token_urlsafe(48),  # Airflow's task tokens (API and workers)
    "api-secret-key": lambda: secrets.token_urlsafe(48),  # signs the log servers' requests
    "fernet-key": _fernet_key,  # encrypts connection passwords and variables in the database
}


def ensure_secret(home: Path, name: str) -> str:
    """The secret `name` from <home>/secrets/<name> (0600), generated when missing."""
    folder = home / SECRETS_DIR
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    path = folder / name
    value = path.read_text().strip() if path.is_file() else ""
    if not value:
        value = SERVER_SECRETS[name]()
        _write_secret(path, value + "\n")
    path.chmod(0o600)
    return value


def server_secret_files(home: Path) -> dict[str, Path]:
    """Every secret of the server profile's environment -> the 0600 file that holds it."""
    files = {ensure_secret(home, name): home / SECRETS_DIR / name for name in SERVER_SECRETS}
    files[ensure_serving_token(home)] = home / SERVING_TOKEN_FILE
    return files


def server_env(home: Path, *, project_dir: Path = PROJECT_DIR) -> dict[str, str]:
    """Environment of every process of the server profile living in `home` (its secrets are
    generated at the first call). Same DAGs and code as `airflow_env`: only the executor, the
    databases, the connections and where the lake and MLflow keep their data differ."""
    ports = {name: server_port(name) for name in SERVER_PORTS}
    env = airflow_env(home, project_dir=project_dir, data_dir=home / "data", port=ports["api"])
    secret = {name: ensure_secret(home, name) for name in SERVER_SECRETS}

    def pg(db: str, scheme: str = "postgresql+psycopg") -> str:
        return f"{scheme}://{db}:{secret[f'pg-{db}']}@{API_HOST}:{ports['pg']}/{db}"

    redis = f"redis://:{secret['redis']}@{API_HOST}:{ports['redis']}"
    s3 = f"http://{API_HOST}:{ports['s3']}"
    env.update(
        {
            # Airflow: separate components, CeleryExecutor on Redis (db 0), metadata on PostgreSQL
            # (psycopg 3, Airflow's default driver with SQLAlchemy 2), Celery's results beside it.
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": pg("airflow"),
            "AIRFLOW__CELERY__BROKER_URL": f"{redis}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + pg("airflow"),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
            # A task still unacknowledged after this is redelivered: above dagrun_timeout (2 h).
            "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
            # Shared by every component: task tokens, log-server requests, encrypted fields.
            "AIRFLOW__API_AUTH__JWT_SECRET": secret["jwt-secret"],
            "AIRFLOW__API__SECRET_KEY": secret["api-secret-key"],
            "AIRFLOW__CORE__FERNET_KEY": secret["fernet-key"],
            "AIRFLOW__API__WORKERS": "1",  # 2 cores; the default 4 costs ~1 GB
            # No process per worker cleaning bundle versions: the dags folder has none (~135 MB).
            "AIRFLOW__DAG_PROCESSOR__STALE_BUNDLE_CLEANUP_INTERVAL": "0",
            # Log servers: Airflow's own bind every interface, so they stay off (LOG_SERVERS_ENV,
            # --skip-serve-logs) and run_server.sh starts one per worker on the worker's loopback
            # address. The triggerer writes into the home's logs folder, which the API server
            # reads itself: it needs none.
            LOG_SERVERS_ENV: "off",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "include.core.runtime_env.airflow_hostname",
            HOSTNAME_ENV: API_HOST,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(ports["worker_log"]),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(ports["trigger_log"]),
            # The project's settings (include/core/settings.py) and connections.
            "MLOPS_LAKE_ROOT": f"s3://{LAKE_BUCKET}/lake",
            # Validation results, Data Docs, drift reports: read by other workers and the API server.
            "MLOPS_ARTIFACTS_ROOT": f"s3://{LAKE_BUCKET}/artifacts",
            "MLOPS_FEAST_ONLINE_STORE": "redis",
            "AIRFLOW_CONN_FEAST_ONLINE_STORE": f"{redis}/1",
            "MLOPS_FEAST_REGISTRY_URL": pg("feast"),
            # postgresql:// is both an Airflow connection URI and a SQLAlchemy URL (the demo build).
            "AIRFLOW_CONN_FLIGHTS_SOURCE": pg("flights", "postgresql"),
            "MLOPS_PREDICTION_LOG_URL": pg("mlops"),
            "MLOPS_MONITORING_URL": pg("mlops"),
            "MLOPS_MLFLOW_PORT": str(ports["mlflow"]),
            "MLOPS_SERVING_PORT": str(ports["serving"]),
            "MLFLOW_TRACKING_URI": f"http://{API_HOST}:{ports['mlflow']}",
            "MLOPS_SERVING_URL": f"http://{API_HOST}:{ports['serving']}",
            # MLflow's server only: its backend store, and no job runner (huey consumers).
            "MLFLOW_BACKEND_STORE_URI": pg("mlflow"),
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLOPS_MLFLOW_ARTIFACTS": f"s3://{MLFLOW_BUCKET}/artifacts",
            # The S3 server: boto3, s3fs and MLflow's artifact store read these.
            "AWS_ENDPOINT_URL": s3,
            "AWS_ENDPOINT_URL_S3": s3,
            "MLFLOW_S3_ENDPOINT_URL": s3,
            "AWS_ACCESS_KEY_ID": secret["s3-access-key"],
            "AWS_SECRET_ACCESS_KEY": secret["s3-secret-key"],
            "AWS_DEFAULT_REGION": S3_REGION,
            # Where scripts/run_server.sh starts each server.
            **{f"MLOPS_SERVER_{name.upper()}_PORT": str(port) for name, port in ports.items()},
            "MLOPS_SERVER_PG_DATABASES": " ".join(PG_DATABASES),
            "MLOPS_SERVER_BUCKETS": f"{LAKE_BUCKET} {MLFLOW_BUCKET}",
            "MLOPS_SERVER_WORKERS": " ".join(SERVER_WORKERS),
        }
    )
    return env


def server_worker_env(home: Path, name: str) -> dict[str, str]:
    """What differs for Celery worker `name` (on top of `server_env`): its own folder (working
    directory, TMPDIR, data folder, task logs), as if the workers shared no disk, and the loopback
    address its log server listens on."""
    folder = home / "workers" / name
    env = {
        "MLOPS_SERVER_WORKER_DIR": str(folder),
        "TMPDIR": str(folder / "tmp"),
        "MLOPS_DATA_DIR": str(folder / "data"),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(folder / "logs"),
        HOSTNAME_ENV: SERVER_WORKERS[name],
        # Each worker's lineage events stay on its own disk (a real deployment sends them over HTTP).
        **openlineage_env(folder / OPENLINEAGE_DIR),
    }
    for key in ("TMPDIR", "MLOPS_DATA_DIR", "AIRFLOW__LOGGING__BASE_LOG_FOLDER"):
        Path(env[key]).mkdir(parents=True, exist_ok=True)
    return env


def _shell_value(value: str, secret_files: dict[str, Path]) -> str:
    """`value` as one shell word; each secret in it becomes `$(cat <its file>)` (read when sourced)."""
    present = sorted((s for s in secret_files if s and s in value), key=len, reverse=True)
    if not present:
        return shlex.quote(value)
    pieces = re.split("(" + "|".join(re.escape(s) for s in present) + ")", value)
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:  # a secret (re.split keeps the matched group at odd positions)
            out.append(f"$(cat {shlex.quote(str(secret_files[piece]))})")
        else:
            out.append(re.sub(r'([\\"$`])', r"\\\1", piece))
    return '"' + "".join(out) + '"'


def shell_exports(env: dict[str, str], secret_files: dict[str, Path]) -> str:
    """`export` lines for `env` holding no secret: each one (a key of `secret_files`) is read from
    its 0600 file when the lines are sourced."""
    text = "".join(f"export {key}={_shell_value(value, secret_files)}\n" for key, value in env.items())
    leaked = sorted(path.name for value, path in secret_files.items() if value and value in text)
    if leaked:  # never write a secret out, whatever a value looks like
        raise RuntimeError(f"the environment file would contain the secrets {leaked}")
    return text


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m include.core.runtime_env", description="Print the environment as export lines."
    )
    parser.add_argument("--profile", choices=["embedded", "server"], default="embedded")
    parser.add_argument("--worker", choices=sorted(SERVER_WORKERS), help="server profile: one worker's part")
    parser.add_argument("home", type=Path, help="the Airflow home")
    args = parser.parse_args(argv)
    home = args.home.resolve()
    if args.profile == "server":
        if args.worker:
            sys.stdout.write(shell_exports(server_worker_env(home, args.worker), {}))
        else:
            sys.stdout.write(shell_exports(server_env(home), server_secret_files(home)))
        return 0
    env = {**airflow_env(home), **services_env()}
    sys.stdout.write(shell_exports(env, {env["MLOPS_SERVING_TOKEN"]: home / SERVING_TOKEN_FILE}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
