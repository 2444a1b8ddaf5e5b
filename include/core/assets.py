"""One place names every asset of the pipeline.

Every dataset a task reads or writes is named here, the ones that trigger a DAG and those that
do not: tasks declare them as inlets and outlets, so Airflow's asset graph and the OpenLineage
events (include/airflow_glue/openlineage.py) show the same data flow under the same names.

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


def source(table: str) -> AssetName:
    """One table of the live flights source (the `flights_source` connection): what extraction reads."""
    return AssetName(name=f"source_{table}", uri=f"source://flights/{table}")


def raw(table: str) -> AssetName:
    """The raw partitions of one source table, one event per extracted interval."""
    return AssetName(name=f"raw_{table}", uri=f"lake://raw/{table}")


def validated(table: str) -> AssetName:
    """The validated partitions of one event table: what every later stage reads."""
    return AssetName(name=f"validated_{table}", uri=f"lake://validated/{table}")


FEATURE_DEFINITIONS = AssetName(name="feature_definitions", uri="feast://flights/registry")
"""Feast's registry: the entities, feature views and the FeatureService (`feast apply`)."""

FEATURE_PARTITIONS = AssetName(name="feature_partitions", uri="lake://features/flights")
"""The lake's features zone: every feature table's partitions (Feast's offline source)."""

ONLINE_STORE = AssetName(name="online_store", uri="feast://flights/online_store")
"""Feast's online store, written by materialization (flight_features says it was verified)."""

ONLINE_FEATURES = AssetName(name="flight_features", uri="feast://flights/flight_delay_v1")
"""Feast's online store holds the features of an interval (materialized and verified)."""


TRAINING_SET = AssetName(name="training_set", uri="lake://training_sets/flight_delay")
"""A training run's set (rows, split, hashes), built through Feast from the features zone."""

CANDIDATE_RUNS = AssetName(name="candidate_runs", uri="mlflow://flight_delay/runs")
"""MLflow runs of the candidates a training run fitted (params, metrics, the model)."""

MODEL_VERSIONS = AssetName(name="model_versions", uri="mlflow://flight_delay/versions")
"""The registered versions of flight_delay (their gate decision, card and lineage record)."""

MONITORING_REPORT = AssetName(name="monitoring_report", uri="lake://monitoring/flight_delay")
"""The nightly monitoring records and drift report of the serving version."""

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
