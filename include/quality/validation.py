"""Data checks of raw partitions: what validate_<table> in ingest_flights runs.

Each check has a policy:
- ``block``: the whole partition is quarantined; nothing is published;
- ``warn``: published; the warning is reported with the result;
- ``row``: failing rows are split out with a reason code and the good rows published, as long
  as the quarantined share stays at or below ``max_row_share``; above it the partition blocks.

Schema (exact columns and arrow types) is checked on the parquet file's own schema: exact,
where GX's pandas type introspection reports nullable types loosely ('Int64' as 'int64',
timestamps as 'Timestamp'). The data checks run in Great Expectations Core, imported only
when a validation runs. Nothing disappears: raw rows = published + quarantined rows.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import statistics
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from include.lake.partitions import (
    arrow_schema,
    conform,
    interval_key,
    partition_path,
    write_partition,
    write_text_atomic,
)
from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES, WEATHER_OBSERVATIONS, SourceTable

SUITE_VERSION = "2026-11-23-1"  # bump when a check changes; no dots (GX nests them as folders)
DOCS_SITE = "lake"
Policy = Literal["block", "warn", "row"]


@dataclass(frozen=True)
class Check:
    """One expectation, declared as data: the GX class name, its arguments, a policy, a code."""

    expectation: str
    kwargs: dict[str, Any]
    policy: Policy
    reason: str


@dataclass
class Failure:
    reason: str
    policy: Policy
    expectation: str
    column: str | None
    unexpected_count: int
    sample: list[Any]


@dataclass
class ValidationOutcome:
    table: str
    decision: Literal["publish", "split", "block"]
    rows: int
    failures: list[Failure] = field(default_factory=list)
    row_reasons: pd.Series | None = None  # reason code per quarantined row index
    suite_version: str = SUITE_VERSION
    docs_page: str | None = None  # this validation's Data Docs page, when a site is kept

    @property
    def blocking(self) -> list[Failure]:
        return [f for f in self.failures if f.policy == "block"]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if f.policy == "warn"]

    def summary(self) -> dict[str, Any]:
        quarantined = 0 if self.row_reasons is None else len(self.row_reasons)
        if self.decision == "block":
            quarantined = self.rows
        return {
            "table": self.table,
            "decision": self.decision,
            "success": self.decision != "block",
            "rows": self.rows,
            "published_rows": self.rows - quarantined,
            "quarantined_rows": quarantined,
            "failed": sorted({f.reason for f in self.failures}),
            "suite_version": self.suite_version,
            "data_docs_page": self.docs_page,
        }


class PartitionUnreadableError(RuntimeError):
    """The raw partition cannot be read as parquet (truncated or corrupt file)."""


def read_raw(path: str | Path) -> tuple[pa.Schema, pd.DataFrame]:
    """The partition's arrow schema and its rows (nullable pandas types, nothing cast)."""
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise PartitionUnreadableError(f"cannot read raw partition {path}: {exc}") from exc
    mapping = {pa.int64(): pd.Int64Dtype(), pa.string(): pd.StringDtype()}
    return table.schema, table.to_pandas(types_mapper=mapping.get)


def schema_failures(table: SourceTable, schema: pa.Schema) -> list[Failure]:
    """Exact columns (names and order) and arrow types against include/source/dataset.py."""
    expected = arrow_schema(table)
    found = {f.name: f.type for f in schema}
    failures = []
    missing = [n for n in expected.names if n not in found]
    extra = [n for n in schema.names if n not in expected.names]
    if missing:
        failures.append(Failure("missing_column", "block", "schema", None, len(missing), missing))
    if extra:
        failures.append(Failure("extra_column", "block", "schema", None, len(extra), extra))
    wrong = [
        f"{f.name}: expected {f.type}, found {found[f.name]}"
        for f in expected
        if f.name in found and not found[f.name].equals(f.type)
    ]
    if wrong:
        failures.append(Failure("wrong_type", "block", "schema", None, len(wrong), wrong))
    return failures


def suite_for(
    table: SourceTable,
    start: datetime,
    end: datetime,
    airports: set[str],
    carriers: set[str],
    expected_rows: float | None = None,
) -> list[Check]:
    """The checks of one table for one interval (reference sets from the same interval)."""
    checks: list[Check] = []
    key = list(table.key)
    for col in key:
        checks.append(Check("ExpectColumnValuesToNotBeNull", {"column": col}, "block", "null_key"))
    if len(key) == 1:
        checks.append(Check("ExpectColumnValuesToBeUnique", {"column": key[0]}, "block", "duplicate_key"))
    else:
        checks.append(
            Check("ExpectCompoundColumnsToBeUnique", {"column_list": key}, "block", "duplicate_key")
        )
    for col in table.columns:
        if not col.nullable and col.name not in key:
            checks.append(
                Check("ExpectColumnValuesToNotBeNull", {"column": col.name}, "row", "null_required")
            )
    if table.event_time:
        bounds = {"min_value": start.isoformat(), "max_value": end.isoformat(), "strict_max": True}
        checks.append(
            Check(
                "ExpectColumnValuesToBeBetween",
                {"column": table.event_time, **bounds},
                "row",
                "other_interval",
            )
        )
        checks.append(Check("ExpectTableRowCountToBeBetween", {"min_value": 1}, "warn", "empty_partition"))
        # Freshness: a live table's newest row is at most 6 h older than the interval's end
        # (weather is hourly; schedules and outcomes are published around the clock).
        fresh_from = (end - timedelta(hours=6)).isoformat()
        checks.append(
            Check(
                "ExpectColumnMaxToBeBetween",
                {"column": table.event_time, "min_value": fresh_from},
                "warn",
                "stale_partition",
            )
        )
        if expected_rows:
            # A day with less than half the usual rows of its weekday: the extraction is suspect.
            min_rows = int(expected_rows * 0.5)
            checks.append(
                Check("ExpectTableRowCountToBeBetween", {"min_value": min_rows}, "block", "volume_drop")
            )

    def between(col: str, lo: float, hi: float, reason: str = "out_of_range") -> Check:
        return Check(
            "ExpectColumnValuesToBeBetween", {"column": col, "min_value": lo, "max_value": hi}, "row", reason
        )

    if table is FLIGHT_SCHEDULES:
        checks += [
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "origin", "value_set": sorted(airports)},
                "row",
                "unknown_airport",
            ),
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "dest", "value_set": sorted(airports)},
                "row",
                "unknown_airport",
            ),
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "carrier", "value_set": sorted(carriers)},
                "row",
                "unknown_carrier",
            ),
            between("distance_mi", 1, 6000),
            Check(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {"column_A": "scheduled_arrival", "column_B": "scheduled_departure"},
                "row",
                "arrival_before_departure",
            ),
        ]
    elif table is FLIGHT_OUTCOMES:
        checks += [
            Check(
                "ExpectColumnValuesToBeInSet",
                {"column": "status", "value_set": ["arrived", "cancelled", "diverted"]},
                "row",
                "bad_status",
            ),
            between("dep_delay_min", -120, 1800),
            between("arr_delay_min", -180, 1800),
            between("air_time_min", 5, 800),
            Check(
                "ExpectColumnPairValuesAToBeGreaterThanB",
                {
                    "column_A": "actual_arrival",
                    "column_B": "actual_departure",
                    "ignore_row_if": "either_value_is_missing",
                },
                "row",
                "arrival_before_departure",
            ),
        ]
    elif table is WEATHER_OBSERVATIONS:
        checks += [
            between("temp_f", -40, 130),
            between("humidity_pct", 0, 100),
            between("wind_speed_mph", 0, 200),
            between("visibility_mi", 0, 100),
        ]
    return checks


def _gx_expectation(check: Check) -> Any:
    import great_expectations.expectations as gxe

    return getattr(gxe, check.expectation)(
        **check.kwargs, meta={"policy": check.policy, "reason": check.reason}
    )


class GxSession:
    """One quiet Great Expectations context for a task: build it once, validate many frames.

    With `docs_dir`, every validation result is kept under `results_dir` and rendered to a
    Data Docs site in `docs_dir` (one page per partition and run, and an index of all of them);
    without it, results stay in memory (tests, benchmarks)."""

    def __init__(self, docs_dir: Path | None = None, results_dir: Path | None = None) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no network here: calls would hang
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
        )
        self.docs_dir = Path(docs_dir) if docs_dir else None
        if self.docs_dir:
            results_dir = Path(results_dir or self.docs_dir.parent / "gx_validation_results")
            config.stores["validation_results_store"] = {
                "class_name": "ValidationResultsStore",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(results_dir),
                },
            }
            config.data_docs_sites = {
                DOCS_SITE: {
                    "class_name": "SiteBuilder",
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(self.docs_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                }
            }
        self.context = gx.get_context(project_config=config, mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self.context.data_sources.add_pandas("lake")
        self._definitions: dict[str, Any] = {}

    def _definition(self, table_name: str, suite_name: str, checks: list[Check]) -> Any:
        import great_expectations as gx

        suite = gx.ExpectationSuite(suite_name, expectations=[_gx_expectation(c) for c in checks])
        if suite_name in self._definitions:  # same table, new interval: arguments may differ
            definition = self._definitions[suite_name]
            definition.suite.expectations = suite.expectations
            definition.suite.save()
            return definition
        try:
            asset = self._source.get_asset(table_name)
        except LookupError:
            asset = self._source.add_dataframe_asset(table_name)
        batch = asset.add_batch_definition_whole_dataframe(suite_name)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_name, data=batch, suite=self.context.suites.add(suite))
        )
        self._definitions[suite_name] = definition
        return definition

    def validate(
        self, table_name: str, suite_name: str, checks: list[Check], frame: pd.DataFrame, run_name: str
    ) -> tuple[Any, str | None]:
        """Run a suite on a frame; return GX's result and the Data Docs page (None without docs)."""
        from great_expectations.core.run_identifier import RunIdentifier
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        definition = self._definition(table_name, suite_name, checks)
        run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
        result = definition.run(
            batch_parameters={"dataframe": frame},
            run_id=run_id,
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": 5},
        )
        if not self.docs_dir:
            return result, None
        result_id = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=run_id,
            batch_identifier=f"{self._source.name}-{table_name}",
        )
        self.docs_dir.mkdir(parents=True, exist_ok=True)
        with open(self.docs_dir / ".build.lock", "w") as lock:  # tasks of one interval run in parallel
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[result_id])
        urls = self.context.get_docs_sites_urls(resource_identifier=result_id, site_name=DOCS_SITE)
        page = urls[0]["site_url"] if urls else None
        return result, unquote(page.removeprefix("file://")) if page else None


def validate_frame(
    session: GxSession,
    table: SourceTable,
    schema: pa.Schema,
    frame: pd.DataFrame,
    checks: list[Check],
    max_row_share: float = 0.05,
    run_name: str = "adhoc",
) -> ValidationOutcome:
    """Run the schema check and the suite; decide publish / split / block.

    A partition whose schema is wrong is not data-checked (the checks would only repeat the
    schema error); its Data Docs page shows the column-set expectation alone."""
    failures = schema_failures(table, schema)
    row_reasons: dict[int, str] = {}
    if failures:
        columns = Check(
            "ExpectTableColumnsToMatchSet",
            {"column_set": table.column_names, "exact_match": True},
            "block",
            "schema",
        )
        _, docs_page = session.validate(
            table.name, f"{table.name}_schema_{SUITE_VERSION}", [columns], frame, run_name
        )
    else:
        result, docs_page = session.validate(
            table.name, f"{table.name}_{SUITE_VERSION}", checks, frame, run_name
        )
        for res in result.results:
            if res.success:
                continue
            meta = res.expectation_config.meta or {}
            policy, reason = meta.get("policy", "block"), meta.get("reason", "failed")
            details = res.result or {}
            indices = details.get("unexpected_index_list") or []
            count = details.get("unexpected_count")
            failures.append(
                Failure(
                    reason=reason,
                    policy=policy,
                    expectation=res.expectation_config.type,
                    column=res.expectation_config.kwargs.get("column"),
                    unexpected_count=int(count if count is not None else len(indices) or 1),
                    sample=[str(v) for v in (details.get("partial_unexpected_list") or [])][:5]
                    or ([str(details["observed_value"])] if "observed_value" in details else []),
                )
            )
            if policy == "row":
                for idx in indices:
                    row_reasons.setdefault(int(idx), reason)
    rows = len(frame)
    if any(f.policy == "block" for f in failures):
        decision = "block"
    elif row_reasons and len(row_reasons) > max_row_share * rows:
        failures.append(
            Failure(
                "row_share_exceeded",
                "block",
                "policy",
                None,
                len(row_reasons),
                [f"{len(row_reasons)} of {rows} rows failed; limit {max_row_share:.0%}"],
            )
        )
        decision = "block"
    elif row_reasons:
        decision = "split"
    else:
        decision = "publish"
    reasons = pd.Series(row_reasons, dtype="string").sort_index() if row_reasons else None
    return ValidationOutcome(table.name, decision, rows, failures, reasons, docs_page=docs_page)


def block_message(outcome: ValidationOutcome, interval: str, quarantine: str, docs: str | None) -> str:
    """What the failed task says: interval, failed expectations, where things are, next step."""
    lines = [
        f"partition {outcome.table!r} of interval {interval} is QUARANTINED "
        f"(suite {outcome.suite_version}); the validated asset was not updated.",
        "Failed expectations:",
    ]
    for f in sorted(outcome.failures, key=lambda f: f.policy != "block"):
        where = f" column {f.column}" if f.column else ""
        lines.append(
            f"  - {f.reason} ({f.expectation}{where}): {f.unexpected_count} unexpected, e.g. {f.sample}"
        )
    lines.append(f"Quarantine: {quarantine}")
    if docs:
        lines.append(f"Data Docs: {docs}")
    lines.append(
        "Next step: README 'On call' > 'Quarantined partition': fix the source and clear the task, "
        "or publish with Params force_publish=true and a reason."
    )
    return "\n".join(lines)


@dataclass(frozen=True)
class ReleaseResult:
    """Where an interval's rows went; small enough for XCom and an asset event's extra."""

    decision: str
    validated_path: str | None
    quarantine_dir: str | None
    published_rows: int
    quarantined_rows: int
    forced_reason: str | None = None


def _write_json_atomic(path: Path, payload: dict[str, Any]) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=str))


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

    - publish: every row to the validated zone;
    - split: good rows to validated, bad rows (with their reason code) to quarantine;
    - block: the raw file is copied to quarantine, nothing is published, unless
      `force_reason` is given (an on-call override): then every row is published and the
      reason recorded next to the quarantine record.
    """
    qdir = partition_path(lake_root, "quarantine", table.name, start, end).parent
    record = {
        **outcome.summary(),
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
        "raw_path": str(raw_path),
        "failures": [asdict(f) for f in outcome.failures],
    }
    if outcome.decision == "block" and not force_reason:
        qdir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(raw_path, qdir / "part-0.parquet")
        _write_json_atomic(qdir / "reason.json", record)
        return ReleaseResult("block", None, str(qdir), 0, len(raw))
    if outcome.decision == "block":
        good, bad = raw, raw.iloc[0:0]
        record["forced_publish_reason"] = force_reason
    elif outcome.row_reasons is not None:
        bad_index = outcome.row_reasons.index
        good, bad = (
            raw.drop(index=bad_index),
            raw.loc[bad_index].assign(quarantine_reason=outcome.row_reasons),
        )
    else:
        good, bad = raw, raw.iloc[0:0]
    info = write_partition(
        conform(good[table.column_names], table), table, lake_root, "validated", start, end
    )
    if len(bad) or force_reason:
        qdir.mkdir(parents=True, exist_ok=True)
        if len(bad):
            pq.write_table(pa.Table.from_pandas(bad, preserve_index=False), qdir / "rows.parquet")
        _write_json_atomic(qdir / "reason.json", record)
    decision = "forced" if force_reason and outcome.decision == "block" else outcome.decision
    return ReleaseResult(
        decision,
        info.path,
        str(qdir) if (len(bad) or force_reason) else None,
        info.rows,
        len(bad),
        force_reason,
    )


class PartitionQuarantinedError(RuntimeError):
    """A raw partition failed a blocking check and was quarantined (message: block_message)."""


def expected_rows_from_history(
    lake_root: str | Path, table: SourceTable, start: datetime, end: datetime, weeks: int = 4
) -> float | None:
    """Median row count of the same weekday's raw partitions over the previous `weeks` weeks."""
    counts = []
    for k in range(1, weeks + 1):
        path = partition_path(
            lake_root, "raw", table.name, start - timedelta(weeks=k), end - timedelta(weeks=k)
        )
        if path.is_file():
            rows = pq.read_metadata(path).num_rows
            if rows:
                counts.append(rows)
    return statistics.median(counts) if counts else None


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
) -> dict[str, Any]:
    """Validate one raw partition, then publish / split / quarantine it (see `release`).

    Raises PartitionQuarantinedError after quarantining a blocked partition."""
    log = log or logging.getLogger(__name__)
    airports = set(pq.read_table(airports_path, columns=["faa"]).column("faa").to_pylist())
    carriers = set(pq.read_table(airlines_path, columns=["carrier"]).column("carrier").to_pylist())
    schema, raw = read_raw(raw_path)
    checks = suite_for(
        table, start, end, airports, carriers, expected_rows_from_history(lake_root, table, start, end)
    )
    key = interval_key(start, end)
    session = session or GxSession()
    outcome = validate_frame(session, table, schema, raw, checks, run_name=key)
    if outcome.docs_page:
        log.info("%s: Data Docs page of this validation: %s", table.name, outcome.docs_page)
    for failure in outcome.failures:
        log.warning(
            "%s %s: %s (%s%s) %d unexpected, e.g. %s",
            table.name,
            failure.policy.upper(),
            failure.reason,
            failure.expectation,
            f" column {failure.column}" if failure.column else "",
            failure.unexpected_count,
            failure.sample,
        )
    result = release(outcome, table, raw_path, raw, lake_root, start, end, force_reason)
    summary = {
        **outcome.summary(),
        **result.__dict__,
        "warnings": sorted({f.reason for f in outcome.warnings}),
        "interval_start": start.isoformat(),
        "interval_end": end.isoformat(),
    }
    if result.decision == "block":
        raise PartitionQuarantinedError(
            block_message(outcome, key, str(result.quarantine_dir), outcome.docs_page)
        )
    if result.decision == "forced":
        log.warning("%s: FORCED publish despite %s; reason: %s", table.name, summary["failed"], force_reason)
    log.info(
        "%s: %s, %d rows published, %d quarantined",
        table.name,
        result.decision,
        result.published_rows,
        result.quarantined_rows,
    )
    return summary
