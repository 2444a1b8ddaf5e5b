from pathlib import Path

import pytest

from include.airflow_glue.settings_file import SettingsFileError, load_settings_file, parse_settings
from include.core.settings import PROJECT_DIR


def test_project_settings_file_parses_and_expands_the_data_dir():
    settings = load_settings_file(PROJECT_DIR / "airflow_settings.yaml", env={"MLOPS_DATA_DIR": "/d"})
    (conn,) = settings.connections
    assert conn.conn_id == "flights_source" and conn.conn_type == "sqlite"
    assert conn.host == "/d/source/flights.db"
    assert conn.password is None and conn.port is None
    assert [p.name for p in settings.pools] == ["flights_source_db", "feast_registry", "champion_alias"]
    assert {p.name: p.slots for p in settings.pools}["feast_registry"] == 1  # registry writes serialised
    assert {p.name: p.slots for p in settings.pools}["champion_alias"] == 1  # deploy xor rollback


def test_astro_format_fields():
    text = """
airflow:
  connections:
    - conn_id: pg
      conn_type: postgres
      conn_host: db
      conn_schema: flights
      conn_login: me
      conn_password: ${PG_PASSWORD}
      conn_port: 5432
      conn_extra: '{"sslmode": "require"}'
  pools:
    - pool_name: p
      pool_slot: 3
  variables:
    - variable_name: threshold
      variable_value: 0.5
"""
    s = parse_settings(text, env={"PG_PASSWORD": "pw"})
    conn = s.connections[0]
    assert (conn.host, conn.schema, conn.login, conn.password, conn.port) == (
        "db",
        "flights",
        "me",
        "pw",
        5432,
    )
    assert conn.extra == {"sslmode": "require"}
    assert s.pools[0].slots == 3 and s.pools[0].description == ""
    assert s.variables[0].value == "0.5"


def test_unset_variable_and_malformed_entries_are_refused(tmp_path: Path):
    with pytest.raises(SettingsFileError, match="NOPE is not set"):
        parse_settings(
            "airflow:\n  connections:\n    - {conn_id: a, conn_type: sqlite, conn_host: '${NOPE}'}", env={}
        )
    with pytest.raises(SettingsFileError, match="conn_id and conn_type"):
        parse_settings("airflow:\n  connections:\n    - {conn_type: sqlite}", env={})
    with pytest.raises(SettingsFileError, match="pool_name and pool_slot"):
        parse_settings("airflow:\n  pools:\n    - {pool_name: x}", env={})
    assert parse_settings("", env={}).connections == ()


def test_invalid_yaml_is_a_settings_error():
    with pytest.raises(SettingsFileError, match="not valid YAML"):
        parse_settings("airflow: [unclosed", env={})
