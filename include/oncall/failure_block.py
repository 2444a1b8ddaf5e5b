"""The block every failed task of the project ends its log with: what failed, on which data, what
was kept safe, and the runbook step. Plain text from plain values (no Airflow here); the failure
callback in include/airflow_glue/alerting.py fills it from the task's context."""

from __future__ import annotations

KEPT_SAFE: dict[str, str] = {
    "SourceUnavailableError": "nothing was extracted; earlier partitions of the interval are unchanged",
    "SourceSchemaError": "nothing was extracted; earlier partitions of the interval are unchanged",
    "IntervalNotClosedError": "nothing was extracted: the interval has not ended on the source clock",
    "PartitionUnreadableError": "the raw partition was not validated; no validated data was published",
    "PartitionQuarantinedError": "the partition is in quarantine with its reasons; the validated asset "
    "was not updated, so features, training and scoring never saw it",
    "MissingValidatedPartitionError": "no features were written or materialized for the interval",
    "OnlineStoreMismatchError": "the flight_features asset was not emitted: scoring did not run on it",
    "TrainingSetError": "no model was trained; the champion is unchanged",
    "CandidateSpecError": "no model was trained; the champion is unchanged",
    "NoCandidateError": "no model was registered; the champion is unchanged",
    "DeploymentError": "the champion is unchanged or was restored (the message above says which)",
    "RegistryUnavailableError": "nothing was read as 'no champion' and nothing was changed; the task retries",
    "UntrustedModelError": "nothing of the version was deserialized; the champion and the served model "
    "are unchanged",
    "RollbackRefusedError": "the champion is unchanged; the refused version was not loaded",
}
DEFAULT_KEPT_SAFE = (
    "every task writes atomically: no partial partition, table or alias move was published; "
    "downstream tasks did not run on this run's output"
)


def summary_block(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    try_number: int,
    data: str,
    error_type: str,
    error_message: str,
) -> str:
    """The failure block: read from the top, it answers what / which data / what is safe / what next."""
    first_line = (error_message.strip().splitlines() or [""])[0][:300]
    rule = "=" * 78
    return "\n".join(
        [
            rule,
            f"FAILED: {dag_id}.{task_id} (run {run_id}, try {try_number})",
            f"What:      {error_type}: {first_line}",
            f"Data:      {data}",
            f"Kept safe: {KEPT_SAFE.get(error_type, DEFAULT_KEPT_SAFE)}",
            f"Next:      README.md, On call: the row for `{error_type}`; fix the cause, then Clear the task "
            "(or the run) in the Airflow UI",
            rule,
        ]
    )
