"""One place names every asset of the pipeline.

Plain names and URIs (no Airflow import): include/airflow_glue/assets.py wraps them in
`airflow.sdk.Asset` for the DAG files, so a producer and its consumers always agree. URIs are
logical (`lake://zone/table`): where the lake lives is configuration (MLOPS_LAKE_ROOT), not
identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict


@dataclass(frozen=True)
class AssetName:
    name: str
    uri: str


def raw(table: str) -> AssetName:
    """The raw partitions of one source table, one event per extracted interval."""
    return AssetName(name=f"raw_{table}", uri=f"lake://raw/{table}")


def validated(table: str) -> AssetName:
    """The validated partitions of one event table: what every later stage reads."""
    return AssetName(name=f"validated_{table}", uri=f"lake://validated/{table}")


ONLINE_FEATURES = AssetName(name="flight_features", uri="feast://flights/flight_delay_v1")
"""Feast's online store holds the features of an interval (materialized and verified)."""


RETRAIN_REQUEST = AssetName(name="retrain_request", uri="mlops://flight_delay/retrain_request")
"""A request to retrain (monitoring emits it, with its reasons in the extra); train_model runs on it."""

CHAMPION_MODEL = AssetName(name="champion_model", uri="mlflow://flight_delay/champion")
"""The `champion` alias moved (deployment or rollback); the extra names the version."""

FLIGHT_PREDICTIONS = AssetName(name="flight_predictions", uri="sql://prediction_log/batch")
"""Batch predictions of an interval's flights were written to the prediction log."""


# What the events of the model-side assets carry (their `extra`). The data assets' extras are
# declared where they are computed: include/source/extract.py (raw) and include/quality (validated).


class FlightFeaturesEvent(TypedDict):
    """flight_features: the intervals materialize_features verified online."""

    feature_service: str
    intervals: list[list[str]]
    latest_interval_end: str
    materialized_until: str
    rows_offered: int
    keys_verified: int


class FlightPredictionsEvent(TypedDict):
    """flight_predictions: the intervals score_flights wrote to the prediction log."""

    model_version: str
    intervals: list[str]
    flights: int


class ChampionModelEvent(TypedDict):
    """champion_model: the alias moved (deployment or rollback)."""

    version: str
    previous: str
    by: str
