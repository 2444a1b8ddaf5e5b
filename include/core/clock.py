"""The replay clock: maps 2013 (the demo data) onto recent dates, by whole weeks.

Shifting by whole weeks keeps weekdays (Monday traffic stays Monday traffic), so weekly
seasonality survives the replay. The offset is fixed when the demo source is built and
stored in it (table `replay_clock`), so the source behaves like a live system: a row
becomes visible once its (shifted) event time has passed on the clock.

Tests and replays fix the clock with MLOPS_CLOCK_NOW (see include/core/settings.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

WEEK = timedelta(days=7)


def utc_now(fixed: datetime | None = None) -> datetime:
    """The clock's 'now' in UTC: the fixed time when one is configured, else the wall clock."""
    if fixed is not None:
        return fixed.astimezone(UTC)
    return datetime.now(UTC)


def replay_offset(anchor: date, today: date) -> timedelta:
    """Whole weeks to add to 2013 timestamps so that `today` falls in [anchor, anchor + 7 days).

    >>> replay_offset(date(2013, 11, 1), date(2026, 11, 23)).days % 7
    0
    """
    weeks = (today - anchor).days // 7
    return WEEK * weeks


def to_replay(ts_2013: datetime, offset: timedelta) -> datetime:
    """A 2013 timestamp as it appears in the live source."""
    return ts_2013 + offset


def to_original(ts_live: datetime, offset: timedelta) -> datetime:
    """A live-source timestamp mapped back onto 2013 (for reading the original data)."""
    return ts_live - offset
