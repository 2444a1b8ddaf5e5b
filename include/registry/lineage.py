"""Where a registered version came from, as one record: source intervals → raw partitions →
validation → validated partitions → features and the FeatureService → the training set → code →
training → gate → deployments (→ the prediction batches it scored, added when shown).

Why one record: reproducibility questions ("which data, which code, which parameters made the
model that serves?") were answered from five places (the training run's lineage.json, the
candidate's tags, Great Expectations results, gate tags, alias tags). The record is built from
the same facts the model card is (card.record.collect), so both say the same, and it is stored as
`lineage/record.json` on the version's run at every event of its life (model_card.publish: registered,
gate, deployed, rollback, replaced). `make lineage VERSION=n` (include/oncall/lineage.py) prints
it as a tree and writes a page with the graph; `make reproduce VERSION=n`
(include/training/reproduce.py) rebuilds the version from it. `build` is pure; `collect` reads
MLflow and the lake (through card.record). No Airflow.
"""

from __future__ import annotations

from typing import Any, TypedDict

from include.core.settings import Settings
from include.registry.card.facts import CardFacts, PartitionFacts

FORMAT = "airflow-mlops/lineage/1"
ARTIFACT = "lineage/record.json"


class FileRef(TypedDict):
    """A lake file the version stands on, with its hash and rows when the training run took them."""

    path: str
    table: str
    interval: str
    sha256: str
    rows: int | None


class CheckRef(TypedDict, total=False):
    """The Great Expectations result of a validated partition and what it did with it."""

    table: str
    interval: str
    suite: str | None
    success: bool | None
    failed: list[str]
    data_docs_page: str | None
    decision: str | None
    quarantined_rows: int | None


class BatchRef(TypedDict):
    """A batch of predictions the version scored (the prediction log's batch key and rows)."""

    batch_key: str
    flights: int
    predicted_at: str | None


class LineageRecord(TypedDict):
    format: str
    model_name: str
    version: str
    event: str | None
    generated_at: str
    source_intervals: list[str]
    raw_partitions: list[FileRef]
    validation: list[CheckRef]
    validated_partitions: list[FileRef]
    features: dict[str, Any]  # feature_service, definitions_sha256, partitions
    training_set: dict[str, Any]  # window, rows, sha256, split
    code: dict[str, str]
    training: dict[str, Any]  # candidate, params, seed, metrics, runs
    gate: dict[str, Any]  # decision, reasons, approver, decided_at
    deployments: list[dict[str, Any]]
    prediction_batches: list[BatchRef]
    missing: dict[str, str]


def _parts(path: str) -> tuple[str, str]:
    """(table, interval key) of a partition path `…/<zone>/<table>/interval=<key>/part-0.parquet`."""
    pieces = path.rstrip("/").split("/")
    folder = next((p for p in reversed(pieces) if p.startswith("interval=")), "interval=?")
    table = pieces[pieces.index(folder) - 1] if folder in pieces else "?"
    return table, folder.removeprefix("interval=")


def _files(found: dict[str, Any] | None, legacy: dict[str, str] | None = None) -> list[FileRef]:
    """`inputs.<zone>` of the training set's meta ({path: {sha256, rows}}), or the older
    `partitions` map ({path: sha256}) of runs made before inputs were recorded."""
    out: list[FileRef] = []
    if found:
        for path, info in sorted(found.items()):
            table, interval = _parts(path)
            out.append(
                FileRef(
                    path=path, table=table, interval=interval, sha256=info["sha256"], rows=info.get("rows")
                )
            )
    elif legacy:
        for path, sha in sorted(legacy.items()):
            table, interval = _parts(path)
            out.append(FileRef(path=path, table=table, interval=interval, sha256=sha, rows=None))
    return out


def _check(p: PartitionFacts) -> CheckRef:
    v = p.get("validation") or {}
    q = v.get("quarantine") or {}
    return CheckRef(
        table=p.get("table", "?"),
        interval=p.get("interval", "?"),
        suite=v.get("suite"),
        success=v.get("success"),
        failed=list(v.get("failed") or []),
        data_docs_page=v.get("data_docs_page"),
        decision=q.get("decision") if q.get("exists") else ("published" if v.get("found") else None),
        quarantined_rows=q.get("quarantined_rows"),
    )


def _deployments(facts: CardFacts) -> list[dict[str, Any]]:
    """The moves of `champion` the version's tags record (the latest move to it, and what replaced
    it): the registry keeps one move per version, so an older move of the same version is the
    earlier value of these tags, not kept."""
    tags, status = facts.get("version_tags") or {}, facts.get("status") or {}
    moves: list[dict[str, Any]] = []
    if tags.get("champion.since"):
        moves.append(
            {
                "event": tags.get("champion.event")
                or ("rollback" if tags.get("champion.rolled_back_by") else "deploy"),
                "at": tags.get("champion.since"),
                "by": tags.get("champion.deployed_by") or tags.get("champion.rolled_back_by"),
                "approved_by": tags.get("champion.approved_by"),
                "reason": tags.get("champion.reason"),
                "previous": tags.get("champion.previous"),
                "dag_run": tags.get("champion.dag_run"),
                "serving_path": tags.get("serving.path"),
            }
        )
    if tags.get("shadow.since"):  # the shadow stage: scored beside a champion, never served
        moves.append(
            {
                "event": "shadow",
                "at": tags.get("shadow.since"),
                "by": tags.get("shadow.deployed_by"),
                "approved_by": tags.get("shadow.approved_by"),
                "reason": tags.get("shadow.reason"),
                "state": tags.get("shadow.state"),
                "decision": tags.get("shadow.decision"),
                "decision_reasons": tags.get("shadow.reasons"),
                "ended_at": tags.get("shadow.ended_at"),
            }
        )
    if tags.get("approval.decision") == "reject":  # a person (or the timeout) said no
        moves.append(
            {
                "event": "rejected",
                "at": tags.get("approval.at"),
                "by": tags.get("approval.by"),
                "reason": None,
            }
        )
    if status.get("replaced_by"):
        moves.append(
            {
                "event": "replaced",
                "at": status.get("replaced_at"),
                "by": None,
                "next": status.get("replaced_by"),
            }
        )
    return moves


def build(facts: CardFacts, batches: list[BatchRef] | None = None) -> LineageRecord:
    """The lineage record of one version from its card facts (and the batches it scored)."""
    meta = facts.get("lineage") or {}
    inputs = meta.get("inputs") or {}
    run = facts.get("run") or {}
    parent = facts.get("parent_run") or {}
    run_tags, parent_tags = run.get("tags") or {}, parent.get("tags") or {}
    tags, gate = facts.get("version_tags") or {}, facts.get("gate") or {}
    validated = _files(inputs.get("validated"), meta.get("partitions"))
    intervals = sorted({f["interval"] for f in validated})
    params = dict(run.get("params") or {})
    return LineageRecord(
        format=FORMAT,
        model_name=facts["model_name"],
        version=facts["version"],
        event=facts.get("event"),
        generated_at=facts["generated_at"],
        source_intervals=intervals,
        raw_partitions=_files(inputs.get("raw")),
        validation=[_check(p) for p in facts.get("partitions") or []],
        validated_partitions=validated,
        features={
            "feature_service": meta.get("feature_service") or run_tags.get("feature_service"),
            "definitions_sha256": meta.get("feature_definitions_sha256"),
            "partitions": _files(inputs.get("features")),
        },
        training_set={
            "window_start": meta.get("window_start"),
            "window_end": meta.get("window_end"),
            "holdout_start": meta.get("holdout_start"),
            "rows": meta.get("rows"),
            "train_rows": meta.get("train_rows"),
            "holdout_rows": meta.get("holdout_rows"),
            "sha256": meta.get("training_set_sha256"),
            "prediction_lead_hours": meta.get("prediction_lead_hours"),
            "split": "time: the latest holdout days of the window",
        },
        code={
            "git_commit": parent_tags.get("git_commit") or run_tags.get("git_commit") or "unknown",
            "git_dirty": parent_tags.get("git_dirty", "unknown"),
            "lock_sha256": parent_tags.get("lock_sha256", "unknown"),
            "dag_id": parent_tags.get("airflow.dag_id", ""),
            "dag_run_id": parent_tags.get("airflow.run_id", ""),
            "dag_version_id": parent_tags.get("airflow.dag_version_id", ""),
            "bundle_version": parent_tags.get("airflow.bundle_version", ""),
        },
        training={
            "candidate": tags.get("candidate") or run_tags.get("candidate"),
            "params": params,
            "seed": params.get("seed"),
            "metrics": dict(run.get("metrics") or {}),
            "run_id": facts.get("run_id"),
            "parent_run_id": facts.get("parent_run_id"),
            "triggered_by": parent_tags.get("triggered_by"),
            "reason": parent_tags.get("reason"),
        },
        gate={
            "decision": gate.get("decision"),
            "reasons": list(gate.get("reasons") or []),
            "decided_at": gate.get("decided_at"),
            "champion_then": gate.get("champion"),
            "approver": tags.get("champion.approved_by") or tags.get("approval.by"),
        },
        deployments=_deployments(facts),
        prediction_batches=list(batches or []),
        missing=dict(facts.get("missing") or {}),
    )


def collect(
    settings: Settings, version: str, batches: list[BatchRef] | None = None
) -> tuple[LineageRecord, dict[str, Any]]:
    """The version's record as of now, and the training set's meta it was built from;
    LookupError naming the versions that exist when `version` is not one of them."""
    from include.registry.card.record import collect as card_facts
    from include.registry.card.record import quiet_client

    try:
        facts = card_facts(settings, version)
    except LookupError as exc:
        found = quiet_client(settings).search_model_versions(f"name = '{settings.model_name}'")
        known = sorted((int(v.version) for v in found), reverse=True)
        names = ", ".join(str(v) for v in known) or "none yet (run train_model)"
        raise LookupError(f"{exc}. Versions of {settings.model_name}: {names}") from exc
    facts["event"] = "shown"
    return build(facts, batches), dict(facts.get("lineage") or {})
