"""Validation of one raw partition's frame: the schema check, the suite in GX, the decision.

Schema (exact columns and arrow types) is checked on the parquet file's own schema: exact,
where GX's pandas type introspection reports nullable types loosely ('Int64' as 'int64',
timestamps as 'Timestamp'). The data checks (include/quality/suites.py) run in Great
Expectations Core (include/quality/gx_session.py). The decision (publish / split / block) is
pure: `decide` and `failures_from_result` read no file. Nothing disappears: raw rows =
published + quarantined rows (include/quality/release.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypedDict

import pandas as pd
import pyarrow as pa

from include.core.errors import PartitionUnreadableError
from include.lake.partitions import arrow_schema, read_table
from include.quality.gx_session import GxSession
from include.quality.suites import SUITE_VERSION, Check, Policy, derived_columns
from include.source.dataset import SourceTable

Decision = Literal["publish", "split", "block"]


@dataclass
class Failure:
    reason: str
    policy: Policy
    expectation: str
    column: str | None
    unexpected_count: int
    sample: list[Any]


class OutcomeSummary(TypedDict):
    """A validation's outcome in plain values (the head of the quarantine record)."""

    table: str
    decision: Decision
    success: bool
    rows: int
    published_rows: int
    quarantined_rows: int
    failed: list[str]
    suite_version: str
    data_docs_page: str | None


@dataclass
class ValidationOutcome:
    table: str
    decision: Decision
    rows: int
    failures: list[Failure] = field(default_factory=list)
    row_reasons: pd.Series | None = None  # reason code per quarantined row index
    suite_version: str = SUITE_VERSION
    docs_page: str | None = None  # this validation's Data Docs page, when a site is kept
    extraction_quarantined: int = 0  # the interval's rows quarantined at extraction (not in raw)

    @property
    def blocking(self) -> list[Failure]:
        return [f for f in self.failures if f.policy == "block"]

    @property
    def warnings(self) -> list[Failure]:
        return [f for f in self.failures if f.policy == "warn"]

    def summary(self) -> OutcomeSummary:
        """Counts over the interval's rows read from the source: the raw partition's rows and
        those quarantined at extraction (published + quarantined = rows)."""
        rows = self.rows + self.extraction_quarantined
        quarantined = self.extraction_quarantined + (0 if self.row_reasons is None else len(self.row_reasons))
        if self.decision == "block":
            quarantined = rows
        return {
            "table": self.table,
            "decision": self.decision,
            "success": self.decision != "block",
            "rows": rows,
            "published_rows": rows - quarantined,
            "quarantined_rows": quarantined,
            "failed": sorted({f.reason for f in self.failures}),
            "suite_version": self.suite_version,
            "data_docs_page": self.docs_page,
        }


def read_raw(path: str | Path) -> tuple[pa.Schema, pd.DataFrame]:
    """The partition's arrow schema and its rows (nullable pandas types, nothing cast)."""
    try:
        table = read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:  # FileNotFoundError is an OSError
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


def column_set_check(table: SourceTable) -> Check:
    """What the Data Docs page of a schema-failed partition shows."""
    return Check(
        "ExpectTableColumnsToMatchSet",
        {"column_set": table.column_names, "exact_match": True},
        "block",
        "schema",
    )


def _failure(res: Any) -> tuple[Failure, list[Any]]:
    """One failed GX expectation result as a Failure, and the indices of its unexpected rows."""
    meta = res.expectation_config.meta or {}
    details = res.result or {}
    indices = details.get("unexpected_index_list") or []
    count = details.get("unexpected_count")
    failure = Failure(
        reason=meta.get("reason", "failed"),
        policy=meta.get("policy", "block"),
        expectation=res.expectation_config.type,
        column=res.expectation_config.kwargs.get("column"),
        unexpected_count=int(count if count is not None else len(indices) or 1),
        sample=[str(v) for v in (details.get("partial_unexpected_list") or [])][:5]
        or ([str(details["observed_value"])] if "observed_value" in details else []),
    )
    return failure, indices


def failures_from_result(result: Any) -> tuple[list[Failure], dict[int, str]]:
    """The failed expectations of a GX result, and each quarantined row's (first) reason code."""
    failures: list[Failure] = []
    row_reasons: dict[int, str] = {}
    for res in result.results:
        if res.success:
            continue
        failure, indices = _failure(res)
        failures.append(failure)
        if failure.policy == "row":
            for idx in indices:
                row_reasons.setdefault(int(idx), failure.reason)
    return failures, row_reasons


def decide(
    failures: list[Failure], row_reasons: dict[int, str], rows: int, max_row_share: float
) -> tuple[Decision, list[Failure]]:
    """Publish, split or block; the failures, with the policy's own when too many rows failed."""
    if any(f.policy == "block" for f in failures):
        return "block", failures
    if row_reasons and len(row_reasons) > max_row_share * rows:
        share = Failure(
            "row_share_exceeded",
            "block",
            "policy",
            None,
            len(row_reasons),
            [f"{len(row_reasons)} of {rows} rows failed; limit {max_row_share:.0%}"],
        )
        return "block", [*failures, share]
    return ("split" if row_reasons else "publish"), failures


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
        suite_name = f"{table.name}_schema_{SUITE_VERSION}"
        _, docs_page = session.validate(table.name, suite_name, [column_set_check(table)], frame, run_name)
    else:
        suite_name = f"{table.name}_{SUITE_VERSION}"
        checked = derived_columns(table, frame)
        result, docs_page = session.validate(table.name, suite_name, checks, checked, run_name)
        failures, row_reasons = failures_from_result(result)
    decision, failures = decide(failures, row_reasons, len(frame), max_row_share)
    reasons = pd.Series(row_reasons, dtype="string").sort_index() if row_reasons else None
    return ValidationOutcome(table.name, decision, len(frame), failures, reasons, docs_page=docs_page)


def with_extraction(
    outcome: ValidationOutcome, record: dict[str, Any] | None, max_row_share: float = 0.05
) -> ValidationOutcome:
    """The outcome with the rows quarantined at extraction (their `extract.json` record) counted:
    one row failure per reason code; a publish becomes a split, and the row-share limit counts
    them with the rows the checks failed."""
    if not record or not record.get("quarantined_rows"):
        return outcome
    count = int(record["quarantined_rows"])
    columns = record.get("columns") or {}
    failures = [
        Failure(reason, "row", "extraction", next(iter(columns)) if len(columns) == 1 else None, n, [])
        for reason, n in sorted((record.get("reasons") or {}).items())
    ]
    for failure in failures:
        failure.sample = [
            str(row.get(row.get("quarantine_column") or "", ""))
            for row in record.get("sample") or []
            if row.get("quarantine_reason") == failure.reason
        ][:5]
    bad = count + (0 if outcome.row_reasons is None else len(outcome.row_reasons))
    rows = outcome.rows + count
    decision: Decision = outcome.decision
    extra: list[Failure] = []
    if decision != "block" and bad > max_row_share * rows:
        decision = "block"
        extra = [
            Failure(
                "row_share_exceeded",
                "block",
                "policy",
                None,
                bad,
                [f"{bad} of {rows} rows failed (extraction included); limit {max_row_share:.0%}"],
            )
        ]
    elif decision == "publish":
        decision = "split"
    return replace(
        outcome,
        decision=decision,
        failures=[*outcome.failures, *failures, *extra],
        extraction_quarantined=count,
    )


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
