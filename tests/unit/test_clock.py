from datetime import UTC, date, datetime, timedelta

import pytest

from include.core.clock import replay_offset, to_original, to_replay, utc_now


@pytest.mark.parametrize(
    "today", [date(2026, 11, 23), date(2026, 11, 24), date(2027, 3, 1), date(2030, 2, 28), date(2013, 11, 1)]
)
def test_offset_is_whole_weeks_and_maps_today_near_the_anchor(today):
    anchor = date(2013, 11, 1)
    offset = replay_offset(anchor, today)
    assert offset.days % 7 == 0
    replayed = today - offset
    assert anchor <= replayed < anchor + timedelta(days=7)
    assert replayed.weekday() == today.weekday()


def test_replay_round_trip_keeps_weekday():
    offset = replay_offset(date(2013, 11, 1), date(2026, 11, 23))
    original = datetime(2013, 7, 4, 17, 30, tzinfo=UTC)
    live = to_replay(original, offset)
    assert live.weekday() == original.weekday()
    assert to_original(live, offset) == original


def test_fixed_clock_wins_over_wall_clock():
    fixed = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    assert utc_now(fixed) == fixed
    assert utc_now(None).tzinfo is not None
