"""The validate_<table> step of ingest_flights (I/O): what include/quality's pieces do for one
raw partition, from reading it to the summary that goes into XCom and the asset event.

Checks: include/quality/suites.py; the GX session: gx_session.py; the decision: validation.py;
publish / split / quarantine: release.py.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict

from include.core.errors import PartitionQuarantinedError
from include.lake import storage
from include.lake.partitions import interval_folder, interval_key, parquet_rows, partition_url, read_table
from include.quality.gx_session import GxSession
from include.quality.normalize import normalize_codes
from include.quality.release import ReleaseDecision, ReleaseResult, release
from include.quality.suites import suite_for
from include.quality.validation import (
    Failure,
    ValidationOutcome,
    block_message,
    read_raw,
    validate_frame,
    with_extraction,
)
from include.source.dataset import AIRLINES, AIRPORTS, PLANES, SourceTable
from include.source.extract import EXTRACT_RECORD


class ValidationSummary(TypedDict):
    """What validate_<table> returns (XCom) and puts in the validated asset event's extra."""

    table: str
    decision: ReleaseDecision
    success: bool
    rows: int
    published_rows: int
    quarantined_rows: int
    failed: list[str]
    suite_version: str
    data_docs_page: str | None
    validated_path: str | None
    quarantine_dir: str | None
    forced_reason: str | None
    warnings: list[str]
    normalized_values: dict[str, int]  # code values made canonical (trim, case), per column
    interval_start: str
    interval_end: str


def force_reason_from_params(params: Mapping[str, Any]) -> str | None:
    """The on-call override of a run's Params: None, or the (required) reason of a forced publish."""
    if not params.get("force_publish"):
        return None
    force_reason = (params.get("reason") or "").strip()
    if not force_reason:
        raise ValueError("force_publish=true needs a reason (Params 'reason'): it is recorded")
    return force_reason


def reference_codes(airports_path: str | Path, airlines_path: str | Path) -> tuple[set[str], set[str]]:
    """Airport and carrier codes of the interval's reference snapshots, canonical by the same
    rules as the event tables' codes (include/quality/normalize.py)."""
    airports, _ = normalize_codes(read_table(airports_path, columns=["faa"]).to_pandas(), AIRPORTS)
    carriers, _ = normalize_codes(read_table(airlines_path, columns=["carrier"]).to_pandas(), AIRLINES)
    return set(airports["faa"].dropna()), set(carriers["carrier"].dropna())


def known_tails(planes_path: str | Path | None) -> set[str] | None:
    """Tail numbers of the interval's planes snapshot (canonical), or None without one."""
    if planes_path is None:
        return None
    planes, _ = normalize_codes(read_table(planes_path, columns=["tailnum"]).to_pandas(), PLANES)
    return set(planes["tailnum"].dropna())


def extraction_record(
    lake_root: str | Path, table: SourceTable, start: datetime, end: datetime
) -> dict[str, Any] | None:
    """The interval's record of rows quarantined at extraction (`extract.json`), if any."""
    path = storage.join(interval_folder(lake_root, "quarantine", table.name, start, end), EXTRACT_RECORD)
    if not storage.is_file(path):
        return None
    record: dict[str, Any] = json.loads(storage.read_bytes(path))
    return record


def expected_rows_from_history(
    lake_root: str | Path, table: SourceTable, start: datetime, end: datetime, weeks: int = 4
) -> float | None:
    """Median row count of the same weekday's raw partitions over the previous `weeks` weeks."""
    counts = []
    for k in range(1, weeks + 1):
        path = partition_url(
            lake_root, "raw", table.name, start - timedelta(weeks=k), end - timedelta(weeks=k)
        )
        if storage.is_file(path):
            rows = parquet_rows(path)
            if rows:
                counts.append(rows)
    return statistics.median(counts) if counts else None


def validation_summary(
    outcome: ValidationOutcome,
    result: ReleaseResult,
    start: datetime,
    end: datetime,
    normalized: dict[str, int] | None = None,
) -> ValidationSummary:
    """The outcome, where its rows went (the release's counts win), warnings and the interval."""
    head = outcome.summary()
    return {
        "table": head["table"],
        "decision": result.decision,
        "success": head["success"],
        "rows": head["rows"],
        "published_rows": result.published_rows,
        "quarantined_rows": result.quarantined_rows,
        "failed": head["failed"],
        "suite_version": head["suite_version"],
        "data_docs_page": head["data_docs_page"],
        "validated_path": result.validated_path,
        "quarantine_dir": result.quarantine_dir,
        "forced_reason": result.forced_reason,
        "warnings": sorted({f.reason for f in outcome.warnings}),
        "normalized_values": dict(normalized or {}),
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
    }


def log_failures(log: logging.Logger, table_name: str, failures: list[Failure]) -> None:
    for failure in failures:
        log.warning(
            "%s %s: %s (%s%s) %d unexpected, e.g. %s",
            table_name,
            failure.policy.upper(),
            failure.reason,
            failure.expectation,
            f" column {failure.column}" if failure.column else "",
            failure.unexpected_count,
            failure.sample,
        )


def log_release(log: logging.Logger, summary: ValidationSummary) -> None:
    if summary["decision"] == "forced":
        log.warning(
            "%s: FORCED publish despite %s; reason: %s",
            summary["table"],
            summary["failed"],
            summary["forced_reason"],
        )
    log.info(
        "%s: %s, %d rows published, %d quarantined",
        summary["table"],
        summary["decision"],
        summary["published_rows"],
        summary["quarantined_rows"],
    )


def validate_partition(
    table: SourceTable,
    raw_path: str | Path,
    airports_path: str | Path,
    airlines_path: str | Path,
    lake_root: str | Path,
    start: datetime,
    end: datetime,
    force_reason: str | None = None,
    session: GxSession | None = None,
    log: logging.Logger | None = None,
    planes_path: str | Path | None = None,
) -> ValidationSummary:
    """Validate one raw partition, then publish / split / quarantine it (see `release`).

    Raises PartitionQuarantinedError after quarantining a blocked partition."""
    log = log or logging.getLogger(__name__)
    airports, carriers = reference_codes(airports_path, airlines_path)
    schema, as_read = read_raw(raw_path)
    raw, normalized = normalize_codes(as_read, table)
    if normalized:
        log.warning(
            "%s: code values made canonical (trimmed, case) before the checks: %s "
            "(the raw zone keeps them as sent)",
            table.name,
            normalized,
        )
    expected = expected_rows_from_history(lake_root, table, start, end)
    checks = suite_for(table, start, end, airports, carriers, expected, known_tails(planes_path))
    key = interval_key(start, end)
    outcome = validate_frame(session or GxSession(), table, schema, raw, checks, run_name=key)
    outcome = with_extraction(outcome, extraction_record(lake_root, table, start, end))
    if outcome.docs_page:
        log.info("%s: Data Docs page of this validation: %s", table.name, outcome.docs_page)
    log_failures(log, table.name, outcome.failures)
    result = release(outcome, table, raw_path, raw, lake_root, start, end, force_reason)
    summary = validation_summary(outcome, result, start, end, normalized)
    if result.decision == "block":
        raise PartitionQuarantinedError(
            block_message(outcome, key, str(result.quarantine_dir), outcome.docs_page)
        )
    log_release(log, summary)
    return summary
