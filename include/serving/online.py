"""The request path of the online service: a request -> a flight row -> features -> a score.

`open_resources` opens what every request uses (the Feast store, its feature service, the
prediction log's background writer) once, when the service starts; `request_row` and
`predict_one` are what POST /predict runs (include/serving/app.py holds the routes).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, cast

import pandas as pd
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.core.clock import utc_now
from include.core.settings import Settings
from include.core.urls import redact_url
from include.features.store import (
    FEATURE_SERVICE,
    OnlineStoreConnection,
    online_connection_from_uri,
    open_store,
    service_ttls,
    service_views,
)
from include.registry.fast_model import score_one
from include.serving import prediction_log
from include.serving.champion import LoadedModel
from include.serving.flight_index import FlightIndex
from include.serving.inputs import online_values, single_row_inputs

MAX_FLIGHT_ID = 2**63 - 1  # the log's BigInteger column


class PredictRequest(BaseModel):
    """Either a flight id, or the entity keys and scheduled departure of a flight.

    Keys have the form of the data's: a carrier is 2 letters or digits (UA, 9E), an airport 3
    letters (EWR; lower case is accepted and upper-cased), a tail number letters, digits and dashes."""

    model_config = ConfigDict(extra="forbid")
    flight_id: int | None = Field(None, ge=0, le=MAX_FLIGHT_ID)
    tailnum: str | None = Field(None, pattern=r"^[A-Za-z0-9-]{1,16}$")
    carrier: str | None = Field(None, pattern=r"^[A-Za-z0-9]{2}$")
    origin: str | None = Field(None, pattern=r"^[A-Za-z]{3}$")
    dest: str | None = Field(None, pattern=r"^[A-Za-z]{3}$")
    scheduled_departure: datetime | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PredictRequest:
        keys = (self.carrier, self.origin, self.dest, self.scheduled_departure)
        some_keys = any(k is not None for k in (*keys, self.tailnum))
        if (self.flight_id is None or some_keys) and not all(k is not None for k in keys):
            # {"flight_id": 5, "carrier": "UA"} is neither form: refused, not guessed at
            raise ValueError(
                "give a flight_id alone, or carrier, origin, dest and scheduled_departure "
                "(flight_id and tailnum optional)"
            )
        return self


def departure_problem(request: PredictRequest, settings: Settings) -> str | None:
    """Why the request's scheduled_departure is refused (too far from the clock's now), or None."""
    if request.scheduled_departure is None:
        return None
    departure = request.scheduled_departure
    departure = departure.replace(tzinfo=UTC) if departure.tzinfo is None else departure
    now = utc_now(settings.clock_now)
    ahead, back = settings.serving_departure_days_ahead, settings.serving_departure_days_back
    if now - timedelta(days=back) <= departure <= now + timedelta(days=ahead):
        return None
    return (
        f"scheduled_departure {departure.isoformat()} is not within {back:g} days before and {ahead:g} "
        f"days after now ({now.isoformat(timespec='seconds')}): the service predicts flights about to "
        "depart (MLOPS_SERVING_DEPARTURE_DAYS_BACK / _AHEAD)"
    )


def service_online_connection(settings: Settings) -> OnlineStoreConnection | None:
    """The online store's connection from AIRFLOW_CONN_FEAST_ONLINE_STORE (same as the tasks')."""
    if settings.feast_online_store == "sqlite":
        return None
    uri = os.environ.get("AIRFLOW_CONN_FEAST_ONLINE_STORE", "")
    if not uri:
        raise RuntimeError("MLOPS_FEAST_ONLINE_STORE is not sqlite: set AIRFLOW_CONN_FEAST_ONLINE_STORE")
    return online_connection_from_uri(uri)


class FeatureReadError(RuntimeError):
    """The online store could not be read for a request: it is refused (503), never scored
    without its features."""


@dataclass
class ServingResources:
    """What every request uses, opened once when the service starts."""

    store: Any
    service: Any  # the feature service, looked up once, not per request
    views: dict[str, list[str]]
    ttls: dict[str, timedelta]  # per view: older online rows are served as missing
    writer: prediction_log.BackgroundWriter
    engine: sa.Engine
    stale_fallbacks: int = 0  # requests in which a view was past its ttl (served as missing)
    feature_read_failures: int = 0  # requests refused: the online store could not be read

    def close(self) -> None:
        self.writer.close()
        self.engine.dispose()


def open_resources(settings: Settings) -> ServingResources:
    store = open_store(settings, service_online_connection(settings))
    views = service_views(store, FEATURE_SERVICE)
    ttls = service_ttls(store, FEATURE_SERVICE)
    service = store.get_feature_service(FEATURE_SERVICE)
    eng = prediction_log.engine(settings.prediction_log_url)
    return ServingResources(store, service, views, ttls, prediction_log.BackgroundWriter(eng), eng)


def request_row(request: PredictRequest, flights: FlightIndex) -> dict[str, Any] | None:
    """The flight a request names: looked up by id (None when unknown), or given by its keys."""
    if request.flight_id is not None and request.carrier is None:
        found = flights.get(request.flight_id)
        return None if found is None else dict(found)
    departure = pd.Timestamp(request.scheduled_departure)
    departure = departure.tz_localize("UTC") if departure.tzinfo is None else departure.tz_convert("UTC")
    # The keys form: PredictRequest's validator requires them when there is no flight_id.
    return {
        "flight_id": request.flight_id if request.flight_id is not None else -1,
        "tailnum": request.tailnum,
        "carrier": cast(str, request.carrier).upper(),
        "origin": cast(str, request.origin).upper(),
        "dest": cast(str, request.dest).upper(),
        "scheduled_departure": departure,
    }


def unknown_flight_message(flight_id: int | None, days: int) -> str:
    return (
        f"flight {flight_id} is not in the latest {days} days of validated "
        "schedules; give carrier, origin, dest and scheduled_departure instead"
    )


def online_record(
    settings: Settings,
    current: LoadedModel,
    row: dict[str, Any],
    features: dict[str, Any],
    score: float,
    request_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The prediction log's row of one online prediction."""
    return {
        "source": "online",
        "batch_key": None,
        "request_id": request_id,
        "flight_id": int(row["flight_id"]),
        "scheduled_departure": pd.Timestamp(row["scheduled_departure"]).to_pydatetime(),
        "model_name": settings.model_name,
        "model_version": current.version,
        "score": score,
        "threshold": settings.decision_threshold,
        "predicted_late": int(score >= settings.decision_threshold),
        "features": json.dumps(features, default=str, sort_keys=True),
        "features_as_of": now,
        "predicted_at": now,
    }


def shadow_record(
    settings: Settings,
    shadow: LoadedModel,
    row: dict[str, Any],
    inputs: dict[str, Any],
    request_id: str,
    now: datetime,
) -> dict[str, Any]:
    """The shadow's row for an online request (source `shadow_online`, never served); made by the
    log writer's thread after the answer went out."""
    features = {c: inputs[c] for c in shadow.columns}
    score = score_one(shadow.model, features, shadow.columns)
    return {
        **online_record(settings, shadow, row, features, score, request_id, now),
        "source": "shadow_online",
    }


def predict_one(
    settings: Settings,
    current: LoadedModel,
    resources: ServingResources,
    row: dict[str, Any],
    shadow: LoadedModel | None = None,
) -> dict[str, Any]:
    """Score one flight with the loaded champion, queue its log row, and say what was predicted.
    With a `shadow`, its score of the same inputs is deferred to the log writer's thread: it adds
    one queue put to the request, and its answer is never the one returned."""
    now = datetime.now(UTC)
    # Staleness on the source's clock (the replay clock in the demo and the tests), as training.
    as_of = utc_now(settings.clock_now)
    try:
        values, stale = online_values(
            resources.store, resources.service, row, resources.views, resources.ttls, as_of
        )
    except Exception as exc:  # fail closed: no prediction from features that could not be read
        resources.feature_read_failures += 1
        raise FeatureReadError(
            f"the online feature store could not be read for flight {row.get('flight_id')}: "
            f"{type(exc).__name__}: {redact_url(str(exc))[:300]}. Nothing was predicted or logged. "
            "Check the online store (MLOPS_FEAST_ONLINE_STORE) and the last materialize_features run "
            "(runbook: FeatureReadError)"
        ) from exc
    if stale:
        resources.stale_fallbacks += 1
    inputs = single_row_inputs(row, values, resources.views)
    features = {c: inputs[c] for c in current.columns}
    score = score_one(current.model, features, current.columns)
    request_id = uuid.uuid4().hex
    resources.writer.put([online_record(settings, current, row, features, score, request_id, now)])
    if shadow is not None:
        resources.writer.defer(partial(shadow_record, settings, shadow, row, inputs, request_id, now))
    return {
        "flight_id": row["flight_id"],
        "model_name": settings.model_name,
        "model_version": current.version,
        "score": score,
        "late": score >= settings.decision_threshold,
        "threshold": settings.decision_threshold,
        "request_id": request_id,
    }
