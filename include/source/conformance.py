"""Source values to the declared types, without failing on any value (pure, no I/O).

Extraction reads every column in a form that cannot fail (bytes from SQLite, text from a typed
server), then conforms it here. A value that does not decode, does not parse or is not finite is
not an exception that kills the table's extraction: its row is rejected with the value as sent
and a reason code, and quarantined by include/source/extract.py. So one bad cell costs one row,
and the row is kept where people can see it.

Reason codes (README, Data checks):
- not_utf8: a text value whose bytes are not UTF-8 (kept with backslash escapes);
- unparseable_timestamp: not an ISO 8601 timestamp (or out of range);
- unparseable_number: not a number at all;
- not_integer: a number with a fraction in an integer column;
- not_finite: inf, -inf or NaN in a number column;
- missing_event_time: no event time, so the row belongs to no interval.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from include.core.schema import Column, SourceTable
from include.lake.partitions import conform

NOT_UTF8 = "not_utf8"
UNPARSEABLE_TIMESTAMP = "unparseable_timestamp"
UNPARSEABLE_NUMBER = "unparseable_number"
NOT_INTEGER = "not_integer"
NOT_FINITE = "not_finite"
MISSING_EVENT_TIME = "missing_event_time"

REASON_COLUMN = "quarantine_reason"
REASON_SOURCE_COLUMN = "quarantine_column"


@dataclass
class Conformed:
    """What conforming a batch of source rows gave.

    `rows`: the rows whose every value conformed, cast to the declared types (lake.conform);
    `rejected`: the others, every column as the text that was sent, with the first failing
    column and its reason code."""

    rows: pd.DataFrame
    rejected: pd.DataFrame
    reasons: Counter[str] = field(default_factory=Counter)


def decode(value: Any) -> tuple[str | None, bool]:
    """(text, ok): bytes decoded as UTF-8; bytes that are not UTF-8 come back with backslash
    escapes and ok False; anything else as its str()."""
    if value is None or (isinstance(value, float) and value != value):
        return None, True  # NULL; a float NaN cell is pandas' NULL (SQLite cannot store NaN)
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8"), True
        except UnicodeDecodeError:
            return raw.decode("utf-8", errors="backslashreplace"), False
    return str(value), True


def _number(text: str, integer: bool) -> tuple[float | int | None, str | None]:
    """(value, reason): the number a text holds, or None and why not."""
    try:
        number = float(text)
    except ValueError:
        return None, UNPARSEABLE_NUMBER
    if not math.isfinite(number):
        return None, NOT_FINITE
    if not integer:
        return number, None
    stripped = text.strip()
    if stripped.lstrip("+-").isdigit():
        return int(stripped), None  # exact, beyond float's 2**53
    if number.is_integer():
        return int(number), None
    return None, NOT_INTEGER


def _parse_column(column: Column, texts: list[str | None]) -> tuple[pd.Series, list[str | None]]:
    """The column's values parsed to its type (None where missing or failed) and a reason per
    value (None where it conformed)."""
    reasons: list[str | None] = [None] * len(texts)
    if column.dtype == "string":
        return pd.Series(texts, dtype="object"), reasons
    if column.dtype == "timestamp":
        parsed = pd.to_datetime(pd.Series(texts, dtype="object"), format="ISO8601", utc=True, errors="coerce")
        failed = parsed.isna().to_numpy()
        reasons = [
            UNPARSEABLE_TIMESTAMP if bad and text is not None else None
            for text, bad in zip(texts, failed, strict=True)
        ]
        return parsed, reasons
    values: list[float | int | None] = []
    for i, text in enumerate(texts):
        if text is None:
            values.append(None)
            continue
        value, reasons[i] = _number(text, column.dtype == "int64")
        values.append(value)
    return pd.Series(values, dtype="object"), reasons


def conform_source_rows(raw: pd.DataFrame, table: SourceTable) -> Conformed:
    """Conform rows read from the source (bytes or text per cell, None for NULL) to `table`.

    Never raises on a value. The event time's failure comes first in a row's reason, as it
    decides where the row goes; a missing event time is `missing_event_time`."""
    n = len(raw)
    texts: dict[str, list[str | None]] = {}
    row_reason: list[str | None] = [None] * n
    row_column: list[str | None] = [None] * n
    order = sorted(table.columns, key=lambda c: c.name != table.event_time)  # event time first
    parsed: dict[str, pd.Series] = {}
    for column in order:
        decoded = [decode(v) for v in raw[column.name].tolist()]
        texts[column.name] = [text for text, _ in decoded]
        values, reasons = _parse_column(column, texts[column.name])
        parsed[column.name] = values
        for i, (_, ok) in enumerate(decoded):
            reason = reasons[i] if ok else NOT_UTF8
            if column.name == table.event_time and texts[column.name][i] is None:
                reason = MISSING_EVENT_TIME
            if reason and row_reason[i] is None:
                row_reason[i], row_column[i] = reason, column.name
    bad = pd.Series([r is not None for r in row_reason], dtype=bool)
    good = pd.DataFrame({c.name: parsed[c.name] for c in table.columns})[~bad.to_numpy()]
    rejected = pd.DataFrame({c.name: pd.Series(texts[c.name], dtype="string") for c in table.columns})
    rejected[REASON_COLUMN] = pd.Series(row_reason, dtype="string")
    rejected[REASON_SOURCE_COLUMN] = pd.Series(row_column, dtype="string")
    rejected = rejected[bad.to_numpy()]
    return Conformed(
        rows=conform(good, table),
        rejected=sort_rejected(rejected, table),
        reasons=Counter(r for r in row_reason if r),
    )


def parse_times(values: list[Any]) -> pd.Series:
    """Timestamps of raw cells (bytes or text), UTC; NaT where a value is missing, not UTF-8 or
    not ISO 8601. Used to place rows the database could not compare with an interval's bounds."""
    texts = [text if ok else None for text, ok in (decode(v) for v in values)]
    return pd.to_datetime(pd.Series(texts, dtype="object"), format="ISO8601", utc=True, errors="coerce")


def sort_rejected(rejected: pd.DataFrame, table: SourceTable) -> pd.DataFrame:
    """Rejected rows in a stable order (key text, then every column), so a rerun writes the same
    bytes."""
    if not len(rejected):
        return rejected.reset_index(drop=True)
    by = [*table.key, *[c for c in rejected.columns if c not in table.key]]
    return rejected.sort_values(by, kind="mergesort", na_position="last").reset_index(drop=True)


def reason_counts(rejected: pd.DataFrame) -> dict[str, int]:
    """Rejected rows per reason code, sorted by code (for records and messages)."""
    if not len(rejected):
        return {}
    return dict(sorted(Counter(rejected[REASON_COLUMN].tolist()).items()))
