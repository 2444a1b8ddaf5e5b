"""Online features obey the same ttl as the point-in-time join: older rows are served as missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from include.features.training_set import fill_missing
from include.serving.inputs import TIMESTAMP_SUFFIX, drop_stale, single_row_inputs

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
VIEWS = {"origin_weather": ["temp_f", "wind_speed_mph"], "carrier_stats": ["late_rate"]}
TTLS = {"origin_weather": timedelta(hours=3), "carrier_stats": timedelta(days=2)}


def online(weather_age: timedelta, stats_age: timedelta) -> dict[str, list]:
    """What Feast's to_dict(include_event_timestamps=True) gives for one row."""
    weather_ts = int((NOW - weather_age).timestamp())
    stats_ts = int((NOW - stats_age).timestamp())
    return {
        "temp_f": [41.0],
        "temp_f" + TIMESTAMP_SUFFIX: [weather_ts],
        "wind_speed_mph": [9.0],
        "wind_speed_mph" + TIMESTAMP_SUFFIX: [weather_ts],
        "late_rate": [0.2],
        "late_rate" + TIMESTAMP_SUFFIX: [stats_ts],
    }


def test_a_week_old_weather_row_is_missing_online_as_offline():
    values, fallbacks = drop_stale(online(timedelta(days=7), timedelta(hours=5)), VIEWS, TTLS, NOW)
    assert values["temp_f"] == [None] and values["wind_speed_mph"] == [None]
    assert values["late_rate"] == [0.2] and fallbacks == 1
    assert not [k for k in values if k.endswith(TIMESTAMP_SUFFIX)]
    row = {"scheduled_departure": NOW + timedelta(hours=6), "carrier": "UA", "origin": "EWR"}
    inputs = single_row_inputs(row, values, VIEWS)
    assert inputs["origin_weather_missing"] == 1 and inputs["temp_f"] == 0.0
    assert inputs["carrier_stats_missing"] == 0 and inputs["late_rate"] == 0.2


def test_rows_within_their_ttl_are_served_as_they_are():
    fresh = online(timedelta(hours=2, minutes=59), timedelta(days=1))
    values, fallbacks = drop_stale(fresh, VIEWS, TTLS, NOW)
    assert values == {"temp_f": [41.0], "wind_speed_mph": [9.0], "late_rate": [0.2]} and fallbacks == 0


def test_online_inputs_equal_the_training_rule_for_the_same_stale_row():
    """The offline side: Feast leaves a row past its ttl out of the join, fill_missing fills it."""
    import pandas as pd

    values, _ = drop_stale(online(timedelta(days=7), timedelta(hours=5)), VIEWS, TTLS, NOW)
    row = {"scheduled_departure": NOW + timedelta(hours=6), "carrier": "UA", "origin": "EWR"}
    online_inputs = single_row_inputs(row, values, VIEWS)
    offline = pd.DataFrame({"temp_f": [None], "wind_speed_mph": [None], "late_rate": [0.2]}, dtype="float64")
    offline, _ = fill_missing(offline, VIEWS)
    for column in offline.columns:
        assert online_inputs[column] == offline.loc[0, column], column


def test_a_view_without_a_ttl_never_goes_stale():
    values, fallbacks = drop_stale(online(timedelta(days=400), timedelta(days=400)), VIEWS, {}, NOW)
    assert values["temp_f"] == [41.0] and fallbacks == 0
