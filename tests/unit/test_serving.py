"""Serving pieces on small inputs: the model's input columns, the prediction log, request validation."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pandas as pd
import pytest
from pydantic import ValidationError

from include.features.training_set import fill_missing
from include.serving import prediction_log
from include.serving.inputs import as_of_times, model_frame
from include.serving.online import PredictRequest
from include.training.candidates import input_columns, serving_columns

VIEWS = {"route_delay_stats": ["route_flights", "route_late_share"], "origin_weather": ["temp_f"]}
ROWS = pd.DataFrame(
    {
        "flight_id": [1, 2],
        "tailnum": ["N1", "UNKNOWN"],
        "carrier": ["UA", "AA"],
        "origin": ["EWR", "JFK"],
        "dest": ["ORD", "LAX"],
        "scheduled_departure": pd.to_datetime(["2013-06-30 18:00", "2013-06-30 07:00"], utc=True),
    }
)


def test_serving_builds_exactly_the_columns_training_built():
    features = pd.DataFrame(
        {"route_flights": [3.0, None], "route_late_share": [0.5, None], "temp_f": [None, 70.0]}
    )
    frame = model_frame(ROWS, features, VIEWS)
    _, trained = fill_missing(pd.concat([ROWS, features], axis=1), VIEWS)
    expected = input_columns([*trained, "dep_hour", "dep_weekday", "dep_month"])
    assert serving_columns(VIEWS) == expected
    assert set(expected) <= set(frame.columns)
    assert frame.loc[1, "route_delay_stats_missing"] == 1 and frame.loc[1, "route_late_share"] == 0.0
    assert frame.loc[0, "origin_weather_missing"] == 1 and frame.loc[0, "dep_hour"] == 18


def test_features_are_as_of_the_prediction_time_but_never_later_than_known():
    known = datetime(2013, 6, 30, 12, tzinfo=UTC)
    as_of = as_of_times(ROWS["scheduled_departure"], 2, known)
    assert list(as_of) == [pd.Timestamp(known), pd.Timestamp("2013-06-30 05:00", tz="UTC")]


def rows(n: int, version: str = "1") -> list[dict]:
    frame = ROWS.head(n).assign(x=1.0)
    return prediction_log.records(
        frame,
        ["x"],
        [0.2, 0.9][:n],
        source="batch",
        model_name="m",
        model_version=version,
        threshold=0.4,
        batch_key="k",
    )


def test_a_batch_rerun_replaces_its_rows(tmp_path):
    eng = prediction_log.engine(f"sqlite:///{tmp_path / 'log.db'}")
    prediction_log.replace_batch(eng, "k", rows(2, "1"))
    prediction_log.replace_batch(eng, "k", rows(2, "2"))
    logged = prediction_log.read(eng, source="batch", batch_key="k")
    assert len(logged) == 2 and set(logged["model_version"]) == {"2"}
    assert list(logged.sort_values("flight_id")["predicted_late"]) == [0, 1]
    assert logged["features"].iloc[0] == '{"x": 1.0}'


def test_the_background_writer_writes_without_blocking(tmp_path):
    eng = prediction_log.engine(f"sqlite:///{tmp_path / 'log.db'}")
    writer = prediction_log.BackgroundWriter(eng, flush_every=0.05)
    started = time.perf_counter()
    writer.put([{**r, "source": "online", "batch_key": None} for r in rows(2)])
    assert time.perf_counter() - started < 0.05
    writer.close()
    assert writer.written == 2 and writer.errors == 0
    assert len(prediction_log.read(eng, source="online")) == 2


@pytest.mark.parametrize(
    "body",
    [{}, {"carrier": "UA"}, {"flight_id": -1}, {"flight_id": 1, "colour": "red"}, {"flight_id": "abc"}],
)
def test_malformed_requests_are_refused(body):
    with pytest.raises(ValidationError):
        PredictRequest.model_validate(body)


def test_a_request_names_a_flight_or_its_keys():
    assert PredictRequest.model_validate({"flight_id": 12}).flight_id == 12
    keys = {"carrier": "UA", "origin": "EWR", "dest": "ORD", "scheduled_departure": "2013-06-30T18:00:00Z"}
    assert PredictRequest.model_validate(keys).tailnum is None


def test_the_online_fast_path_builds_what_model_frame_builds():
    from include.serving.inputs import single_row_inputs

    features = pd.DataFrame(
        {"route_flights": [3.0, None], "route_late_share": [0.5, None], "temp_f": [None, 70.0]}
    )
    frame = model_frame(ROWS, features, VIEWS)
    for i in range(len(ROWS)):
        values = {k: [None if pd.isna(v) else v] for k, v in features.iloc[i].items()}
        fast = single_row_inputs(ROWS.iloc[i].to_dict(), values, VIEWS)
        for column in serving_columns(VIEWS):
            assert fast[column] == frame.loc[i, column], column
