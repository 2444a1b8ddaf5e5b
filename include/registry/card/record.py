"""Reading a version's card record from MLflow: the registry entry, its two runs, their artifacts.

Why each read is guarded: the card is rebuilt at each event of the version's life, often right
after a deployment whose own work is done; a record that is absent (no gate yet, an artifact
store down) is listed under "missing" and shown as missing, never guessed and never fatal.
No Airflow here; MLflow is imported inside the functions that need it.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from include.core.settings import CHALLENGER, CHAMPION, Settings
from include.core.urls import redact_url
from include.registry import tracking
from include.registry.card.facts import CardFacts, GateFacts, RunFacts
from include.registry.card.status import status_of
from include.registry.card.validation import partition_facts


def quiet_client(settings: Settings) -> Any:
    """The project's MlflowClient, without MLflow's download progress bars (a card downloads a few
    small JSON files; three bars per file would bury the task log)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return tracking.client(settings)


def _iso_ms(ms: int | None) -> str | None:
    """MLflow's epoch milliseconds as UTC ISO seconds (what every other time on the card uses)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _now() -> str:
    """Card times are UTC ISO seconds, like the registry's deployment tags."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _json_artifact(client: Any, run_id: str, path: str) -> tuple[Any | None, str | None]:
    """One JSON artifact of a run, or (None, why) when it is missing or unreadable: a card
    describes what exists rather than failing on what does not."""
    try:
        with tempfile.TemporaryDirectory(prefix="model-card-") as tmp:
            local = client.download_artifacts(run_id, path, tmp)
            return json.loads(Path(local).read_text(encoding="utf-8")), None
    except Exception as exc:  # missing artifact, unreadable JSON, artifact store down
        return None, f"{path} of run {run_id}: {type(exc).__name__}: {redact_url(str(exc))[:300]}"


def _alias_version(client: Any, name: str, alias: str) -> str | None:
    """Which version holds `alias` now (None when none does): the card says who serves beside this one."""
    mv = tracking.alias_version(client, name, alias)
    return None if mv is None else str(mv.version)


def _history(client: Any, name: str) -> dict[str, dict[str, str]]:
    """Tags of every version of the model: who replaced whom is recorded on the successor."""
    found = client.search_model_versions(f"name = '{name}'")
    return {str(mv.version): dict(mv.tags) for mv in found}


def _get_run(client: Any, run_id: str, label: str, missing: dict[str, str]) -> Any | None:
    """A run, or None with the reason recorded under `missing[label]`."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        missing[label] = f"run {run_id}: {redact_url(str(exc))[:300]}"
        return None


def gate_facts(tags: dict[str, str], report: dict[str, Any] | None) -> GateFacts:
    """The gate's decision from its JSON report, or from the version's tags when only they exist."""
    decision = tags.get("gate.decision")
    if decision is None and report is not None:
        decision = "deploy" if report.get("passed") else "reject"
    reasons = list((report or {}).get("reasons") or [])
    if not reasons and tags.get("gate.reasons"):
        reasons = [r for r in tags["gate.reasons"].split("; ") if r]
    report = report or {}
    return {
        "evaluated": decision is not None,
        "decision": decision,
        "reasons": reasons,
        "table": report.get("table"),
        "decided_at": report.get("decided_at"),
        "champion": report.get("champion"),
        "champion_version": report.get("champion_version"),
        "holdout_rows": report.get("holdout_rows"),
    }


def _model_version(client: Any, settings: Settings, version: str) -> Any:
    """The registry's entry of `version`; LookupError when there is none (the one fatal miss)."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version(settings.model_name, version)
    except MlflowException as exc:
        raise LookupError(
            f"no version {version} of {settings.model_name} in the MLflow registry "
            f"({redact_url(settings.mlflow_tracking_uri)}): {redact_url(str(exc))[:300]}"
        ) from exc


def _version_facts(settings: Settings, client: Any, mv: Any, version: str) -> CardFacts:
    """The record as the registry alone gives it; the runs and the lake fill in the rest."""
    from mlflow.exceptions import MlflowException

    name = settings.model_name
    missing: dict[str, str] = {}
    tags = {k: v for k, v in dict(mv.tags).items() if not k.startswith("model_card.")}
    aliases = sorted(mv.aliases or [])
    try:
        history = _history(client, name)
    except MlflowException as exc:
        history = {}
        missing["version history"] = str(exc)[:300]
    return {
        "model_name": name,
        "version": version,
        "generated_at": _now(),
        "event": None,
        "tracking_uri": redact_url(settings.mlflow_tracking_uri),
        "registered_at": _iso_ms(mv.creation_timestamp),
        "last_updated_at": _iso_ms(mv.last_updated_timestamp),
        "version_tags": tags,
        "aliases": aliases,
        "champion_version": _alias_version(client, name, CHAMPION),
        "challenger_version": _alias_version(client, name, CHALLENGER),
        "status": status_of(version, tags, aliases, history),
        "run_id": mv.run_id or tags.get("run_id"),
        "parent_run_id": tags.get("parent_run_id"),
        "run": None,
        "parent_run": None,
        "lineage": None,
        "slices": None,
        "gate": gate_facts(tags, None),
        "partitions": [],
        "prediction_lead_hours": settings.prediction_lead_hours,
        "missing": missing,
    }


def _run_facts(run: Any) -> RunFacts:
    """The candidate run as the card shows it (the model's log history left out: it is noise)."""
    return {
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        "status": run.info.status,
        "start_time": _iso_ms(run.info.start_time),
        "end_time": _iso_ms(run.info.end_time),
        "artifact_uri": redact_url(run.info.artifact_uri or ""),
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": {k: v for k, v in run.data.tags.items() if k != "mlflow.log-model.history"},
    }


def _add_candidate_run(client: Any, facts: CardFacts, run_id: str) -> None:
    """The candidate run, its lineage and slices, and the gate's report stored on it."""
    missing = facts["missing"]
    run = _get_run(client, run_id, "run", missing)
    if run is not None:
        facts["run"] = _run_facts(run)
        facts["parent_run_id"] = facts["parent_run_id"] or run.data.tags.get("mlflow.parentRunId")
    facts["lineage"], why = _json_artifact(client, run_id, "lineage.json")
    if why:
        missing["lineage.json"] = why
    facts["slices"], why = _json_artifact(client, run_id, "slices.json")
    if why:
        missing["slices.json"] = why
    gate_json, why = _json_artifact(client, run_id, "gate_decision.json")
    facts["gate"] = gate_facts(facts["version_tags"], gate_json)
    if not facts["gate"]["evaluated"]:
        missing["gate"] = "not yet evaluated (no gate.decision tag, no gate_decision.json)"
    elif why:
        missing["gate_decision.json"] = why


def _add_parent_run(client: Any, facts: CardFacts, parent_id: str) -> None:
    """The training run: its trigger and commit tags, and its lineage.json when the candidate's is gone."""
    missing = facts["missing"]
    parent = _get_run(client, parent_id, "parent run", missing)
    if parent is not None:
        facts["parent_run"] = {
            "run_name": parent.info.run_name,
            "start_time": _iso_ms(parent.info.start_time),
            "tags": {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.")},
        }
    if facts["lineage"] is None:  # the training run keeps the same lineage.json
        facts["lineage"], _ = _json_artifact(client, parent_id, "lineage.json")
        if facts["lineage"] is not None:
            missing.pop("lineage.json", None)


def _add_partitions(settings: Settings, facts: CardFacts) -> None:
    """The lineage's partitions with their validation records; the lead time the model learnt with."""
    lineage = facts["lineage"] or {}
    if lineage.get("prediction_lead_hours") is not None:
        facts["prediction_lead_hours"] = lineage["prediction_lead_hours"]
    facts["partitions"] = partition_facts(settings, dict(lineage.get("partitions") or {}))
    no_record = sum(1 for p in facts["partitions"] if not p["validation"].get("found"))
    if no_record:
        facts["missing"]["validation records"] = (
            f"{no_record} of {len(facts['partitions'])} partitions have no Great Expectations result "
            f"under {settings.validation_results_root.rstrip('/').rsplit('/', 1)[-1]}/"
        )


def collect(settings: Settings, version: str) -> CardFacts:
    """Everything the card says about `version`, from MLflow and the stored validation records.

    Raises LookupError when the version does not exist; any other missing piece (no gate yet,
    an artifact or a validation record absent) is listed under "missing" and left None."""
    version = str(version)
    client = quiet_client(settings)
    facts = _version_facts(settings, client, _model_version(client, settings, version), version)
    run_id = facts["run_id"]
    if run_id:
        _add_candidate_run(client, facts, run_id)
    else:
        facts["missing"]["run"] = "the version names no MLflow run"
    parent_id = facts["parent_run_id"]
    if parent_id:
        _add_parent_run(client, facts, parent_id)
    else:
        facts["missing"]["parent run"] = "the version names no training (parent) run"
    _add_partitions(settings, facts)
    return facts
