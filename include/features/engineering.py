"""Feature engineering: plain functions from validated partitions to feature tables.

Point-in-time honesty is built in here, not left to Feast: every feature row carries the
instant its value became known (`event_timestamp`), and a value known at `t` uses only
source rows whose event time is before `t`.

- **Delay statistics** (plane, carrier, route) as of the end of an interval `[start, end)`:
  computed from the outcomes *reported* in `[end - window, end)`, so their timestamp is the
  last instant of the interval, `end - 1 µs`. A flight's own outcome is reported after it
  lands, hence never inside the statistics used to predict it 2 h before departure.
- **Origin weather** per hour: an observation is known when it is observed.
- **Calendar** features come from the scheduled departure itself, computed at request time
  (`calendar_features`), identically for training and serving.

The label: a flight is late when it did not arrive (cancelled or diverted: the passenger did
not get there on time) or arrived `LATE_MINUTES` or more behind schedule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from include.core.schema import Column, SourceTable

LATE_MINUTES = 15.0
KNOWN_AT_OFFSET = timedelta(microseconds=1)  # a statistic over [.., end) is known at end - 1 µs
# Longest time from a schedule's publication to its outcome's report (lead 24 h + flight +
# reporting lag): how far back the schedules of a window's outcomes can lie.
SCHEDULE_LOOKBACK = timedelta(days=3)
EVENT_TIMESTAMP = "event_timestamp"


def is_late(outcomes: pd.DataFrame) -> pd.Series:
    """The label: not arrived, or arrived >= LATE_MINUTES late. Boolean, never null."""
    arrived = outcomes["status"].astype("string") == "arrived"
    delay = pd.to_numeric(outcomes["arr_delay_min"], errors="coerce")
    return (~arrived.fillna(False) | (delay >= LATE_MINUTES).fillna(False)).astype(bool)


@dataclass(frozen=True)
class StatsSpec:
    """One family of recent-delay statistics: a feature view keyed by `keys`."""

    name: str
    keys: tuple[str, ...]
    prefix: str
    window: timedelta
    description: str

    @property
    def feature_names(self) -> list[str]:
        return [
            f"{self.prefix}_{s}"
            for s in ("flights", "late_share", "mean_arr_delay_min", "mean_dep_delay_min")
        ]

    @property
    def table(self) -> SourceTable:
        kinds = ["int64", "float64", "float64", "float64"]
        return SourceTable(
            name=self.name,
            kind="feature",
            description=self.description,
            key=(*self.keys, EVENT_TIMESTAMP),
            event_time=EVENT_TIMESTAMP,
            columns=(
                *(Column(k, "string", False) for k in self.keys),
                Column(EVENT_TIMESTAMP, "timestamp", False, "when the value became known"),
                *(Column(n, t) for n, t in zip(self.feature_names, kinds, strict=True)),  # type: ignore[arg-type]
            ),
        )


PLANE_STATS = StatsSpec(
    "plane_delay_stats",
    ("tailnum",),
    "plane",
    timedelta(days=7),
    "The plane's last 7 days of reported flights.",
)
CARRIER_STATS = StatsSpec(
    "carrier_delay_stats",
    ("carrier",),
    "carrier",
    timedelta(days=7),
    "The carrier's last 7 days of reported flights.",
)
ROUTE_STATS = StatsSpec(
    "route_delay_stats",
    ("origin", "dest"),
    "route",
    timedelta(days=28),
    "The route's (origin, dest) last 28 days of reported flights.",
)
STATS_SPECS: tuple[StatsSpec, ...] = (PLANE_STATS, CARRIER_STATS, ROUTE_STATS)

WEATHER_FEATURES = (
    "temp_f",
    "humidity_pct",
    "wind_speed_mph",
    "wind_gust_mph",
    "precip_in",
    "pressure_mb",
    "visibility_mi",
)
ORIGIN_WEATHER = SourceTable(
    name="origin_weather",
    kind="feature",
    description="Hourly weather observed at the origin airport.",
    key=("origin", EVENT_TIMESTAMP),
    event_time=EVENT_TIMESTAMP,
    columns=(
        Column("origin", "string", False),
        Column(EVENT_TIMESTAMP, "timestamp", False, "observation time"),
        *(Column(n, "float64") for n in WEATHER_FEATURES),
    ),
)
FEATURE_TABLES: dict[str, SourceTable] = {
    **{spec.name: spec.table for spec in STATS_SPECS},
    ORIGIN_WEATHER.name: ORIGIN_WEATHER,
}
LONGEST_WINDOW = max(spec.window for spec in STATS_SPECS)


def reported_flights(schedules: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    """Outcomes joined to their schedules (carrier, plane, route), with the label.

    Outcomes whose schedule is not in `schedules` are dropped: pass schedules published up
    to SCHEDULE_LOOKBACK before the outcomes' window."""
    sched = schedules[["flight_id", "carrier", "tailnum", "origin", "dest"]].drop_duplicates("flight_id")
    out = outcomes[["flight_id", "status", "arr_delay_min", "dep_delay_min", "reported_at"]].merge(
        sched, on="flight_id", how="inner", validate="one_to_one"
    )
    return out.assign(late=is_late(out))


def delay_stats(flights: pd.DataFrame, spec: StatsSpec, as_of: datetime) -> pd.DataFrame:
    """Statistics per key over the flights reported in [as_of - window, as_of).

    One row per key seen in the window; timestamp `as_of - 1 µs` (the value is known then)."""
    window = flights[(flights["reported_at"] >= as_of - spec.window) & (flights["reported_at"] < as_of)]
    window = window.dropna(subset=list(spec.keys))
    names = spec.feature_names
    if window.empty:
        stats = pd.DataFrame(columns=[*spec.keys, *names])
    else:
        grouped = window.groupby(list(spec.keys), sort=True, observed=True)
        stats = pd.DataFrame(
            {
                names[0]: grouped.size(),
                names[1]: grouped["late"].mean(),
                names[2]: grouped["arr_delay_min"].mean(),
                names[3]: grouped["dep_delay_min"].mean(),
            }
        ).reset_index()
    stats[EVENT_TIMESTAMP] = pd.Timestamp(as_of - KNOWN_AT_OFFSET)
    return stats


def origin_weather(weather: pd.DataFrame) -> pd.DataFrame:
    """Weather observations as feature rows: known when observed."""
    return weather[["origin", "observed_at", *WEATHER_FEATURES]].rename(
        columns={"observed_at": EVENT_TIMESTAMP}
    )


def features_for_interval(
    schedules: pd.DataFrame,
    outcomes: pd.DataFrame,
    weather: pd.DataFrame,
    start: datetime,
    end: datetime,
) -> dict[str, pd.DataFrame]:
    """Every feature table's rows for the interval [start, end).

    `outcomes` must cover [end - LONGEST_WINDOW, end), `schedules` SCHEDULE_LOOKBACK more,
    `weather` the interval itself; rows outside are ignored."""
    flights = reported_flights(schedules, outcomes)
    tables = {spec.name: delay_stats(flights, spec, end) for spec in STATS_SPECS}
    in_interval = (weather["observed_at"] >= start) & (weather["observed_at"] < end)
    tables[ORIGIN_WEATHER.name] = origin_weather(weather[in_interval])
    return tables


def calendar_features(scheduled_departure: pd.Series) -> pd.DataFrame:
    """Request-time features of the scheduled departure (UTC): hour, weekday, month."""
    ts = pd.to_datetime(scheduled_departure, utc=True)
    return pd.DataFrame(
        {
            "dep_hour": ts.dt.hour.astype("int64"),
            "dep_weekday": ts.dt.weekday.astype("int64"),
            "dep_month": ts.dt.month.astype("int64"),
        },
        index=scheduled_departure.index,
    )


def prediction_time(scheduled_departure: pd.Series, lead: timedelta) -> pd.Series:
    """When the model predicts a flight: `lead` before its scheduled departure."""
    return pd.to_datetime(scheduled_departure, utc=True) - lead
