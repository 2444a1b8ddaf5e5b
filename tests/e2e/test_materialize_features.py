"""materialize_features run through Airflow on ingested days: real Feast (duckdb + SQLite)."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pandas as pd
import pytest

from include.core.settings import PROJECT_DIR, get_settings
from include.lake.partitions import partition_path

from .conftest import day

A, B, C = day(2026, 11, 17), day(2026, 11, 18), day(2026, 11, 19)


@pytest.fixture(scope="module")
def features_dag(ingest_dag):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
    dag = bag.dags["materialize_features"]
    for task in dag.tasks:
        task.retries = 0
    return dag


@pytest.fixture(scope="module")
def three_days(run_interval):
    for start in (A, B, C):
        assert run_interval(start).state == "success"


def materialize(dag, start):
    run = dag.test(run_conf={"interval_start": f"{start:%Y-%m-%d}", "days": 1})
    assert run.state == "success", {ti.task_id: ti.state for ti in run.get_task_instances()}
    return run


def online_snapshot() -> dict[str, list[tuple]]:
    """Every (entity, feature, value, event time) the online store serves, minus write times."""
    path = get_settings().data_dir / "feast" / "online_store.db"
    with sqlite3.connect(path) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        return {
            t: conn.execute(
                f'SELECT entity_key, feature_name, value, event_ts FROM "{t}" ORDER BY 1, 2'
            ).fetchall()
            for t in sorted(tables)
        }


def reset_online_store() -> None:
    """Forget the online store and the registry's materialization record (re-applied by the DAG)."""
    feast = get_settings().data_dir / "feast"
    for name in ("online_store.db", "registry.db", "applied_definitions.sha256"):
        (feast / name).unlink(missing_ok=True)


def test_online_reads_return_the_interval_features(three_days, features_dag):
    from include.features.store import open_store

    reset_online_store()
    materialize(features_dag, A)  # catches up B and C too: their validated days have no features yet
    materialize(features_dag, B)
    lake = get_settings().lake_root
    rows = (
        pd.concat(
            pd.read_parquet(partition_path(lake, "features", "carrier_delay_stats", d, d + timedelta(days=1)))
            for d in (A, B, C)
        )
        .sort_values("event_timestamp")
        .drop_duplicates("carrier", keep="last")  # the newest value per carrier is what is served
    )
    assert len(rows) > 5
    online = (
        open_store(get_settings())
        .get_online_features(
            features=["carrier_delay_stats:carrier_flights", "carrier_delay_stats:carrier_late_share"],
            entity_rows=[{"carrier": c} for c in rows["carrier"]],
        )
        .to_df()
    )
    merged = rows.merge(online, on="carrier", suffixes=("", "_online"))
    assert len(merged) == len(rows)
    assert (merged["carrier_flights"] == merged["carrier_flights_online"]).all()
    assert ((merged["carrier_late_share"] - merged["carrier_late_share_online"]).abs() < 1e-12).all()


def test_rerun_leaves_the_online_store_unchanged(three_days, features_dag):
    before = online_snapshot()
    assert sum(len(v) for v in before.values()) > 100
    materialize(features_dag, B)
    assert online_snapshot() == before


def test_out_of_order_gives_the_same_final_state(three_days, features_dag):
    reset_online_store()
    for start in (A, B, C):
        materialize(features_dag, start)
    in_order = online_snapshot()
    reset_online_store()
    for start in (A, C, B):
        materialize(features_dag, start)
    assert online_snapshot() == in_order


def test_apply_runs_only_when_definitions_change(three_days, features_dag):
    import logging

    from include.features.store import apply_if_changed, open_store

    store = open_store(get_settings())
    assert apply_if_changed(store, get_settings(), logging.getLogger("t"))["applied"] is False
    (get_settings().data_dir / "feast" / "applied_definitions.sha256").write_text("outdated\n")
    assert apply_if_changed(store, get_settings(), logging.getLogger("t"))["applied"] is True


def test_a_day_ingested_late_updates_the_days_after_it(run_interval, features_dag):
    """D and F arrive first; when E arrives, F's statistics (which read E's outcomes) are redone."""
    from include.features.partitions import write_interval_features
    from include.lake.partitions import file_sha256

    lake = get_settings().lake_root
    d, e, f = day(2026, 11, 20), day(2026, 11, 21), day(2026, 11, 22)

    def f_stats():
        return partition_path(lake, "features", "carrier_delay_stats", f, f + timedelta(days=1))

    for start in (d, f):
        assert run_interval(start).state == "success"
        materialize(features_dag, start)
    before = file_sha256(f_stats())
    assert run_interval(e).state == "success"
    run = materialize(features_dag, e)
    planned = run.get_task_instance("plan_intervals").xcom_pull(task_ids="plan_intervals")
    assert [s[:10] for s, _ in planned] == ["2026-11-21", "2026-11-22"]
    after = file_sha256(f_stats())
    assert after != before  # E's outcomes are now inside F's 7-day window
    write_interval_features(lake, f, f + timedelta(days=1))
    assert file_sha256(f_stats()) == after  # what was published is what a fresh computation gives
