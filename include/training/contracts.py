"""What train_model's tasks pass each other (XCom: plain JSON types). Types only."""

from __future__ import annotations

from typing import Any, TypedDict

from include.training.gate import GateCheckRecord


class PreparedData(TypedDict):
    """The training set of a run, split by time and written for the candidates."""

    folder: str  # <lake>/training_sets/<run> (a path or a URL): train.parquet, holdout.parquet, meta.json
    window_start: str
    window_end: str
    holdout_start: str
    train_rows: int
    holdout_rows: int
    feature_service: str
    partitions: int


class PreparedRun(PreparedData):
    """The prepared data with the run's MLflow parent run (prepare_training_data)."""

    parent_run_id: str
    retrain_request_ids: list[int]  # monitor_model's requests this run answers (marked at its end)


class CandidateResult(TypedDict):
    """One trained candidate, measured on the holdout and logged as a child run (train_candidate)."""

    name: str
    spec: dict[str, Any]
    run_id: str
    model_uri: str
    metrics: dict[str, float]
    size_mb: float
    latency_ms: float


class RegisteredCandidate(CandidateResult):
    """The best candidate, registered with alias `challenger` (register_best)."""

    version: str


class GateReport(TypedDict):
    """The gate's decision with what it was decided on (evaluate_gate; gate_decision.json)."""

    model_name: str
    version: str
    candidate: str
    run_id: str
    champion: str  # what the challenger was compared with, in words
    champion_version: str | None
    holdout_rows: int
    thresholds: dict[str, Any]
    passed: bool
    checks: list[GateCheckRecord]
    reasons: list[str]
    table: str
    decided_at: str


class Rejection(TypedDict):
    """A challenger the gate rejected: not deployed, the champion unchanged (reject_candidate)."""

    version: str
    deployed: bool
    reasons: list[str]
