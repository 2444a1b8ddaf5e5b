"""The pipeline's assets as Airflow objects, and the extras their events carry.

Names and URIs come from include/core/assets.py (one place names every asset); this module
only wraps them in `airflow.sdk.Asset`, so producers and consumers hold equal objects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow.sdk import Asset

from include.core import assets as names
from include.source.dataset import SOURCE_TABLES


def asset(spec: names.AssetName) -> Asset:
    """The Airflow asset of one named asset."""
    return Asset(name=spec.name, uri=spec.uri)


SOURCE: dict[str, Asset] = {t.name: asset(names.source(t.name)) for t in SOURCE_TABLES}
"""source_<table>: the live source's tables (read by extraction; no events)."""

RAW: dict[str, Asset] = {t.name: asset(names.raw(t.name)) for t in SOURCE_TABLES}
"""raw_<table>: one event per extracted interval of every source table."""

VALIDATED: dict[str, Asset] = {
    t.name: asset(names.validated(t.name)) for t in SOURCE_TABLES if t.kind == "event"
}
"""validated_<table>: what every later stage reads, for the event tables."""

FEATURE_DEFINITIONS = asset(names.FEATURE_DEFINITIONS)
FEATURE_PARTITIONS = asset(names.FEATURE_PARTITIONS)
ONLINE_STORE = asset(names.ONLINE_STORE)
ONLINE_FEATURES = asset(names.ONLINE_FEATURES)
TRAINING_SET = asset(names.TRAINING_SET)
CANDIDATE_RUNS = asset(names.CANDIDATE_RUNS)
MODEL_VERSIONS = asset(names.MODEL_VERSIONS)
MONITORING_REPORT = asset(names.MONITORING_REPORT)
RETRAIN_REQUEST = asset(names.RETRAIN_REQUEST)
CHAMPION_MODEL = asset(names.CHAMPION_MODEL)
FLIGHT_PREDICTIONS = asset(names.FLIGHT_PREDICTIONS)


def triggering_extras(context: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The extras of every asset event that triggered this run (empty for a manual run)."""
    events = context.get("triggering_asset_events") or {}
    return [dict(event.extra or {}) for evs in events.values() for event in evs]


def emit(context: Mapping[str, Any], target: Asset, extra: Mapping[str, Any]) -> None:
    """Attach `extra` to the event this task emits for `target` (one of its outlets)."""
    context["outlet_events"][target].extra = dict(extra)
