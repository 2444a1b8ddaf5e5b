"""The README's data-checks table and the code agree: every reason code a check, the extraction
or the release policy can give is listed there with its policy, and every code listed is given."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from include.core.settings import PROJECT_DIR
from include.quality.suites import suite_for
from include.source import conformance
from include.source.dataset import SOURCE_TABLES

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
SCHEMA_AND_POLICY = {"missing_column", "extra_column", "wrong_type", "row_share_exceeded"}


def table_codes() -> set[str]:
    """Codes in the reason-code column of README's data-checks table."""
    section = README.split("## Data checks and quarantine", 1)[1].split("\n## ", 1)[0]
    table = section.split("| check | reason code | policy |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return {code for row in rows for code in re.findall(r"`(\w+)`", row[2])}


def code_codes() -> set[str]:
    """Every reason code the checks of every table, the extraction and the policy can give."""
    start, end = datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 11, tzinfo=UTC)
    checks = [
        c
        for table in SOURCE_TABLES
        for c in suite_for(table, start, end, {"JFK"}, {"UA"}, expected_rows=100.0, tails={"N1"})
    ]
    extraction = {v for k, v in vars(conformance).items() if k.isupper() and isinstance(v, str) and "_" in v}
    extraction -= {conformance.REASON_COLUMN, conformance.REASON_SOURCE_COLUMN}
    return {c.reason for c in checks} | extraction | SCHEMA_AND_POLICY


def test_every_reason_code_is_in_the_readme_table_and_every_listed_code_exists():
    listed, given = table_codes(), code_codes()
    assert len(given) >= 25  # control: the collection finds the codes
    validation = (PROJECT_DIR / "include" / "quality" / "validation.py").read_text(encoding="utf-8")
    assert all(f'"{code}"' in validation for code in SCHEMA_AND_POLICY)
    assert not given - listed, f"add to README's data-checks table: {sorted(given - listed)}"
    assert not listed - given, f"README lists codes no code gives: {sorted(listed - given)}"
