"""Extraction of one data interval of one source table into the raw zone of the lake.

The interval is half-open, [start, end), on the table's event time; an interval that has not
ended on the replay clock is refused, so no row is read before its event time has passed.
Queries are SQLAlchemy expressions with bound parameters (never formatted SQL), portable across
SQLite and PostgreSQL. Before reading, the live table's columns are compared with the declaration in
include/source/dataset.py, so a changed source fails with a message that says what changed.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from include.core.clock import utc_now
from include.core.errors import SourceSchemaError
from include.core.schema import SourceTable
from include.core.settings import Settings
from include.lake import storage
from include.lake.partitions import (
    PartitionInfo,
    interval_folder,
    interval_key,
    write_frame_atomic,
    write_partition,
    write_text_atomic,
)
from include.source.conformance import REASON_SOURCE_COLUMN, conform_source_rows, parse_times, reason_counts
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


# What SQLAlchemy writes into SQLite for a DateTime: 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC). SQLite
# compares text, so an interval's bounds select only values of exactly this form; any other
# (another format, a number, NULL) would silently miss every interval.
_SQLITE_CANONICAL_TIME = (
    "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
    ".[0-9][0-9][0-9][0-9][0-9][0-9]"
)
NONCANONICAL = "_noncanonical"


def _noncanonical_time(ts: sa.ColumnElement, dialect: str) -> sa.ColumnElement[bool]:
    """The rows whose event time the database cannot compare with the interval's bounds."""
    if dialect == "sqlite":
        text = sa.type_coerce(ts, sa.Text)
        return sa.or_(
            ts.is_(None),
            sa.func.typeof(ts) != "text",
            sa.not_(text.op("GLOB", is_comparison=True)(sa.literal(_SQLITE_CANONICAL_TIME, sa.Text))),
        )
    return ts.is_(None)  # a typed timestamp column holds only comparable values or NULL


def _as_read(col: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """A column in a form whose fetch cannot fail.

    SQLite: numbers as they are stored (its text form of a REAL keeps 15 digits, not every bit),
    anything else as bytes (SQLite does not check that text is UTF-8, and a column of any declared
    type may hold any value); no SQLAlchemy type, so no result processor parses it. A typed
    server: text (PostgreSQL's float text is exact)."""
    if dialect == "sqlite":
        raw = sa.case(
            (sa.func.typeof(col).in_(["integer", "real"]), col),
            else_=sa.cast(col, sa.LargeBinary),
        )
        return sa.type_coerce(raw, sa.types.NullType()).label(col.key)
    return sa.cast(col, sa.Text).label(col.key)


def select_interval(table: SourceTable, start: datetime, end: datetime, dialect: str = "sqlite") -> sa.Select:
    """The parameterized query for one interval (event tables) or a full snapshot (reference).

    Every value comes back as bytes or text (see `_as_read`). Event tables also get every row
    whose event time the database cannot compare (flag `_noncanonical`), which `place_rows`
    places by its parsed time or quarantines. No bound on the clock's now here: `read_interval`
    refuses an interval that ends after it, so every row before `end` is also at or before now."""
    t = sa_table(table)
    stmt = sa.select(*[_as_read(t.c[name], dialect) for name in table.column_names])
    if table.kind != "event":
        return stmt.order_by(*[t.c[k] for k in table.key])
    assert table.event_time is not None
    ts = t.c[table.event_time]
    odd = _noncanonical_time(ts, dialect)
    # Two parts, so the interval's part keeps the event-time index: the rows the bounds select
    # (flagged if their form is odd), and the odd rows elsewhere. On SQLite that is a scan of the
    # event-time index on every extraction (about 0.2 s per 336,776 rows: the price of never
    # missing a row); on a typed server only NULLs are odd.
    inside = stmt.add_columns(sa.case((odd, 1), else_=0).label(NONCANONICAL)).where(ts >= start, ts < end)
    outside = sa.and_(odd, sa.or_(ts.is_(None), ts < start, ts >= end))
    if dialect == "sqlite":
        # Found in the event-time index alone (no read of the table's rows), then fetched.
        rowid: sa.ColumnElement[int] = sa.literal_column("rowid")
        outside = rowid.in_(sa.select(rowid).select_from(t).where(outside))
    elsewhere = stmt.add_columns(sa.literal(1).label(NONCANONICAL)).where(outside)
    both = sa.union_all(inside, elsewhere).subquery()
    return sa.select(both).order_by(*[both.c[k] for k in table.key])


def count_interval(table: SourceTable, start: datetime, end: datetime) -> sa.Select:
    """The source's own row count for the interval (by the database's comparison), recorded
    beside what was extracted so that a difference is visible."""
    t = sa_table(table)
    stmt = sa.select(sa.func.count()).select_from(t)
    if table.kind == "event":
        assert table.event_time is not None
        ts = t.c[table.event_time]
        stmt = stmt.where(ts >= start, ts < end)
    return stmt


@dataclass
class IntervalRows:
    """One interval's rows as read from the source.

    rows: conformed, for the raw zone; rejected: the interval's rows with a value that did not
    conform (text as sent, reason code), quarantined with the interval; unplaced: rows whose
    event time cannot be read, so they belong to no interval (quarantined apart, seen by every
    extraction); source_rows: the database's own count for the interval; placed: rows the
    database could not compare but whose parsed event time lies in the interval."""

    rows: pd.DataFrame
    rejected: pd.DataFrame
    unplaced: pd.DataFrame
    source_rows: int
    placed: int

    @property
    def read_rows(self) -> int:
        """The interval's rows read: raw + quarantined with the interval."""
        return len(self.rows) + len(self.rejected)


def place_rows(
    table: SourceTable, raw: pd.DataFrame, start: datetime, end: datetime
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """(the interval's rows, the unplaced rows, how many rows were placed by their parsed time).

    Rows the database selected by the interval's bounds stay in it whatever their values. A row
    it could not compare (event time in another form) is parsed here: inside [start, end) it
    joins the interval; outside, it is another interval's; unreadable, it is unplaced."""
    if NONCANONICAL not in raw:
        return raw, raw.iloc[0:0], 0
    odd = raw[NONCANONICAL].astype(bool).to_numpy()
    assert table.event_time is not None
    times = parse_times(raw[table.event_time].tolist())
    inside = ((times >= start) & (times < end)).to_numpy()
    unreadable = times.isna().to_numpy()
    columns = table.column_names
    placed = odd & inside
    return raw.loc[~odd | placed, columns], raw.loc[odd & unreadable, columns], int(placed.sum())


def read_interval_rows(
    engine: sa.Engine, table: SourceTable, start: datetime, end: datetime, now: datetime
) -> IntervalRows:
    """Rows of one interval, conformed and placed (see `IntervalRows`); no value can fail it."""
    if end <= start:
        raise ValueError(f"empty or inverted interval [{start}, {end})")
    if table.kind == "event" and end > now:
        raise IntervalNotClosedError(
            f"interval [{start.isoformat()}, {end.isoformat()}) of {table.name!r} ends after the "
            f"source clock's now ({now.isoformat()}): extracting it now would give a partial "
            "partition. Next step: wait until the interval has ended, then clear this task."
        )
    dialect = engine.dialect.name
    stmt = select_interval(table, start, end, dialect)
    try:
        check_schema(engine, table, start, end)
        options = {"isolation_level": "REPEATABLE READ"} if dialect == "postgresql" else {}
        with engine.connect().execution_options(**options) as conn:  # one snapshot for both
            source_rows = int(conn.execute(count_interval(table, start, end)).scalar_one())
            result = conn.execute(stmt)
            # object: a NULL stays None (pandas would make a float NaN of it, read as not_finite)
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()), dtype=object)
    except sa.exc.OperationalError as exc:
        raise SourceUnavailableError(read_failed_message(engine, table, start, end, exc)) from exc
    in_interval, unplaced, placed = place_rows(table, frame, start, end)
    conformed = conform_source_rows(in_interval, table)
    return IntervalRows(
        rows=conformed.rows,
        rejected=conformed.rejected,
        unplaced=conform_source_rows(unplaced, table).rejected,
        source_rows=source_rows,
        placed=placed,
    )


def read_interval(
    engine: sa.Engine, table: SourceTable, start: datetime, end: datetime, now: datetime
) -> pd.DataFrame:
    """The conformed rows of one interval, sorted by key (see `read_interval_rows`)."""
    return read_interval_rows(engine, table, start, end, now).rows


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


@dataclass(frozen=True)
class ExtractionInfo:
    """What extract_<table> wrote: the raw partition and the counts that account for every row
    (small enough for XCom and the raw asset event's extra).

    The interval's rows read = raw rows + quarantined_rows; source_rows is the database's own
    count for the interval, which differs from rows read only by placed_rows (rows whose event
    time the database could not compare, placed by their parsed time); unplaced_rows belong to
    no interval."""

    partition: PartitionInfo
    source_rows: int
    quarantined_rows: int
    unplaced_rows: int
    placed_rows: int
    reasons: dict[str, int]
    quarantine_path: str | None
    unplaced_path: str | None = None

    @property
    def rows(self) -> int:
        return self.partition.rows

    @property
    def path(self) -> str:
        return self.partition.path

    @property
    def sha256(self) -> str:
        return self.partition.sha256

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.partition.as_dict(),
            "source_rows": self.source_rows,
            "extract_quarantined_rows": self.quarantined_rows,
            "unplaced_rows": self.unplaced_rows,
            "placed_rows": self.placed_rows,
            "extract_reasons": dict(self.reasons),
            "extract_quarantine_path": self.quarantine_path,
            "unplaced_path": self.unplaced_path,
        }


EXTRACT_ROWS = "extract_rows.parquet"
EXTRACT_RECORD = "extract.json"


def extraction_record(
    table: SourceTable, start: datetime, end: datetime, rows: IntervalRows
) -> dict[str, Any]:
    """What `extract.json` beside the quarantined rows says (no clock in it: a rerun on the same
    source writes the same bytes)."""
    return {
        "table": table.name,
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
        "source_rows": rows.source_rows,
        "read_rows": rows.read_rows,
        "raw_rows": len(rows.rows),
        "quarantined_rows": len(rows.rejected),
        "placed_rows": rows.placed,
        "reasons": reason_counts(rows.rejected),
        "columns": dict(sorted(Counter(rows.rejected[REASON_SOURCE_COLUMN].tolist()).items())),
        "sample": rows.rejected.head(5)
        .astype(object)
        .where(rows.rejected.head(5).notna(), None)
        .to_dict("records"),
    }


def write_rejected(folder: str, rejected: pd.DataFrame, record: dict[str, Any]) -> str | None:
    """Store (or clear, when there are none) the rows quarantined at extraction in `folder`.

    The record goes last: a reader that finds it finds the rows it counts."""
    rows_path, record_path = storage.join(folder, EXTRACT_ROWS), storage.join(folder, EXTRACT_RECORD)
    if not len(rejected):
        storage.remove(record_path)
        storage.remove(rows_path)
        return None
    write_frame_atomic(rows_path, rejected)
    write_text_atomic(record_path, json.dumps(record, indent=2, sort_keys=True, default=str))
    return rows_path


def unplaced_folder(lake_root: str | Path, table: SourceTable) -> str:
    """Where the rows whose event time cannot be read are kept: they belong to no interval."""
    return storage.join(lake_root, "quarantine", table.name, "unplaced")


def extract_to_lake(
    engine: sa.Engine,
    table: SourceTable,
    start: datetime,
    end: datetime,
    now: datetime,
    lake_root: str | Path,
) -> ExtractionInfo:
    """Extract [start, end) of `table` into the raw zone; rerunning replaces the partition.

    Rows with a value that does not conform go to the interval's quarantine folder
    (extract_rows.parquet, extract.json), rows with an unreadable event time to
    quarantine/<table>/unplaced/; nothing read is dropped."""
    got = read_interval_rows(engine, table, start, end, now)
    key = interval_key(start, end)
    qdir = interval_folder(lake_root, "quarantine", table.name, start, end)
    qpath = write_rejected(qdir, got.rejected, extraction_record(table, start, end, got))
    unplaced_record = {
        "table": table.name,
        "rows": len(got.unplaced),
        "reasons": reason_counts(got.unplaced),
        "why": "the event time cannot be read, so the rows belong to no interval",
    }
    upath = write_rejected(unplaced_folder(lake_root, table), got.unplaced, unplaced_record)
    info = write_partition(got.rows, table, lake_root, "raw", start, end)
    extraction = ExtractionInfo(
        partition=info,
        source_rows=got.source_rows,
        quarantined_rows=len(got.rejected),
        unplaced_rows=len(got.unplaced),
        placed_rows=got.placed,
        reasons=reason_counts(got.rejected),
        quarantine_path=qpath,
        unplaced_path=upath,
    )
    log_extraction(table, key, extraction)
    return extraction


def log_extraction(table: SourceTable, key: str, info: ExtractionInfo) -> None:
    """Say where every row went, loudly when some did not reach the raw zone."""
    if info.quarantined_rows:
        log.warning(
            "%r interval %s: %d row(s) QUARANTINED at extraction, values that do not conform %s, "
            "kept as sent in %s; they are not in the raw partition and will not be published. "
            "Next step: README, On call, row 'QUARANTINED at extraction'.",
            table.name,
            key,
            info.quarantined_rows,
            info.reasons,
            info.quarantine_path,
        )
    if info.unplaced_rows:
        log.warning(
            "%r: %d row(s) whose event time cannot be read belong to no interval; kept in %s "
            "(every extraction sees them until the source is fixed). Next step: README, On call, "
            "row 'QUARANTINED at extraction'.",
            table.name,
            info.unplaced_rows,
            info.unplaced_path,
        )
    if info.placed_rows:
        log.warning(
            "%r interval %s: %d row(s) have an event time the database cannot compare (another "
            "format); placed by their parsed time. Fix the source's format: such rows are read by "
            "every extraction.",
            table.name,
            key,
            info.placed_rows,
        )
    if info.rows == 0:
        log.warning(
            "interval %s of %r holds no rows: wrote an empty partition (rows=0) at %s. "
            "This is not an error: the source had nothing for this interval.",
            key,
            table.name,
            info.path,
        )
    else:
        log.info(
            "extracted %d rows of %r for interval %s into %s (sha256 %s); the source counts %d",
            info.rows,
            table.name,
            key,
            info.path,
            info.sha256[:12],
            info.source_rows,
        )


def extract_step(
    engine: sa.Engine,
    table: SourceTable,
    start: datetime,
    end: datetime,
    settings: Settings,
    connection_hint: str,
) -> ExtractionInfo:
    """The extract_<table> task's work: refuse an unusable source early (naming the connection),
    then extract [start, end) as of the clock's now. Disposes of `engine` in any case."""
    try:
        ensure_reachable(engine, connection_hint)
        return extract_to_lake(engine, table, start, end, utc_now(settings.clock_now), settings.lake_root)
    finally:
        engine.dispose()
