"""Extraction of one data interval of one source table into the raw zone of the lake.

The interval is half-open, [start, end), on the table's event time; an interval that has not
ended on the replay clock is refused, so no row is read before its event time has passed.
Queries are SQLAlchemy expressions with bound parameters (never formatted SQL), portable across
SQLite and PostgreSQL. Before reading, the live table's columns are compared with the declaration in
include/source/dataset.py, so a changed source fails with a message that says what changed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from include.core.clock import utc_now
from include.core.errors import SourceSchemaError
from include.core.schema import SourceTable
from include.core.settings import Settings
from include.lake.partitions import PartitionInfo, conform, interval_key, write_partition
from include.source.database import SourceUnavailableError, ensure_reachable, sa_table

log = logging.getLogger(__name__)


class IntervalNotClosedError(RuntimeError):
    """The interval has not ended yet on the source clock: extracting it would be partial."""


@dataclass(frozen=True)
class SchemaDiff:
    missing: tuple[str, ...]
    extra: tuple[str, ...]


def diff_columns(expected: list[str], found: list[str]) -> SchemaDiff:
    found_set, expected_set = set(found), set(expected)
    return SchemaDiff(
        missing=tuple(c for c in expected if c not in found_set),
        extra=tuple(c for c in found if c not in expected_set),
    )


def schema_error_message(table: SourceTable, found: list[str], start: datetime, end: datetime) -> str:
    diff = diff_columns(table.column_names, found)
    return (
        f"source table {table.name!r} changed: missing columns {list(diff.missing)}, "
        f"unexpected columns {list(diff.extra)}. Expected columns: {table.column_names}; "
        f"found: {found}. Interval [{start.isoformat()}, {end.isoformat()}) was not extracted "
        "and nothing was written. Next step: if the source changed on purpose, update the "
        "declaration in include/source/dataset.py (and the checks downstream), then clear this task; "
        "otherwise ask the source owners to restore the columns."
    )


def source_columns(engine: sa.Engine, table: SourceTable) -> list[str]:
    """Column names of the live table, in database order. Raises if the table is absent."""
    inspector = sa.inspect(engine)
    if not inspector.has_table(table.name):
        raise SourceUnavailableError(
            f"source table {table.name!r} does not exist in "
            f"{engine.url.render_as_string(hide_password=True)}. Next step: build the demo "
            "source (`make source`) or check that the connection points at the right database."
        )
    return [col["name"] for col in inspector.get_columns(table.name)]


def check_schema(engine: sa.Engine, table: SourceTable, start: datetime, end: datetime) -> None:
    """Fail when a declared column is missing; warn about extra columns (they are not read).

    A new column in a source is common and harmless to us; a missing or renamed one would
    silently break every stage downstream, so it stops the extraction.
    """
    found = source_columns(engine, table)
    diff = diff_columns(table.column_names, found)
    if diff.missing:
        raise SourceSchemaError(schema_error_message(table, found, start, end))
    if diff.extra:
        log.warning(
            "source table %r has columns not declared in include/source/dataset.py: %s (not extracted)",
            table.name,
            list(diff.extra),
        )


def select_interval(table: SourceTable, start: datetime, end: datetime) -> sa.Select:
    """The parameterized query for one interval (event tables) or a full snapshot (reference).

    No bound on the clock's now here: `read_interval` refuses an interval that ends after it,
    so every row before `end` is also at or before now."""
    t = sa_table(table)
    stmt = sa.select(*[t.c[name] for name in table.column_names])
    if table.kind == "event":
        assert table.event_time is not None
        ts = t.c[table.event_time]
        stmt = stmt.where(ts >= start, ts < end)
    return stmt.order_by(*[t.c[k] for k in table.key])


def read_interval(
    engine: sa.Engine, table: SourceTable, start: datetime, end: datetime, now: datetime
) -> pd.DataFrame:
    """Rows of one interval, conformed to the declared types and sorted by key."""
    if end <= start:
        raise ValueError(f"empty or inverted interval [{start}, {end})")
    if table.kind == "event" and end > now:
        raise IntervalNotClosedError(
            f"interval [{start.isoformat()}, {end.isoformat()}) of {table.name!r} ends after the "
            f"source clock's now ({now.isoformat()}): extracting it now would give a partial "
            "partition. Next step: wait until the interval has ended, then clear this task."
        )
    stmt = select_interval(table, start, end)
    try:
        check_schema(engine, table, start, end)
        with engine.connect() as conn:
            result = conn.execute(stmt)
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
    except sa.exc.OperationalError as exc:
        raise SourceUnavailableError(read_failed_message(engine, table, start, end, exc)) from exc
    return conform(frame, table)


def read_failed_message(
    engine: sa.Engine, table: SourceTable, start: datetime, end: datetime, exc: BaseException
) -> str:
    """The message of a read the database refused after it answered (a lock, a restart)."""
    cause = getattr(exc, "orig", None) or exc
    locked = "locked" in str(cause).lower()
    return (
        f"reading {table.name!r} for interval {interval_key(start, end)} from the source "
        f"({engine.url.render_as_string(hide_password=True)}) failed: {cause.__class__.__name__}: {cause}. "
        + (
            "The source database is locked by another writer (SQLite allows one at a time). "
            if locked
            else ""
        )
        + "Nothing was written. The task retries with backoff; if it keeps failing, see README, "
        "On call, row 'SourceUnavailableError' (find the process that holds the database, or the "
        "server's log), then clear the task."
    )


def extract_to_lake(
    engine: sa.Engine,
    table: SourceTable,
    start: datetime,
    end: datetime,
    now: datetime,
    lake_root: str | Path,
) -> PartitionInfo:
    """Extract [start, end) of `table` into the raw zone; rerunning replaces the partition."""
    frame = read_interval(engine, table, start, end, now)
    info = write_partition(frame, table, lake_root, "raw", start, end)
    if info.rows == 0:
        log.warning(
            "interval %s of %r holds no rows: wrote an empty partition (rows=0) at %s. "
            "This is not an error: the source had nothing for this interval.",
            interval_key(start, end),
            table.name,
            info.path,
        )
    else:
        log.info(
            "extracted %d rows of %r for interval %s into %s (sha256 %s)",
            info.rows,
            table.name,
            interval_key(start, end),
            info.path,
            info.sha256[:12],
        )
    return info


def extract_step(
    engine: sa.Engine,
    table: SourceTable,
    start: datetime,
    end: datetime,
    settings: Settings,
    connection_hint: str,
) -> PartitionInfo:
    """The extract_<table> task's work: refuse an unusable source early (naming the connection),
    then extract [start, end) as of the clock's now. Disposes of `engine` in any case."""
    try:
        ensure_reachable(engine, connection_hint)
        return extract_to_lake(engine, table, start, end, utc_now(settings.clock_now), settings.lake_root)
    finally:
        engine.dispose()
