"""The sections of the "Model health" snapshot: what each reader returns and the page shows.

Why typed: the snapshot crosses from the readers (one per source) to the page and to the JSON
API that scripts and the benchmark read; a key renamed on one side would otherwise show as an
empty cell. Keys a section has only sometimes (a note while nothing is recorded, what a source
that did not answer cannot say) are NotRequired, so the JSON keeps the keys it always had.
"""

from __future__ import annotations

from typing import NotRequired, Required, TypedDict


class VersionEntry(TypedDict):
    """A registered version as the page lists it, with links to MLflow and its model card."""

    version: str
    created: str
    candidate: str
    aliases: list[str]
    gate_decision: str | None
    gate_reasons: str | None
    smoke_test: str | None
    champion_since: str | None
    deployed_by: str | None
    approved_by: str | None
    reason: str | None
    previous: str | None
    run_id: str | None
    run_url: str | None
    version_url: str | None
    model_card: str | None
    model_card_updated: str | None
    lineage: str  # the plugin's page of the version's lineage record, built when opened
    shadow_since: str | None  # the shadow stage: when it began, where it stands, the check's word
    shadow_state: str | None  # scoring | promoted | retired
    shadow_decision: str | None  # wait | promote | retire (promote_shadow's last decision)
    shadow_reasons: str | None
    shadow_nights: str | None  # labelled nights the last check compared


class RegistrySection(TypedDict):
    """The champion and the latest registered versions."""

    champion: VersionEntry | None
    shadow: VersionEntry | None  # the version in `shadow`, scored beside the champion
    candidates: list[VersionEntry]
    model_url: str | None


class CheckNight(TypedDict):
    """One check's verdict on one departure day."""

    day: str
    status: str
    value: float | None
    threshold: float | None
    detail: str | None


class Freshness(TypedDict):
    """The latest online-store freshness check (whatever version it ran for)."""

    day: str
    status: str
    lag_hours: float | None
    max_hours: float | None
    detail: str | None
    checked_at: str | None


class RequestEntry(TypedDict):
    """A retraining request monitor_model recorded, and the train_model run that took it."""

    id: int
    created_at: str | None
    version: str
    day: str
    reasons: list[str]
    status: str
    consumed_by: str | None


class AlertEntry(TypedDict):
    """An alert the project raised (monitoring, a failed task, an overdue decision)."""

    sent_at: str | None
    subject: str
    channels: list[str]  # where it went out; empty: no channel configured (logged and kept only)


class MonitoringSection(TypedDict):
    """The champion's last nights of checks, the latest freshness check and retraining requests."""

    version: str | None
    days: list[str]
    checks: dict[str, list[CheckNight]]
    freshness: Freshness | None
    requests: list[RequestEntry]
    reports: NotRequired[dict[str, str]]
    alerts: NotRequired[list[AlertEntry]]
    note: NotRequired[str]
    mlflow_run_url: NotRequired[str | None]
    system: NotRequired[dict[str, list[float | None]]]
    """The system's nightly numbers (service, storage, DAG run times), one value per day of `days`."""


class QuarantineEntry(TypedDict):
    """A quarantine record in the lake, and whether it waits for action."""

    table: str
    interval: str
    decision: str | None
    quarantined_rows: int | None
    rows: int | None
    failed: list[str]
    forced_reason: str | None
    waiting: bool
    data_docs: str | None
    folder: str


class QuarantineSection(TypedDict):
    """What waits for action, the most recent records, and the Data Docs site."""

    waiting: list[QuarantineEntry]
    recent: list[QuarantineEntry]
    total: int
    data_docs_index: NotRequired[str | None]


class ServingSection(TypedDict, total=False):
    """The online service's own /health; only `reachable` (and why not) when it did not answer."""

    reachable: Required[bool]
    url: str
    error: str | None
    status: str | None
    version: str | None
    matches_champion: bool
    latency_ms: float
    predictions_logged: int | None
    prediction_log_errors: int | None


class Snapshot(TypedDict):
    """Everything the page shows (also the JSON of its API); `errors` names sources not read."""

    model_name: str
    generated_at: str
    champion: VersionEntry | None
    shadow: VersionEntry | None  # the version in `shadow`, scored beside the champion
    candidates: list[VersionEntry]
    model_url: str | None
    monitoring: MonitoringSection
    quarantine: QuarantineSection
    serving: ServingSection
    mlflow_ui: str | None
    errors: list[str]
    elapsed_ms: float
