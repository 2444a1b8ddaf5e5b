"""Every path that opens the Feast store honours MLOPS_FEAST_ONLINE_STORE and its connection.

The server-profile issue brings a real Redis; here the store is only opened (Feast connects
lazily), which is where a DAG that forgot the connection used to fail: before any server.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from include.core.settings import PROJECT_DIR, get_settings

DAG_FILES = sorted((PROJECT_DIR / "dags").glob("*.py"))
REDIS_URI = "redis://:s3cret@127.0.0.1:6390/1"


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            f = node.func
            names.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "")
    return names


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dags_open_the_store_only_through_the_glue_helper(dag_file: Path) -> None:
    calls = _calls(dag_file)
    assert "open_store" not in calls, f"{dag_file.name} opens Feast without the online-store connection"


def test_every_dag_that_uses_feast_uses_the_helper() -> None:
    users = {p.name for p in DAG_FILES if "feature_store" in _calls(p)}
    assert users == {"materialize_features.py", "monitor_model.py", "score_flights.py", "train_model.py"}


def test_redis_selected_with_a_connection_gives_a_redis_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.airflow_glue.connections import feature_store

    monkeypatch.setenv("MLOPS_FEAST_ONLINE_STORE", "redis")
    monkeypatch.setenv("AIRFLOW_CONN_FEAST_ONLINE_STORE", REDIS_URI)
    store = feature_store(get_settings())
    online = store.config.online_store
    assert online.type == "redis"
    assert "127.0.0.1:6390" in online.connection_string
    assert "password=s3cret" in online.connection_string


def test_redis_selected_without_a_connection_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from include.airflow_glue.connections import feature_store

    monkeypatch.setenv("MLOPS_FEAST_ONLINE_STORE", "redis")
    monkeypatch.delenv("AIRFLOW_CONN_FEAST_ONLINE_STORE", raising=False)
    with pytest.raises(Exception, match="feast_online_store"):
        feature_store(get_settings())


def test_sqlite_default_needs_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """Control: the embedded default opens without any connection."""
    from include.airflow_glue.connections import feature_store

    monkeypatch.delenv("MLOPS_FEAST_ONLINE_STORE", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_FEAST_ONLINE_STORE", raising=False)
    assert feature_store(get_settings()).config.online_store.type == "sqlite"
