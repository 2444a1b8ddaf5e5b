"""Which failures are worth a retry: one policy for every task (task_defaults).

A retry reads the same source, partition and parameters again. For a transient failure (the
source locked or unreachable, MLflow or a store not answering) that is the cure, so those keep
the task's retries with their backoff. For a broken data contract (the source's columns changed,
a partition quarantined by its checks, a raw file that cannot be read, a candidate grid that is
not valid) it only delays the page by the retries' delays and repeats the same message, so those
fail at once, with the reason in the task log; a person fixes the cause and clears the task.

The errors are named by their dotted path, in a module of their own that imports nothing heavy:
Airflow resolves it when the DAG file is parsed.
"""

from __future__ import annotations

from airflow.sdk import ExceptionRetryPolicy, RetryAction, RetryRule

CONTRACT_ERRORS = ["include.core.errors.ContractError"]  # and every subclass (include/core/errors.py)

RETRY_POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(
            exception=list(CONTRACT_ERRORS),
            action=RetryAction.FAIL,
            reason="a data-contract error: a retry would read the same data; fix the cause, then clear",
        )
    ]
)
