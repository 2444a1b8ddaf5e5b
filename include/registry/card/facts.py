"""The record a model card is built from: what `record.collect` reads and the renderings show.

Why typed: the record crosses three modules (read, worded, rendered) and is rebuilt at each event
of a version's life; a key renamed on one side would otherwise show as a silent "–" on the card.
Nested parts a record may lack (no gate yet, an unreadable result) are `total=False`: the card
shows what exists and says what is missing.
"""

from __future__ import annotations

from typing import Any, TypedDict


class Status(TypedDict, total=False):
    """Where the version stands: champion, challenger, retired, not deployed or registered."""

    state: str
    detail: str
    aliases: list[str]
    since: str | None
    deployed_by: str | None
    approved_by: str | None
    reason: str | None
    previous: str | None
    dag_run: str | None
    smoke_test: str | None
    replaced_by: str | None
    replaced_at: str | None


class RunFacts(TypedDict, total=False):
    """The candidate run the version was logged by."""

    run_name: str | None
    experiment_id: str
    status: str
    start_time: str | None
    end_time: str | None
    artifact_uri: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]


class ParentRunFacts(TypedDict, total=False):
    """The training run (train_model's) the candidate ran under: trigger, commit, Airflow run."""

    run_name: str | None
    start_time: str | None
    tags: dict[str, str]


class GateFacts(TypedDict, total=False):
    """The gate's decision, from its JSON report or, failing that, the version's tags."""

    evaluated: bool
    decision: str | None
    reasons: list[str]
    table: str | None
    decided_at: str | None
    champion: str | None
    champion_version: str | None
    holdout_rows: int | None


class QuarantineRecord(TypedDict, total=False):
    """The quarantine record (reason.json) beside a partition in the lake, if any."""

    exists: bool
    error: str
    decision: str | None
    quarantined_rows: int | None
    published_rows: int | None
    failed: list[str]
    forced_publish_reason: str | None


class ValidationRecord(TypedDict, total=False):
    """The latest Great Expectations result of a partition, its Data Docs page, its quarantine."""

    found: bool
    error: str
    suite: str
    validated_at: str
    success: bool
    evaluated_expectations: int | None
    successful_expectations: int | None
    failed: list[str]
    data_docs_page: str | None
    quarantine: QuarantineRecord


class PartitionFacts(TypedDict, total=False):
    """One lake partition the version learnt from, with its sha256 and validation record."""

    table: str
    interval: str
    zone: str
    sha256: str
    validation: ValidationRecord


class CardFacts(TypedDict):
    """Everything one card says about a version (`missing` names what could not be read)."""

    model_name: str
    version: str
    generated_at: str
    event: str | None
    tracking_uri: str
    registered_at: str | None
    last_updated_at: str | None
    version_tags: dict[str, str]
    aliases: list[str]
    champion_version: str | None
    challenger_version: str | None
    status: Status
    run_id: str | None
    parent_run_id: str | None
    run: RunFacts | None
    parent_run: ParentRunFacts | None
    lineage: dict[str, Any] | None
    slices: dict[str, Any] | None
    gate: GateFacts
    partitions: list[PartitionFacts]
    prediction_lead_hours: float
    missing: dict[str, str]
