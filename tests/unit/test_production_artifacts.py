"""Static checks of the production artifacts: deploy/Dockerfile and deploy/helm/values.yaml.

Nothing is built or installed: there is no Docker engine, Kubernetes or helm binary here. The
files are read as text (the Dockerfile) and YAML (the chart values) and compared with the
project's own sources of truth: requirements.txt (the Airflow version), ruff.toml (the Python
version), include/core/runtime_env.py (the environment the project runs in), airflow_settings.yaml
(connections and pools). Each check is a function returning its problems; every test also runs
it on a deliberately broken copy, which must be reported (the control).
"""

from __future__ import annotations

import copy
import itertools
import re
import shlex
import tomllib
from pathlib import PurePosixPath
from typing import Any

import pytest
import yaml

from include.airflow_glue.settings_file import load_settings_file
from include.core.runtime_env import NO_PICKLE, TELEMETRY_OFF
from include.core.settings import FEAST_ONLINE_CONN_ID, PROJECT_DIR

DOCKERFILE = PROJECT_DIR / "deploy" / "Dockerfile"
VALUES = PROJECT_DIR / "deploy" / "helm" / "values.yaml"

# Top-level keys of the official Apache Airflow Helm chart 1.22.0 that these values may use,
# checked against that chart's parameters reference, its release notes and the pull requests that
# introduced them (workers.celery.replicas: apache/airflow#59730; jwtSecretName with key
# `jwt-secret` and apiSecretKeySecretName with key `api-secret-key`: the chart's secret helpers).
# A key outside this list is a typo or a key of another chart version: check it, then add it here.
CHART_1_22_TOP_LEVEL_KEYS = frozenset(
    {
        "airflowVersion",
        "defaultAirflowRepository",
        "defaultAirflowTag",
        "images",
        "executor",
        "workers",
        "scheduler",
        "apiServer",
        "triggerer",
        "dagProcessor",
        "dags",
        "airflowLocalSettings",
        "postgresql",
        "redis",
        "data",
        "fernetKeySecretName",
        "apiSecretKeySecretName",
        "jwtSecretName",
        "secret",
        "env",
        "extraEnvFrom",
        "volumes",
        "volumeMounts",
        "config",
        "createUserJob",
        "migrateDatabaseJob",
        "logs",
        "statsd",
        "networkPolicies",
        "ingress",
    }
)

# Where the base image keeps Airflow's home; the Dockerfile names it ${AIRFLOW_HOME}.
HOME = "${AIRFLOW_HOME}"
# What the image must contain: source in the build context -> destination in the image.
REQUIRED_COPIES = {
    "dags": f"{HOME}/dags",
    "include": f"{HOME}/include",
    "plugins": f"{HOME}/plugins",
    "airflow_settings.yaml": f"{HOME}/airflow_settings.yaml",
    "scripts/airflow_local_settings.py": f"{HOME}/config/airflow_local_settings.py",
}
# Paths of local state that hold secrets (`make run` writes its generated passwords there).
SECRET_SOURCES = re.compile(r"(^|/)(\.airflow[^/]*|data|\.env|passwords\.json|serving_token)(/|$)")
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|FERNET|PRIVATE|CREDENTIAL|(^|_)KEY$|API_KEY")
URL_WITH_CREDENTIALS = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]+@", re.IGNORECASE)


# --- the project's sources of truth ---------------------------------------------------------------


def airflow_version() -> str:
    text = (PROJECT_DIR / "requirements.txt").read_text()
    match = re.search(r"^apache-airflow==(\S+)", text, re.MULTILINE)
    assert match, "requirements.txt pins no apache-airflow version"
    return match.group(1)


def python_version() -> str:
    target = tomllib.loads((PROJECT_DIR / "ruff.toml").read_text())["target-version"]  # "py311"
    return f"{target[2]}.{target[3:]}"


def project_settings() -> Any:
    return load_settings_file(PROJECT_DIR / "airflow_settings.yaml", env={"MLOPS_DATA_DIR": "/data"})


# --- reading a Dockerfile -------------------------------------------------------------------------


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    out = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def env_of(text: str) -> dict[str, str]:
    """Every variable the Dockerfile's ENV instructions set (KEY=VALUE form)."""
    env: dict[str, str] = {}
    for keyword, args in instructions(text):
        if keyword == "ENV":
            for item in shlex.split(args):
                key, sep, value = item.partition("=")
                env[key] = value if sep else ""
    return env


def copies_of(text: str) -> list[tuple[list[str], str]]:
    """(sources, destination) of each COPY/ADD, options such as --chown dropped."""
    out = []
    for keyword, args in instructions(text):
        if keyword in ("COPY", "ADD"):
            words = [w for w in shlex.split(args) if not w.startswith("--")]
            out.append(([w.removeprefix("./").rstrip("/") or "." for w in words[:-1]], words[-1].rstrip("/")))
    return out


# --- checks of the Dockerfile ---------------------------------------------------------------------


def base_image_problems(text: str, version: str, python: str) -> list[str]:
    froms = [args.split()[0] for keyword, args in instructions(text) if keyword == "FROM"]
    if len(froms) != 1:
        return [f"expected one FROM, found {froms}"]
    match = re.fullmatch(
        r"apache/airflow:(?P<v>[^-@]+)-python(?P<py>\d+\.\d+)(@sha256:[0-9a-f]{64})?", froms[0]
    )
    if not match:
        return [f"FROM {froms[0]} is not apache/airflow pinned to <version>-python<x.y>"]
    problems = []
    if match["v"] != version:
        problems.append(f"FROM is Airflow {match['v']}, requirements.txt pins {version}")
    if match["py"] != python:
        problems.append(f"FROM is Python {match['py']}, the project is Python {python}")
    return problems


def lock_install_problems(text: str) -> list[str]:
    steps = instructions(text)
    copied = any(
        PurePosixPath(src).name == "requirements.lock" for srcs, _ in copies_of(text) for src in srcs
    )
    problems = [] if copied else ["requirements.lock is not copied into the image"]
    user = "root"
    installs = []
    for keyword, args in steps:
        if keyword == "USER":
            user = args.split(":")[0]
        if keyword == "RUN" and re.search(r"\b(uv )?pip install\b", args):
            installs.append((user, shlex.split(args)))

    def installs_the_lock(words: list[str]) -> bool:
        pairs = itertools.pairwise(words)
        reads_lock = any(w == "-r" and PurePosixPath(n).name == "requirements.lock" for w, n in pairs)
        return reads_lock and "--require-hashes" in words

    hashed = [(u, words) for u, words in installs if installs_the_lock(words)]
    if not hashed:
        problems.append("no RUN installs requirements.lock with --require-hashes")
    problems += [
        f"the lock is installed as {u}, not as the airflow user" for u, _ in hashed if u != "airflow"
    ]
    problems += [
        f"another pip install without hashes: {' '.join(w)}" for u, w in installs if (u, w) not in hashed
    ]
    users = [args.split(":")[0] for keyword, args in steps if keyword == "USER"]
    if not users or users[-1] != "airflow":
        problems.append("the image does not end as the airflow user")
    return problems


def copy_problems(text: str) -> list[str]:
    copies = copies_of(text)
    problems = []
    for source, destination in REQUIRED_COPIES.items():
        found = [dst for srcs, dst in copies if source in srcs]
        if not found:
            problems.append(f"{source} is not copied into the image")
        elif not any(dst in (destination, str(PurePosixPath(destination).parent)) for dst in found):
            problems.append(f"{source} is copied to {found}, not to {destination}")
    for srcs, _ in copies:
        for src in srcs:
            if src in (".", "*") or SECRET_SOURCES.search(src):
                problems.append(f"COPY {src} would bake local state (generated passwords) into the image")
    pythonpath = env_of(text).get("PYTHONPATH", "")
    if str(PurePosixPath(REQUIRED_COPIES["include"]).parent) not in pythonpath.split(":"):
        problems.append(f"PYTHONPATH={pythonpath!r} does not contain the folder include/ is copied into")
    return problems


def runtime_env_problems(text: str) -> list[str]:
    env = env_of(text)
    return [
        f"ENV {key} is {env.get(key)!r}, the project runs with {value!r} (include/core/runtime_env.py)"
        for key, value in {**NO_PICKLE, **TELEMETRY_OFF}.items()
        if env.get(key) != value
    ]


def dockerfile_secret_problems(text: str) -> list[str]:
    problems = []
    for keyword, args in instructions(text):
        if keyword == "ENV":
            items = shlex.split(args)
        elif keyword == "ARG":
            items = args.split()
        else:
            continue
        for item in items:
            key, _, value = item.partition("=")
            if key.startswith("AIRFLOW_CONN_"):
                problems.append(f"{keyword} {key}: connections come from the environment at run time")
            elif SECRET_NAME.search(key.upper()) and value:
                problems.append(f"{keyword} {key} has a literal value")
    problems += [f"a URL with credentials: {m.group(0)}..." for m in URL_WITH_CREDENTIALS.finditer(text)]
    return problems


# --- checks of the chart values -------------------------------------------------------------------


def walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of every leaf."""
    if isinstance(node, dict):
        return [leaf for k, v in node.items() for leaf in walk(v, f"{path}.{k}" if path else str(k))]
    if isinstance(node, list):
        return [leaf for i, v in enumerate(node) for leaf in walk(v, f"{path}[{i}]")]
    return [(path, node)]


def get(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def executor_problems(values: dict[str, Any]) -> list[str]:
    problems = []
    if values.get("executor") != "CeleryExecutor":
        problems.append(f"executor is {values.get('executor')!r}, not CeleryExecutor")
    if get(values, "workers.celery.replicas") != 2:
        problems.append(f"workers.celery.replicas is {get(values, 'workers.celery.replicas')!r}, not 2")
    if get(values, "workers.replicas") is not None:
        problems.append("workers.replicas is deprecated since chart 1.19: use workers.celery.replicas")
    return problems


def external_services_problems(values: dict[str, Any]) -> list[str]:
    problems = []
    for chart_key in (
        "postgresql.enabled",
        "redis.enabled",
        "dags.gitSync.enabled",
        "dags.persistence.enabled",
    ):
        if get(values, chart_key) is not False:
            problems.append(f"{chart_key} is {get(values, chart_key)!r}, not false")
    for name in (
        "data.metadataSecretName",
        "data.brokerUrlSecretName",
        "fernetKeySecretName",
        "apiSecretKeySecretName",
        "jwtSecretName",
    ):
        if not isinstance(get(values, name), str) or not get(values, name):
            problems.append(f"{name} names no existing secret")
    for inline in ("data.metadataConnection", "data.brokerUrl", "fernetKey", "apiSecretKey", "jwtSecret"):
        if get(values, inline) is not None:
            problems.append(f"{inline} is set inline; use the *SecretName key instead")
    if "airflowLocalSettings" not in values or values["airflowLocalSettings"] is not None:
        problems.append(
            "airflowLocalSettings must be null: the image's local settings file must not be replaced"
        )
    return problems


def is_secret_like(key: str) -> bool:
    lowered = key.lower()
    if lowered.endswith(("secretname", "secretkey", "secretannotations", "envname")):
        return False  # the name of a secret, or of a key inside one: not a secret itself
    return bool(re.search(r"pass(word|wd)?$|secret|token|fernet|credential|privatekey|apikey", lowered))


def inline_secret_problems(values: dict[str, Any]) -> list[str]:
    problems = []
    for path, value in walk(values):
        key = re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1]
        if is_secret_like(key) and value not in (None, "", False):
            problems.append(f"{path} holds a literal value")
        if isinstance(value, str) and URL_WITH_CREDENTIALS.search(value):
            problems.append(f"{path} holds a URL with credentials")
    for scope in ("env", "workers.env", "scheduler.env", "apiServer.env", "triggerer.env"):
        for item in get(values, scope) or []:
            if SECRET_NAME.search(str(item.get("name", "")).upper()) and "value" in item:
                problems.append(f"{scope}: {item['name']} has a literal value; take it from a secret")
    return problems


def from_secret(values: dict[str, Any]) -> set[str]:
    """Environment variables the values take from Kubernetes secrets."""
    names = {item["envName"] for item in values.get("secret") or [] if item.get("secretName")}
    names |= {
        item["name"] for item in values.get("env") or [] if (item.get("valueFrom") or {}).get("secretKeyRef")
    }
    return names


def connection_problems(values: dict[str, Any], conn_ids: set[str]) -> list[str]:
    provided = from_secret(values)
    problems = [
        f"connection {conn_id} is not provided (AIRFLOW_CONN_{conn_id.upper()} from a secret)"
        for conn_id in sorted(conn_ids)
        if f"AIRFLOW_CONN_{conn_id.upper()}" not in provided
    ]
    if "MLFLOW_TRACKING_URI" not in provided:
        problems.append("MLFLOW_TRACKING_URI is not provided from a secret")
    return problems


def image_problems(values: dict[str, Any], version: str) -> list[str]:
    problems = []
    repository, tag = get(values, "images.airflow.repository"), str(get(values, "images.airflow.tag"))
    if not repository or repository == "apache/airflow":
        problems.append(f"images.airflow.repository is {repository!r}, not the image of deploy/Dockerfile")
    if tag.split("-")[0] != version:
        problems.append(f"images.airflow.tag {tag!r} is not Airflow {version}")
    for key in ("airflowVersion", "defaultAirflowTag"):
        if str(values.get(key)) != version:
            problems.append(f"{key} is {values.get(key)!r}, not {version}")
    return problems


def chart_key_problems(values: dict[str, Any]) -> list[str]:
    return [
        f"{key} is not a verified key of chart 1.22.0"
        for key in sorted(set(values) - CHART_1_22_TOP_LEVEL_KEYS)
    ]


def pool_problems(values: dict[str, Any], pools: dict[str, tuple[int, str]]) -> list[str]:
    """`pools`: name -> (slots, description), as in airflow_settings.yaml."""
    args = get(values, "migrateDatabaseJob.args") or []
    script = args[-1] if args else ""
    lines = [shlex.split(line) for line in script.splitlines() if line.strip()]
    problems = []
    if get(values, "migrateDatabaseJob.enabled") is not True:
        problems.append("migrateDatabaseJob is not enabled")
    if ["set", "-e"] not in lines:
        problems.append("the migration job's script does not stop at the first failure (set -e)")
    migrate = next((i for i, w in enumerate(lines) if w[:3] == ["airflow", "db", "migrate"]), None)
    if migrate is None:
        problems.append("the migration job no longer runs `airflow db migrate`")
    applied = {}
    for i, words in enumerate(lines):
        if words[:3] == ["airflow", "pools", "set"]:
            applied[words[3]] = (int(words[4]), " ".join(words[5:]))
            if migrate is None or i < migrate:
                problems.append(f"pool {words[3]} is set before `airflow db migrate`")
    if applied != pools:
        problems.append(f"pools applied {applied} differ from airflow_settings.yaml {pools}")
    return problems


# --- the tests ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def values() -> dict[str, Any]:
    parsed = yaml.safe_load(VALUES.read_text())
    assert isinstance(parsed, dict)
    return parsed


def broken(values: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A deep copy of `values` with one key set (or removed, for value ...)."""
    out = copy.deepcopy(values)
    *parents, last = dotted.split(".")
    node = out
    for part in parents:
        node = node.setdefault(part, {})
    if value is ...:
        node.pop(last, None)
    else:
        node[last] = value
    return out


def test_base_image_is_the_pinned_airflow_and_python(dockerfile):
    version, python = airflow_version(), python_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version) and re.fullmatch(r"3\.\d+", python), (version, python)
    assert base_image_problems(dockerfile, version, python) == []
    assert base_image_problems(dockerfile.replace(f"airflow:{version}-", "airflow:0.0.1-"), version, python)
    assert base_image_problems(dockerfile.replace(f"-python{python}", "-python2.7"), version, python)
    assert base_image_problems(
        dockerfile.replace(f"airflow:{version}-python{python}", "airflow:latest"), version, python
    )


def test_the_lock_is_installed_with_hashes_as_the_airflow_user(dockerfile):
    assert lock_install_problems(dockerfile) == []
    assert lock_install_problems(dockerfile.replace("--require-hashes ", ""))
    assert lock_install_problems(dockerfile.replace("USER airflow", "USER root"))
    unpinned = dockerfile + "\nRUN pip install --no-cache-dir evidently\n"
    assert lock_install_problems(unpinned) == [
        "another pip install without hashes: pip install --no-cache-dir evidently"
    ]


def test_the_project_code_is_copied_and_importable(dockerfile):
    assert copy_problems(dockerfile) == []
    for source in REQUIRED_COPIES:
        without = "\n".join(line for line in dockerfile.splitlines() if f" {source}" not in line)
        assert any(source in p for p in copy_problems(without)), source
    assert copy_problems(dockerfile.replace("ENV PYTHONPATH=${AIRFLOW_HOME}", "ENV PYTHONPATH=/srv"))
    assert copy_problems(dockerfile + "\nCOPY . ${AIRFLOW_HOME}/project/\n")
    assert copy_problems(dockerfile + "\nCOPY .airflow/passwords.json /tmp/\n")


def test_no_pickle_and_no_telemetry_as_in_runtime_env(dockerfile):
    assert NO_PICKLE == {"MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false"}
    assert runtime_env_problems(dockerfile) == []
    assert runtime_env_problems(dockerfile.replace("DESERIALIZATION=false", "DESERIALIZATION=true"))
    assert runtime_env_problems(dockerfile.replace("FEAST_USAGE=False", "FEAST_USAGE=True"))


def test_no_secret_is_baked_into_the_image(dockerfile):
    assert dockerfile_secret_problems(dockerfile) == []
    for line in (
        "ENV AIRFLOW__CORE__FERNET_KEY=c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0wMDAwMDA=",
        "ARG MLOPS_SERVING_TOKEN=abc",
        "ENV AIRFLOW_CONN_FLIGHTS_SOURCE=sqlite:///flights.db",
        "ENV MLFLOW_TRACKING_URI=postgresql://mlflow:hunter2@db:5432/mlflow",
    ):
        assert dockerfile_secret_problems(dockerfile + "\n" + line + "\n"), line


def test_values_run_celery_with_two_workers(values):
    assert executor_problems(values) == []
    assert executor_problems(broken(values, "executor", "LocalExecutor"))
    assert executor_problems(broken(values, "workers.celery.replicas", 1))
    assert executor_problems(broken(values, "workers.replicas", 2))


def test_values_use_external_postgres_redis_and_existing_secrets(values):
    assert external_services_problems(values) == []
    assert external_services_problems(broken(values, "postgresql.enabled", True))
    assert external_services_problems(broken(values, "redis.enabled", True))
    assert external_services_problems(broken(values, "dags.gitSync.enabled", True))
    assert external_services_problems(broken(values, "jwtSecretName", ...))
    assert external_services_problems(broken(values, "data.brokerUrlSecretName", None))
    assert external_services_problems(broken(values, "airflowLocalSettings", ...))


def test_values_hold_no_inline_secret(values):
    assert inline_secret_problems(values) == []
    assert inline_secret_problems(
        broken(values, "data.metadataConnection", {"user": "airflow", "pass": "pw"})
    )
    assert inline_secret_problems(broken(values, "jwtSecret", "not-so-secret"))
    assert inline_secret_problems(broken(values, "redis.password", "pw"))
    leaky = copy.deepcopy(values)
    leaky["env"].append({"name": "MLOPS_SERVING_TOKEN", "value": "abc"})
    assert inline_secret_problems(leaky)
    leaky = copy.deepcopy(values)
    leaky["env"].append({"name": "MLFLOW_TRACKING_URI", "value": "http://u:p@mlflow:5000"})
    assert inline_secret_problems(leaky)


def test_values_provide_every_connection_the_dags_use(values):
    conn_ids = {c.conn_id for c in project_settings().connections}
    assert "flights_source" in conn_ids
    # feast_online_store is read because these values pick a server online store (redis).
    online_store = {e["name"]: e.get("value") for e in values["env"]}["MLOPS_FEAST_ONLINE_STORE"]
    assert online_store in ("redis", "postgres")
    conn_ids.add(FEAST_ONLINE_CONN_ID)
    assert connection_problems(values, conn_ids) == []
    without = copy.deepcopy(values)
    without["secret"] = [s for s in without["secret"] if s["envName"] != "AIRFLOW_CONN_FLIGHTS_SOURCE"]
    assert connection_problems(without, conn_ids) == [
        "connection flights_source is not provided (AIRFLOW_CONN_FLIGHTS_SOURCE from a secret)"
    ]
    assert connection_problems(values, conn_ids | {"mlops_alerts_smtp"})  # an id the values lack
    without = copy.deepcopy(values)
    without["secret"] = [s for s in without["secret"] if s["envName"] != "MLFLOW_TRACKING_URI"]
    assert connection_problems(without, conn_ids)


def test_values_run_the_image_of_this_airflow_version(values):
    version = airflow_version()
    assert image_problems(values, version) == []
    assert image_problems(broken(values, "images.airflow.tag", "0.0.1"), version)
    assert image_problems(broken(values, "images.airflow.repository", "apache/airflow"), version)
    assert image_problems(broken(values, "airflowVersion", "0.0.1"), version)
    assert image_problems(broken(values, "images.airflow.tag", f"{version}-abc123"), version) == []


def test_values_use_only_verified_chart_keys(values):
    assert chart_key_problems(values) == []
    assert chart_key_problems(broken(values, "workerReplicas", 2)) == [
        "workerReplicas is not a verified key of chart 1.22.0"
    ]
    # A key of the chart, but deprecated for Airflow 3 (apiSecretKeySecretName replaces it).
    assert chart_key_problems(broken(values, "webserverSecretKeySecretName", "x"))


def test_the_pools_of_airflow_settings_are_applied_after_migration(values):
    pools = {p.name: (p.slots, p.description) for p in project_settings().pools}
    assert pools["champion_alias"][0] == 1
    assert pool_problems(values, pools) == []
    script = values["migrateDatabaseJob"]["args"][-1]
    one_slot_more = broken(
        values,
        "migrateDatabaseJob.args",
        ["bash", "-c", script.replace("champion_alias 1", "champion_alias 2")],
    )
    assert pool_problems(one_slot_more, pools)
    reworded = script.replace("never run concurrently", "run one at a time")
    assert pool_problems(broken(values, "migrateDatabaseJob.args", ["bash", "-c", reworded]), pools)
    missing = "\n".join(line for line in script.splitlines() if "feast_registry" not in line)
    assert pool_problems(broken(values, "migrateDatabaseJob.args", ["bash", "-c", missing]), pools)
    first = script.splitlines()
    reordered = "\n".join([first[0], *first[2:], first[1]])  # pools before the migration
    assert pool_problems(broken(values, "migrateDatabaseJob.args", ["bash", "-c", reordered]), pools)
