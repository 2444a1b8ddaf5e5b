"""The server profile's environment (include/core/runtime_env.server_env) and its env.sh.

No server is started here: scripts/run_server.sh does that (`make run PROFILE=server`). These
tests check what every process of that profile is given: its secrets generated once into 0600
files, an env file that reads them from there when sourced and holds none, the same values after
sourcing, and a worker's own folder and address.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest

from include.core import runtime_env
from include.core.settings import PROJECT_DIR


@pytest.fixture
def home(tmp_path, monkeypatch):
    for name in list(os.environ):
        if name.startswith("MLOPS_SERVER_"):
            monkeypatch.delenv(name)
    return tmp_path / "server"


def test_secrets_are_generated_once_into_0600_files(home):
    env = runtime_env.server_env(home)
    folder = home / runtime_env.SECRETS_DIR
    assert folder.stat().st_mode & 0o777 == 0o700
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(runtime_env.SERVER_SECRETS)
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in folder.iterdir())
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == (folder / "jwt-secret").read_text().strip()
    # Kept at the next start (the control: not regenerated each time)
    assert runtime_env.server_env(home) == env
    # Distinct secrets: no role shares another's password.
    values = [(folder / name).read_text() for name in files]
    assert len(set(values)) == len(values)


def test_the_server_profile_environment(home):
    env = runtime_env.server_env(home)
    pg = runtime_env.SERVER_PORTS["pg"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg://airflow:")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith(f"@127.0.0.1:{pg}/airflow")
    assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CELERY__BROKER_URL"].endswith("@127.0.0.1:56379/0")
    assert env["AIRFLOW_CONN_FEAST_ONLINE_STORE"].endswith("@127.0.0.1:56379/1")
    assert env["AIRFLOW_CONN_FLIGHTS_SOURCE"].startswith("postgresql://flights:")
    assert env["MLOPS_LAKE_ROOT"] == "s3://mlops-lake/lake"
    assert env["MLOPS_ARTIFACTS_ROOT"] == "s3://mlops-lake/artifacts"
    assert env["MLOPS_FEAST_ONLINE_STORE"] == "redis"
    assert env["MLOPS_FEAST_REGISTRY_URL"].startswith("postgresql+psycopg://feast:")
    assert env["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:55000"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:58080/execution/"
    assert env["AWS_ENDPOINT_URL_S3"] == "http://127.0.0.1:59000"
    # Every server on loopback, none on the embedded profile's ports (5000, 8000, 8080).
    ports = {int(v) for k, v in env.items() if k.startswith("MLOPS_SERVER_") and k.endswith("_PORT")}
    assert ports == set(runtime_env.SERVER_PORTS.values()) and not ports & {5000, 8000, 8080}


def test_a_port_can_be_moved(home, monkeypatch):
    monkeypatch.setenv("MLOPS_SERVER_PG_PORT", "55555")
    env = runtime_env.server_env(home)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].endswith("@127.0.0.1:55555/airflow")


def test_env_sh_holds_no_secret_and_sources_to_the_same_values(home, capsys):
    assert runtime_env.main(["--profile", "server", str(home)]) == 0
    text = capsys.readouterr().out
    env = runtime_env.server_env(home)
    for secret in runtime_env.server_secret_files(home):
        assert secret not in text
    assert runtime_env.admin_password(home) not in text
    assert f":$(cat {home / 'secrets' / 'redis'})@127.0.0.1:" in text
    script = home / "env.sh"
    script.write_text(text)
    keys = ["AIRFLOW__CELERY__BROKER_URL", "AWS_SECRET_ACCESS_KEY", "MLOPS_SERVING_TOKEN", "MLOPS_LAKE_ROOT"]
    printed = subprocess.run(
        ["bash", "-c", f'. "$1" && printf "%s\\n" {" ".join(f"${k}" for k in keys)}', "_", str(script)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert printed == [env[k] for k in keys]


def test_shell_exports_refuses_to_write_a_secret():
    assert runtime_env.shell_exports({"A": "pw=t0ps3cret"}, {"t0ps3cret": Path("/h/pw")}) == (
        'export A="pw=$(cat /h/pw)"\n'
    )
    # A secret that also appears elsewhere in the text (here: in its file's path) is refused.
    with pytest.raises(RuntimeError, match="secrets"):
        runtime_env.shell_exports({"A": "pw=secrets"}, {"secrets": Path("/h/secrets/pw")})


def test_shell_values_are_quoted():
    value = runtime_env._shell_value('a"b$c`d\\e-S3CRET', {"S3CRET": Path("/h/s e")})
    out = subprocess.run(
        ["bash", "-c", f"printf %s {value}"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}
    )
    assert value.endswith("$(cat '/h/s e')\"") and out.stdout == 'a"b$c`d\\e-'


def test_each_worker_has_its_own_folder_and_address(home):
    one = runtime_env.server_worker_env(home, "worker1")
    two = runtime_env.server_worker_env(home, "worker2")
    assert one["TMPDIR"] == str(home / "workers" / "worker1" / "tmp") and Path(one["TMPDIR"]).is_dir()
    assert one["MLOPS_DATA_DIR"] != two["MLOPS_DATA_DIR"]
    assert one["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] != two["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]
    assert {one[runtime_env.HOSTNAME_ENV], two[runtime_env.HOSTNAME_ENV]} == {"127.0.0.2", "127.0.0.3"}


def test_hostname_callable(monkeypatch):
    monkeypatch.setenv(runtime_env.HOSTNAME_ENV, "127.0.0.2")
    assert runtime_env.airflow_hostname() == "127.0.0.2"
    monkeypatch.delenv(runtime_env.HOSTNAME_ENV)
    assert runtime_env.airflow_hostname()  # the machine's name (control)


def test_heavy_imports_go_where_tasks_are_forked():
    spec = importlib.util.spec_from_file_location(
        "local_settings", PROJECT_DIR / "scripts/airflow_local_settings.py"
    )
    assert spec is not None and spec.loader is not None
    local = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(local)  # pytest's argv: nothing imported
    forks = local.forks_tasks
    assert forks(["airflow", "scheduler"], None) and forks(["airflow", "scheduler"], "LocalExecutor")
    assert not forks(["airflow", "scheduler"], "CeleryExecutor")
    assert forks(["airflow", "celery", "worker", "-c", "2"], "CeleryExecutor")
    assert not forks(["airflow", "api-server"], "CeleryExecutor")
