"""Online = offline on real Feast (issue 17, item 5): for the same flights at the same instant, the
model inputs the online service builds (Feast's online store, `online_values` +
`single_row_inputs`, what `/predict` scores) equal those batch scoring builds (the offline store's
point-in-time join, `historical_frame`, the training rule), including a view past its ttl.

Real June 2013 days in the test's own lake and Feast folder; one origin's weather stops half a day
before the instant, so its latest online row is older than the weather view's ttl: offline it is
missing, and it must be missing online too. The control shows the test can fail: the same online
read without the ttl rule serves that old weather as current.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from include.core.settings import get_settings
from include.lake.partitions import conform, partition_path, read_partition, write_partition
from include.source.dataset import FLIGHT_SCHEDULES, WEATHER_OBSERVATIONS
from tests.e2e.conftest import write_real_days

DAYS = [datetime(2013, 6, 20, tzinfo=UTC) + timedelta(days=i) for i in range(6)]
T = datetime(2013, 6, 25, 12, 30, tzinfo=UTC)  # the instant both paths are asked for
STALE_ORIGIN = "LGA"  # its weather stops at midnight: 12.5 h old at T, the ttl is 3 h


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Its own lake and Feast folder: June days written, LGA's weather of T's day removed, the
    features recomputed, the definitions applied and [first day, T) materialized online."""
    from include.features.partitions import write_interval_features
    from include.features.store import apply_if_changed, materialize_interval, open_store

    root = tmp_path_factory.mktemp("parity")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLOPS_DATA_DIR", str(root / "data"))
        mp.setenv("MLOPS_LAKE_ROOT", str(root / "data" / "lake"))
        mp.setenv("MLOPS_FEAST_ONLINE_STORE", "sqlite")
        settings = get_settings()
        write_real_days(DAYS)
        day = datetime(2013, 6, 25, tzinfo=UTC)
        path = partition_path(
            settings.lake_root, "validated", WEATHER_OBSERVATIONS.name, day, day + timedelta(days=1)
        )
        weather = read_partition(path)
        kept = weather[weather["origin"] != STALE_ORIGIN]
        write_partition(
            conform(kept, WEATHER_OBSERVATIONS),
            WEATHER_OBSERVATIONS,
            settings.lake_root,
            "validated",
            day,
            day + timedelta(days=1),
        )
        write_interval_features(settings.lake_root, day, day + timedelta(days=1))
        store = open_store(settings)
        apply_if_changed(store, settings, logging.getLogger("test"))
        materialize_interval(store, settings, DAYS[0], T, logging.getLogger("test"))
        yield store, settings


@pytest.fixture(scope="module")
def flights(world):
    """Flights of T's afternoon from every origin, as the flight index gives them to serving
    (schedules are published a day ahead: the 24th's partition holds the 25th's flights)."""
    _, settings = world
    day = datetime(2013, 6, 24, tzinfo=UTC)
    schedules = read_partition(
        partition_path(settings.lake_root, "validated", FLIGHT_SCHEDULES.name, day, day + timedelta(days=1))
    )
    afternoon = schedules[
        (schedules["scheduled_departure"] > T) & (schedules["scheduled_departure"] < T + timedelta(hours=6))
    ]
    picked = afternoon.groupby("origin", group_keys=False).head(15).sort_values("flight_id")
    assert set(picked["origin"]) >= {"JFK", "LGA", "EWR"}
    return picked.reset_index(drop=True)


def offline_inputs(store, rows: pd.DataFrame) -> pd.DataFrame:
    from include.features.store import FEATURE_SERVICE, service_views
    from include.serving.inputs import REQUEST_COLUMNS, historical_frame

    views = service_views(store, FEATURE_SERVICE)
    as_of = pd.Series([pd.Timestamp(T)] * len(rows))
    return historical_frame(store, FEATURE_SERVICE, views, rows[list(REQUEST_COLUMNS)], as_of)


def online_inputs(store, rows: pd.DataFrame, ttls) -> tuple[pd.DataFrame, int]:
    from include.features.store import FEATURE_SERVICE, service_views
    from include.serving.inputs import online_values, single_row_inputs

    views = service_views(store, FEATURE_SERVICE)
    service = store.get_feature_service(FEATURE_SERVICE)
    built, stale = [], 0
    for row in rows.to_dict("records"):
        values, fallbacks = online_values(store, service, row, views, ttls, T)
        stale += int(fallbacks > 0)
        built.append(single_row_inputs(row, values, views))
    return pd.DataFrame(built), stale


def model_columns(store) -> list[str]:
    from include.features.store import FEATURE_SERVICE, service_views
    from include.training.candidates import serving_columns

    return serving_columns(service_views(store, FEATURE_SERVICE))


def test_online_inputs_equal_offline_inputs_for_the_same_flights_and_instant(world, flights):
    from include.features.store import FEATURE_SERVICE, service_ttls

    store, _ = world
    columns = model_columns(store)
    offline = offline_inputs(store, flights)[columns].reset_index(drop=True)
    online, stale = online_inputs(store, flights, service_ttls(store, FEATURE_SERVICE))
    pd.testing.assert_frame_equal(online[columns], offline, check_dtype=False, check_exact=False, rtol=1e-9)
    lga = (flights["origin"] == STALE_ORIGIN).to_numpy()
    # the stale view: missing on both sides, with its indicator, for LGA's flights only
    assert (offline.loc[lga, "origin_weather_missing"] == 1).all()
    assert (offline.loc[~lga, "origin_weather_missing"] == 0).all()
    assert stale == int(lga.sum()) > 0  # the service counts these requests as fallbacks


def test_control_without_the_ttl_rule_online_serves_old_weather_as_current(world, flights):
    store, _ = world
    columns = model_columns(store)
    offline = offline_inputs(store, flights)[columns].reset_index(drop=True)
    online, stale = online_inputs(store, flights, ttls={})  # Feast's online read as it comes
    lga = (flights["origin"] == STALE_ORIGIN).to_numpy()
    assert stale == 0 and (online.loc[lga, "origin_weather_missing"] == 0).all()
    assert not online[columns].loc[lga].reset_index(drop=True).equals(offline.loc[lga].reset_index(drop=True))
    # the other origins agree with or without the rule
    pd.testing.assert_frame_equal(
        online[columns].loc[~lga].reset_index(drop=True),
        offline.loc[~lga].reset_index(drop=True),
        check_dtype=False,
        check_exact=False,
        rtol=1e-9,
    )
