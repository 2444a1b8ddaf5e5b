"""The runbook (README.md, *On call*) and the code agree: every error a task can raise has an entry,
and every entry names an error, or a message, that the code really raises."""

from __future__ import annotations

import builtins
import re

from include.core.settings import PROJECT_DIR

README = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
CODE = "\n".join(
    p.read_text(encoding="utf-8")
    for folder in ("include", "dags")
    for p in (PROJECT_DIR / folder).rglob("*.py")
)
NOT_TASK_ERRORS = {
    "SettingsFileError": "raised by make run's loader of airflow_settings.yaml, not by a task",
    "NotEnoughDataError": "train_model turns it into a skip; the runbook's 'not training: only N day(s)' row",
    "ContractError": "the base of the errors that fail without a retry; each of them has its own row",
}


def on_call_rows() -> list[str]:
    """First cell of each row of the On call table."""
    section = README.split("## On call", 1)[1].split("\n## ", 1)[0]
    return [
        line.split("|")[1].strip()
        for line in section.splitlines()
        if line.startswith("| ") and "---" not in line
    ]


def project_errors() -> set[str]:
    return set(
        re.findall(
            r"^class (\w+)\((?:\w+, )*(?:\w+Error|\w*Exception)(?:, \w+)*\):", CODE, flags=re.MULTILINE
        )
    )


def test_every_project_error_has_a_runbook_entry():
    rows = " ".join(on_call_rows())
    missing = sorted(e for e in project_errors() - set(NOT_TASK_ERRORS) if f"`{e}" not in rows)
    assert not missing, f"add an On call row to README.md for {missing}"
    assert "not training: only" in rows and "not training: {exc}" in CODE


def test_every_runbook_entry_is_raised_by_the_code():
    named = [re.match(r"`(\w+)(?::\s*(.*?))?`", row) for row in on_call_rows()]
    entries = [m for m in named if m and m.group(1).endswith(("Error", "Exception"))]
    assert len(entries) >= 15
    for m in entries:
        name, message = m.group(1), (m.group(2) or "")
        if name in project_errors():
            assert re.search(rf"raise {name}\(", CODE), f"{name} is documented but never raised"
        else:
            assert isinstance(getattr(builtins, name, None), type), f"{name}: neither ours nor a builtin"
            assert message, f"a builtin {name} entry must quote its message"
            assert re.search(rf"raise {name}\(", CODE), f"{name} is documented but never raised"
        for fragment in (f.strip(" '…") for f in message.split("…")):
            if len(fragment) >= 8:
                assert fragment in CODE, f"runbook row `{name}: {message}`: the code never says {fragment!r}"


def test_the_failure_block_says_what_which_data_what_is_safe_and_what_next():
    from include.oncall.failure_block import KEPT_SAFE, summary_block

    assert set(KEPT_SAFE) <= project_errors()
    block = summary_block(
        dag_id="ingest_flights",
        task_id="validate_flight_schedules",
        run_id="scheduled__2026-11-15",
        try_number=2,
        data="interval 2026-11-15 00:00 - 2026-11-16 00:00 UTC",
        error_type="PartitionQuarantinedError",
        error_message="partition 'flight_schedules' of interval ... is QUARANTINED\nblocking checks: ...",
    )
    assert "FAILED: ingest_flights.validate_flight_schedules" in block and "try 2" in block
    assert "2026-11-15 00:00" in block and "in quarantine" in block
    assert "On call: the row for `PartitionQuarantinedError`" in block
    other = summary_block(
        dag_id="d", task_id="t", run_id="r", try_number=1, data="x", error_type="KeyError", error_message=""
    )
    assert "atomically" in other  # errors without their own entry still say what stayed safe
