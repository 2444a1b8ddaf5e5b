"""The same code reads PostgreSQL: only the `flights_source` connection changes.

A real PostgreSQL server is started on loopback, the demo source is built into it with the
same parameters as the session's SQLite source, and ingest_flights runs through Airflow
against it. Its partitions must be byte-identical to those extracted from SQLite (but for one
airline that exists only in PostgreSQL, which proves the run read the server).
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
import sqlalchemy as sa

from include.core.clock import utc_now
from include.core.settings import get_settings
from include.lake.partitions import file_sha256, partition_path, read_partition
from include.source.dataset import SOURCE_TABLES
from include.source.extract import extract_to_lake
from tests.conftest import TEST_TODAY

from .conftest import day
from .postgres import PostgresServer, find_bindir

D = day(2026, 11, 14)


@pytest.fixture(scope="module")
def postgres_url():
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries not found: .ci/run installs the postgresql package")
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    server = PostgresServer(bindir)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def postgres_source(postgres_url, source_db):
    from include.source.demo.build import BuildParams, build_source

    engine = sa.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    build_source(engine, BuildParams(anchor=get_settings().replay_anchor, today=TEST_TODAY), months=(10, 11))
    # One airline exists only in PostgreSQL: proof that the run really read this server.
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO airlines (carrier, name) VALUES ('ZZ', 'Only In Postgres')"))
    engine.dispose()
    return postgres_url


def test_ingest_from_postgres_matches_sqlite_byte_for_byte(
    postgres_source, source_db, run_interval, source_connection, tmp_path
):
    source_connection(postgres_source)
    dag_run = run_interval(D)
    assert dag_run.state == "success"

    sqlite_engine = sa.create_engine(f"sqlite:///{source_db}")
    end = D + timedelta(days=1)
    for table in SOURCE_TABLES:
        from_sqlite = extract_to_lake(
            sqlite_engine, table, D, end, utc_now(get_settings().clock_now), tmp_path / "lake"
        )
        from_postgres = partition_path(get_settings().lake_root, "raw", table.name, D, end)
        assert from_sqlite.rows > 0
        if table.name == "airlines":
            carriers = read_partition(from_postgres)["carrier"]
            assert "ZZ" in set(carriers) and len(carriers) == from_sqlite.rows + 1
        else:
            assert file_sha256(from_postgres) == from_sqlite.sha256, table.name
    sqlite_engine.dispose()
