from datetime import date

from scripts.demo_state import interval_states, wanted_intervals


def test_wanted_intervals_are_the_last_complete_days():
    days = wanted_intervals(date(2026, 11, 23), 3)
    assert days == [date(2026, 11, 20), date(2026, 11, 21), date(2026, 11, 22)]


def test_success_wins_over_failed_attempts():
    runs = [
        {"data_interval_start": "2026-11-20T00:00:00Z", "state": "failed"},
        {"data_interval_start": "2026-11-20T00:00:00Z", "state": "success"},
        {"data_interval_start": "2026-11-21T00:00:00+00:00", "state": "running"},
    ]
    assert interval_states(runs) == {date(2026, 11, 20): "success", date(2026, 11, 21): "running"}
