"""Feature computations on tiny frames: windows, interval edges, the label, missing values."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pandas as pd
import pytest

from include.features.engineering import (
    CARRIER_STATS,
    KNOWN_AT_OFFSET,
    PLANE_STATS,
    ROUTE_STATS,
    WEATHER_FEATURES,
    calendar_features,
    delay_stats,
    features_for_interval,
    is_late,
    reported_flights,
)
from include.features.partitions import intervals_to_process
from include.features.store import chunks, online_store_config
from include.features.training_set import TrainingSetError, entity_rows, fill_missing, join_features

from .conftest import utc

END = utc(2026, 11, 11)


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def flights(rows: list[tuple]) -> pd.DataFrame:
    """(flight_id, carrier, tailnum, status, arr_delay, dep_delay, reported_at)"""
    frame = pd.DataFrame(
        rows,
        columns=[
            "flight_id",
            "carrier",
            "tailnum",
            "status",
            "arr_delay_min",
            "dep_delay_min",
            "reported_at",
        ],
    )
    frame["reported_at"] = pd.to_datetime(frame["reported_at"], utc=True, format="ISO8601")
    frame["origin"], frame["dest"] = "EWR", "ORD"
    return frame.assign(late=is_late(frame))


def test_label_counts_not_arrived_as_late_and_uses_15_minutes():
    frame = pd.DataFrame(
        {
            "status": ["arrived", "arrived", "arrived", "cancelled", "diverted"],
            "arr_delay_min": [14.9, 15, None, None, None],
        }
    )
    assert is_late(frame).tolist() == [False, True, False, True, True]


def test_stats_use_only_outcomes_reported_inside_the_window():
    frame = flights(
        [
            (1, "UA", "N1", "arrived", 30.0, 20.0, "2026-11-03 23:59:59"),  # before the 7-day window
            (2, "UA", "N1", "arrived", 0.0, 5.0, "2026-11-04 00:00:00"),  # first instant inside
            (3, "UA", "N1", "cancelled", None, None, "2026-11-10 23:59:59"),  # last second inside
            (4, "UA", "N1", "arrived", 90.0, 80.0, "2026-11-11 00:00:00"),  # the next interval
        ]
    )
    stats = delay_stats(frame, PLANE_STATS, END)
    row = stats.set_index("tailnum").loc["N1"]
    assert row["plane_flights"] == 2
    assert row["plane_late_share"] == 0.5
    assert row["plane_mean_arr_delay_min"] == 0.0  # the cancelled flight has no delay
    assert stats["event_timestamp"].iloc[0] == ts("2026-11-11") - KNOWN_AT_OFFSET


def test_route_window_is_longer_and_keyed_by_origin_and_dest():
    frame = flights(
        [
            (1, "UA", "N1", "arrived", 30.0, 20.0, "2026-10-20 12:00"),
            (2, "AA", "N2", "arrived", 0.0, 0.0, "2026-11-10"),
        ]
    )
    assert len(delay_stats(frame, CARRIER_STATS, END)) == 1  # 7 days: only AA
    route = delay_stats(frame, ROUTE_STATS, END)  # 28 days: both
    assert route[["origin", "dest", "route_flights"]].values.tolist() == [["EWR", "ORD", 2]]


def test_empty_window_gives_an_empty_table_with_the_columns():
    stats = delay_stats(flights([]), CARRIER_STATS, END)
    assert stats.empty and set(CARRIER_STATS.feature_names) <= set(stats.columns)


def test_outcomes_without_their_schedule_are_left_out():
    schedules = pd.DataFrame(
        {"flight_id": [1], "carrier": ["UA"], "tailnum": ["N1"], "origin": ["EWR"], "dest": ["ORD"]}
    )
    outcomes = pd.DataFrame(
        {
            "flight_id": [1, 2],
            "status": ["arrived", "arrived"],
            "arr_delay_min": [20.0, 1.0],
            "dep_delay_min": [10.0, 0.0],
            "reported_at": pd.to_datetime(["2026-11-10", "2026-11-10"], utc=True),
        }
    )
    joined = reported_flights(schedules, outcomes)
    assert joined["flight_id"].tolist() == [1] and joined["late"].tolist() == [True]


def test_weather_rows_of_the_interval_only():
    weather = pd.DataFrame(
        {
            "origin": ["EWR"] * 3,
            "observed_at": pd.to_datetime(
                ["2026-11-09 23:00", "2026-11-10 00:00", "2026-11-11 00:00"], utc=True
            ),
            **{c: [1.0, 2.0, 3.0] for c in WEATHER_FEATURES},
        }
    )
    empty = pd.DataFrame(columns=["flight_id", "carrier", "tailnum", "origin", "dest"])
    outcomes = pd.DataFrame(columns=["flight_id", "status", "arr_delay_min", "dep_delay_min", "reported_at"])
    outcomes["reported_at"] = pd.to_datetime(outcomes["reported_at"], utc=True)
    tables = features_for_interval(empty, outcomes, weather, utc(2026, 11, 10), END)
    assert tables["origin_weather"]["temp_f"].tolist() == [2.0]


def test_calendar_features_at_request_time():
    cal = calendar_features(pd.Series(pd.to_datetime(["2026-11-23 17:45"], utc=True)))
    assert cal.iloc[0].to_dict() == {"dep_hour": 17, "dep_weekday": 0, "dep_month": 11}


def three_schedules(tailnums: list[str | None]) -> pd.DataFrame:
    """Three UA flights EWR-ORD, 10:00-12:00 on 2026-11-10."""
    return pd.DataFrame(
        {
            "flight_id": [1, 2, 3],
            "tailnum": tailnums,
            "carrier": ["UA"] * 3,
            "origin": ["EWR"] * 3,
            "dest": ["ORD"] * 3,
            "scheduled_departure": pd.to_datetime(["2026-11-10 10:00"] * 3, utc=True),
            "scheduled_arrival": pd.to_datetime(["2026-11-10 12:00"] * 3, utc=True),
        }
    )


def test_entity_rows_predict_before_departure_and_keep_unlabelled_flights_out():
    schedules = three_schedules(["N1", None, "N3"])
    outcomes = pd.DataFrame(
        {
            "flight_id": [1, 2],
            "status": ["arrived", "cancelled"],
            "arr_delay_min": [3.0, None],
            "actual_arrival": pd.to_datetime(["2026-11-10 12:03", None], utc=True),
        }
    )
    rows = entity_rows(schedules, outcomes, timedelta(hours=2))
    assert rows["flight_id"].tolist() == [1, 2]
    assert (rows["event_timestamp"] == ts("2026-11-10 08:00")).all()
    assert rows["tailnum"].tolist() == ["N1", "UNKNOWN"] and rows["late"].tolist() == [0, 1]
    assert rows.attrs["inconsistent_labels"] == 0


def test_a_label_that_contradicts_the_times_is_left_out():
    schedules = three_schedules(["N1", "N2", "N3"])
    outcomes = pd.DataFrame(
        {
            "flight_id": [1, 2, 3],
            "status": ["arrived"] * 3,
            # 1: 3 min late and landed 12:03 (control); 2: "on time" but landed 13:10; 3: within 5 min
            "arr_delay_min": [3.0, 0.0, 1.0],
            "actual_arrival": pd.to_datetime(
                ["2026-11-10 12:03", "2026-11-10 13:10", "2026-11-10 12:05"], utc=True
            ),
        }
    )
    rows = entity_rows(schedules, outcomes, timedelta(hours=2))
    assert rows["flight_id"].tolist() == [1, 3] and rows.attrs["inconsistent_labels"] == 1


def test_missing_features_get_an_indicator_and_zero():
    frame = pd.DataFrame({"a": [1.0, None], "b": [2.0, None]})
    out, cols = fill_missing(frame, {"view": ["a", "b"]})
    assert out["view_missing"].tolist() == [0, 1] and out["a"].tolist() == [1.0, 0.0]
    assert cols == ["a", "b", "view_missing"]


def test_join_refuses_lost_or_collapsed_rows():
    entity = pd.DataFrame(
        {"flight_id": [1, 2], "scheduled_departure": pd.to_datetime(["2026-11-10"] * 2, utc=True)}
    )
    with pytest.raises(TrainingSetError, match="returned 1 rows for 2 entity rows"):
        join_features(entity, pd.DataFrame({"flight_id": [1], "a": [1.0]}), {"v": ["a"]})
    shuffled = pd.DataFrame({"flight_id": [2, 1], "a": [20.0, 10.0]})
    assert join_features(entity, shuffled, {"v": ["a"]}).frame["a"].tolist() == [10.0, 20.0]


def test_intervals_from_asset_events_and_params():
    extras = [
        {"interval_start": "2026-11-11T00:00:00+00:00", "interval_end": "2026-11-12T00:00:00+00:00"},
        {"interval_start": "2026-11-10T00:00:00+00:00", "interval_end": "2026-11-11T00:00:00+00:00"},
        {"interval_start": "2026-11-11T00:00:00+00:00", "interval_end": "2026-11-12T00:00:00+00:00"},
    ]
    assert [s.day for s, _ in intervals_to_process(extras, None, 1)] == [10, 11]
    assert [s.day for s, _ in intervals_to_process([], "2026-11-20", 2)] == [20, 21]


def test_chunks_cover_the_window_without_overlap():
    parts = chunks(utc(2026, 11, 1), utc(2026, 11, 3, 12), timedelta(hours=24))
    assert parts[0][0] == utc(2026, 11, 1) and parts[-1][1] == utc(2026, 11, 3, 12)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts)) and len(parts) == 3


def test_online_store_is_one_setting(tmp_path, monkeypatch):
    from include.core.settings import get_settings

    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    settings = get_settings()
    assert online_store_config("sqlite", settings)["path"].startswith(str(tmp_path))
    redis = online_store_config("redis", settings, {"host": "127.0.0.1", "port": 6380, "password": "s"})
    assert redis == {"type": "redis", "connection_string": "127.0.0.1:6380,password=s"}
    pg = online_store_config(
        "postgres", settings, {"host": "h", "port": None, "login": "u", "password": "p", "schema": "f"}
    )
    assert pg["type"] == "postgres" and pg["port"] == 5432 and pg["database"] == "f"
    with pytest.raises(ValueError, match="feast_online_store"):
        online_store_config("redis", settings, None)
    with pytest.raises(ValueError, match="choose one of"):
        online_store_config("bigtable", settings)


def test_a_late_day_brings_the_later_days_that_read_it(tmp_path):
    from include.features.partitions import with_dependents
    from include.lake.partitions import interval_key

    for d in (5, 6, 20, 40):
        start = utc(2026, 10, 1) + timedelta(days=d)
        folder = (
            tmp_path
            / "features"
            / "plane_delay_stats"
            / f"interval={interval_key(start, start + timedelta(days=1))}"
        )
        folder.mkdir(parents=True)
        (folder / "part-0.parquet").write_bytes(b"")  # partitions are files (an object store has no folders)
    empty = (
        tmp_path
        / "features"
        / "plane_delay_stats"
        / f"interval={interval_key(utc(2026, 10, 8), utc(2026, 10, 9))}"
    )
    empty.mkdir()  # control: a folder without its partition file is no partition
    late = (utc(2026, 10, 4), utc(2026, 10, 5))
    planned = with_dependents(tmp_path, [late])
    assert [s.day for s, _ in planned] == [4, 6, 7, 21]  # within 28 days after; 41 days later is not
    assert with_dependents(tmp_path, []) == []


def test_catch_up_finds_validated_days_without_current_features(tmp_path):
    import os

    from include.features.engineering import FEATURE_TABLES
    from include.features.partitions import stale_intervals
    from include.lake.partitions import partition_path

    days = [(utc(2026, 11, d), utc(2026, 11, d + 1)) for d in (1, 2, 3, 4)]

    def touch(zone, table, interval, mtime):
        path = partition_path(tmp_path, zone, table, *interval)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        os.utime(path, (mtime, mtime))

    for i, interval in enumerate(days[:3]):
        touch("validated", "flight_outcomes", interval, 1000)
        touch("validated", "weather_observations", interval, 1000)
        for name in FEATURE_TABLES:
            if i == 0:
                touch("features", name, interval, 2000)  # up to date
            elif i == 1:
                touch("features", name, interval, 500)  # older than its inputs (re-validated since)
    touch("validated", "flight_outcomes", days[3], 1000)  # weather not validated: not ready
    assert stale_intervals(tmp_path) == [days[1], days[2]]


def test_feast_sources_follow_the_configured_lake(monkeypatch, tmp_path):
    """One process, two data folders (the tests): the repo's sources must read the current lake."""
    from include.features.store import definitions

    for name in ("a", "b"):
        monkeypatch.setenv("MLOPS_LAKE_ROOT", str(tmp_path / name))
        paths = {o.path for o in definitions(str(tmp_path / name)) if hasattr(o, "path")}
        assert paths and all(p.startswith(str(tmp_path / name)) for p in paths), paths
