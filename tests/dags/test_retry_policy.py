"""Every task's retry policy: data-contract errors fail at once, everything else keeps its retries."""

from __future__ import annotations

import pytest
from airflow.sdk import RetryAction

from include.airflow_glue.retry import RETRY_POLICY
from include.core.errors import (
    CandidateSpecError,
    PartitionQuarantinedError,
    PartitionUnreadableError,
    SourceSchemaError,
)


@pytest.mark.parametrize(
    "error", [SourceSchemaError, PartitionQuarantinedError, PartitionUnreadableError, CandidateSpecError]
)
def test_a_data_contract_error_fails_without_a_retry(error):
    decision = RETRY_POLICY.evaluate(error("columns changed"), try_number=1, max_tries=3)
    assert decision.action is RetryAction.FAIL and "data-contract" in (decision.reason or "")


@pytest.mark.parametrize("error", [ConnectionError, TimeoutError, RuntimeError, ValueError])
def test_a_transient_or_unknown_error_keeps_the_tasks_retries(error):
    assert RETRY_POLICY.evaluate(error("locked"), try_number=1, max_tries=3).action is RetryAction.DEFAULT


def test_the_stages_raise_the_same_classes_the_policy_names():
    from include.quality.steps import PartitionQuarantinedError as from_quality
    from include.source.extract import SourceSchemaError as from_source

    assert from_source is SourceSchemaError and from_quality is PartitionQuarantinedError
