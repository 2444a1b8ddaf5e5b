"""Release of a validated partition (I/O): publish, split out bad rows, or quarantine it.

- publish: every row to the validated zone;
- split: good rows to validated, bad rows (with their reason code) to quarantine;
- block: the raw file is copied to quarantine, nothing is published, unless a force reason is
  given (an on-call override): then every row is published and the reason recorded next to the
  quarantine record.
Nothing disappears: raw rows = published + quarantined rows, and the rows quarantined at
extraction (include/source/extract.py, beside them in the same folder) are counted as quarantined.
A forced publish cannot publish those: their values never conformed.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from include.lake import storage
from include.lake.partitions import (
    conform,
    interval_folder,
    write_frame_atomic,
    write_partition,
    write_text_atomic,
)
from include.quality.validation import ValidationOutcome
from include.source.dataset import SourceTable

ReleaseDecision = Literal["publish", "split", "block", "forced"]


@dataclass(frozen=True)
class ReleaseResult:
    """Where an interval's rows went; small enough for XCom and an asset event's extra."""

    decision: ReleaseDecision
    validated_path: str | None
    quarantine_dir: str | None
    published_rows: int
    quarantined_rows: int
    forced_reason: str | None = None


def quarantine_record(
    outcome: ValidationOutcome, raw_path: str | Path, start: datetime, end: datetime
) -> dict[str, Any]:
    """What `reason.json` says: the outcome, the interval, the raw file, every failure."""
    return {
        **outcome.summary(),
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
        "raw_path": str(raw_path),
        "failures": [asdict(f) for f in outcome.failures],
    }


def split_rows(outcome: ValidationOutcome, raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(good, bad) rows; a (forced) block publishes every row, bad rows carry their reason code."""
    if outcome.decision == "block" or outcome.row_reasons is None:
        return raw, raw.iloc[0:0]
    bad_index = outcome.row_reasons.index
    return raw.drop(index=bad_index), raw.loc[bad_index].assign(quarantine_reason=outcome.row_reasons)


def _write_json_atomic(path: str, payload: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=str))


def quarantine_raw_file(qdir: str, raw_path: str | Path, record: dict[str, Any]) -> None:
    """A blocked partition: the raw file's bytes as they came, and the reason beside them (each
    stored atomically, in a local folder or an object store alike)."""
    storage.write_bytes_atomic(storage.join(qdir, "part-0.parquet"), storage.read_bytes(raw_path))
    _write_json_atomic(storage.join(qdir, "reason.json"), record)


def quarantine_rows(qdir: str, bad: pd.DataFrame, record: dict[str, Any]) -> None:
    """The bad rows of a split partition (if any), and the reason beside them."""
    if len(bad):
        write_frame_atomic(storage.join(qdir, "rows.parquet"), bad)
    _write_json_atomic(storage.join(qdir, "reason.json"), record)


def release(
    outcome: ValidationOutcome,
    table: SourceTable,
    raw_path: str | Path,
    raw: pd.DataFrame,
    lake_root: str | Path,
    start: datetime,
    end: datetime,
    force_reason: str | None = None,
) -> ReleaseResult:
    """Publish the good rows, quarantine the rest, with a reason file; nothing disappears.

    A blocked partition is published whole only with `force_reason` (recorded)."""
    qdir = interval_folder(lake_root, "quarantine", table.name, start, end)
    record = quarantine_record(outcome, raw_path, start, end)
    if outcome.decision == "block" and not force_reason:
        quarantine_raw_file(qdir, raw_path, record)
        return ReleaseResult("block", None, qdir, 0, len(raw) + outcome.extraction_quarantined)
    if outcome.decision == "block":
        record["forced_publish_reason"] = force_reason
    good, bad = split_rows(outcome, raw)
    info = write_partition(
        conform(good[table.column_names], table), table, lake_root, "validated", start, end
    )
    kept = bool(len(bad) or force_reason or outcome.extraction_quarantined)
    if kept:
        quarantine_rows(qdir, bad, record)
    decision: ReleaseDecision = "forced" if force_reason and outcome.decision == "block" else outcome.decision
    quarantined = len(bad) + outcome.extraction_quarantined
    return ReleaseResult(decision, info.path, qdir if kept else None, info.rows, quarantined, force_reason)
