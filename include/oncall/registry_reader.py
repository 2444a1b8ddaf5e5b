"""The page's MLflow reads: the champion, the latest versions, the champion's monitoring run.

Why cached where it is: an experiment's id and a version's monitoring run never change once they
exist, and looking them up costs ~60 ms each on a server; the aliases and versions are read on
every load, since they are what on call comes to check. MLflow is imported inside the functions.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from include.core.settings import CHALLENGER, CHAMPION, SHADOW, Settings
from include.oncall.sections import RegistrySection, VersionEntry
from include.registry import tracking


@lru_cache(maxsize=8)
def _experiment_id(tracking_uri: str, name: str) -> str:
    """An experiment's id (it never changes). Raises LookupError while it does not exist, so that
    absence is not cached."""
    from mlflow import MlflowClient

    found = MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(name)
    if found is None:
        raise LookupError(f"no MLflow experiment {name!r} yet")
    return found.experiment_id


def _experiment_or_none(tracking_uri: str, name: str) -> str | None:
    try:
        return _experiment_id(tracking_uri, name)
    except LookupError:
        return None


@lru_cache(maxsize=64)
def _monitoring_run_id(tracking_uri: str, experiment: str, version: str) -> str:
    """The monitoring run of a version (created once, never changes; ~60 ms to search on a server,
    so it is looked up once). Raises LookupError until monitor_model has created it."""
    from mlflow import MlflowClient

    from include.monitoring.records import monitoring_run_filter

    found = MlflowClient(tracking_uri=tracking_uri).search_runs(
        [experiment], monitoring_run_filter(version), max_results=1
    )
    if not found:
        raise LookupError(f"no monitoring run for version {version} yet")
    return found[0].info.run_id


def _version_entry(settings: Settings, mv: Any, base: str | None, experiment: str | None) -> VersionEntry:
    tags = dict(mv.tags or {})
    version = str(mv.version)
    run_url = None
    if base and experiment and mv.run_id:
        run_url = tracking.run_url(base, experiment, mv.run_id)
    return {
        "version": version,
        "created": datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).isoformat(timespec="seconds"),
        "candidate": tags.get("candidate", ""),
        "aliases": sorted(getattr(mv, "aliases", None) or []),
        "gate_decision": tags.get("gate.decision"),
        "gate_reasons": tags.get("gate.reasons"),
        "smoke_test": tags.get("smoke_test"),
        "champion_since": tags.get(f"{CHAMPION}.since"),
        "deployed_by": tags.get(f"{CHAMPION}.deployed_by"),
        "approved_by": tags.get(f"{CHAMPION}.approved_by"),
        "reason": tags.get(f"{CHAMPION}.reason"),
        "previous": tags.get(f"{CHAMPION}.previous"),
        "run_id": mv.run_id,
        "run_url": run_url,
        "version_url": tracking.model_url(base, settings.model_name, version) if base else None,
        "model_card": f"model-card/{version}" if tags.get("model_card.updated_at") else None,
        "model_card_updated": tags.get("model_card.updated_at"),
        "lineage": f"lineage/{version}",
        "shadow_since": tags.get(f"{SHADOW}.since"),
        "shadow_state": tags.get(f"{SHADOW}.state"),
        "shadow_decision": tags.get(f"{SHADOW}.decision"),
        "shadow_reasons": tags.get(f"{SHADOW}.reasons"),
        "shadow_nights": tags.get(f"{SHADOW}.labelled_nights"),
    }


def _add_aliases(entries: list[VersionEntry], champion: str | None, challenger: str | None) -> None:
    """Search results may not carry aliases: fill them in from the alias lookups."""
    for entry in entries:
        if champion is not None and entry["version"] == champion and CHAMPION not in entry["aliases"]:
            entry["aliases"] = sorted([*entry["aliases"], CHAMPION])
        if entry["version"] == challenger and CHALLENGER not in entry["aliases"]:
            entry["aliases"] = sorted([*entry["aliases"], CHALLENGER])


def registry(settings: Settings, limit: int = 8) -> RegistrySection:
    """The champion and the latest registered versions, with their gate decisions."""
    from mlflow.exceptions import MlflowException

    client = tracking.client(settings)
    base = tracking.ui_base(settings)
    experiment = _experiment_or_none(settings.mlflow_tracking_uri, tracking.EXPERIMENT) if base else None
    try:
        versions = client.search_model_versions(
            f"name = '{settings.model_name}'", max_results=limit, order_by=["version_number DESC"]
        )  # MLflow's own filter language; the name comes from configuration
    except MlflowException:
        versions = []
    champion = tracking.alias_version(client, settings.model_name, CHAMPION)
    challenger = tracking.alias_version(client, settings.model_name, CHALLENGER)
    shadow = tracking.alias_version(client, settings.model_name, SHADOW)
    entries = [_version_entry(settings, mv, base, experiment) for mv in versions]
    _add_aliases(
        entries,
        None if champion is None else str(champion.version),
        None if challenger is None else str(challenger.version),
    )
    return {
        "champion": None if champion is None else _version_entry(settings, champion, base, experiment),
        "shadow": None if shadow is None else _version_entry(settings, shadow, base, experiment),
        "candidates": entries,
        "model_url": tracking.model_url(base, settings.model_name) if base else None,
    }


def monitoring_run_url(settings: Settings, version: str) -> str | None:
    """The MLflow run holding a version's nightly metrics (read only: never created here)."""
    base = tracking.ui_base(settings)
    uri = settings.mlflow_tracking_uri
    experiment = _experiment_or_none(uri, settings.monitoring_experiment) if base else None
    if not (base and experiment):
        return None
    try:
        run_id = _monitoring_run_id(uri, experiment, str(version))
    except LookupError:
        return None
    return tracking.run_url(base, experiment, run_id)
