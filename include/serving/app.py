"""The online prediction service: POST /predict, GET /health, GET /version, POST /reload.

`make run` starts it on 127.0.0.1 (`uvicorn include.serving.app:create_app --factory`). A request
names a flight (`{"flight_id": 1234}`, looked up in the latest validated schedules) or gives the
entity keys and departure itself; features come from Feast's online store, the model is the
version behind MLflow's `champion` alias. The service re-reads the alias every
MLOPS_SERVING_POLL_SECONDS and on POST /reload (what deployments and rollbacks call), so it
follows `champion` wherever it moves. Every prediction is logged like the batch path's.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from include.core.settings import Settings, get_settings

log = logging.getLogger("airflow_mlops.serving")
SCHEDULE_DAYS = 3  # flights of the latest 3 validated schedule partitions can be named by id


@dataclass
class LoadedModel:
    version: str
    model: Any
    columns: list[str]
    run_id: str | None
    loaded_at: str


class ChampionHolder:
    """The champion's model in memory; swapped atomically when the alias moves."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.current: LoadedModel | None = None
        self.error: str | None = None
        self._lock = threading.Lock()

    def refresh(self) -> LoadedModel | None:
        from include.registry import tracking

        try:
            aliased = tracking.champion(self.settings)
            if aliased is None:
                self.error = f"no version of {self.settings.model_name} has the alias 'champion' yet"
                return self.current
            if self.current is not None and self.current.version == aliased.version:
                self.error = None
                return self.current
            model = tracking.load_model(self.settings, aliased.version)
            columns = tracking.model_input_columns(self.settings, aliased.version)
            loaded = LoadedModel(
                aliased.version,
                model,
                columns,
                aliased.run_id,
                datetime.now(UTC).isoformat(timespec="seconds"),
            )
            with self._lock:
                self.current = loaded
            self.error = None
            log.info("serving %s version %s", self.settings.model_name, aliased.version)
        except Exception as exc:  # keep serving the model already loaded
            self.error = f"could not load the champion: {exc}"
            log.exception("could not load the champion")
        return self.current


class FlightIndex:
    """Scheduled flights of the latest validated schedule partitions, by flight id."""

    def __init__(self, lake_root: str, days: int = SCHEDULE_DAYS, min_interval_s: float = 30.0) -> None:
        self.lake_root = lake_root
        self.days = days
        self.min_interval_s = min_interval_s
        self._files: tuple[str, ...] = ()
        self._checked = 0.0
        self._by_id: dict[int, dict[str, Any]] = {}

    def _latest_files(self) -> tuple[str, ...]:
        from include.lake.partitions import partitions_between
        from include.source.dataset import FLIGHT_SCHEDULES

        now = datetime.now(UTC)
        files = partitions_between(
            self.lake_root,
            "validated",
            FLIGHT_SCHEDULES.name,
            datetime(1970, 1, 1, tzinfo=UTC),
            now + timedelta(days=3650),
        )
        return tuple(str(p) for p in sorted(files)[-self.days :])

    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._checked < self.min_interval_s:
            return
        self._checked = time.monotonic()
        files = self._latest_files()
        if files == self._files:
            return
        frames = [pd.read_parquet(f) for f in files]
        by_id: dict[int, dict[str, Any]] = {}
        for frame in frames:
            for row in frame[
                ["flight_id", "tailnum", "carrier", "origin", "dest", "scheduled_departure"]
            ].to_dict("records"):
                by_id[int(row["flight_id"])] = row
        self._by_id, self._files = by_id, files

    def get(self, flight_id: int) -> dict[str, Any] | None:
        self.refresh()
        return self._by_id.get(flight_id)

    def __len__(self) -> int:
        return len(self._by_id)


class PredictRequest(BaseModel):
    """Either a flight id, or the entity keys and scheduled departure of a flight."""

    model_config = ConfigDict(extra="forbid")
    flight_id: int | None = Field(None, ge=0)
    tailnum: str | None = Field(None, min_length=1, max_length=16)
    carrier: str | None = Field(None, min_length=1, max_length=8)
    origin: str | None = Field(None, min_length=3, max_length=4)
    dest: str | None = Field(None, min_length=3, max_length=4)
    scheduled_departure: datetime | None = None

    @model_validator(mode="after")
    def _one_form(self) -> PredictRequest:
        keys = (self.carrier, self.origin, self.dest, self.scheduled_departure)
        if self.flight_id is None and not all(k is not None for k in keys):
            raise ValueError(
                "give a flight_id, or carrier, origin, dest and scheduled_departure (tailnum optional)"
            )
        return self


def _online_conn(settings: Settings) -> dict[str, Any] | None:
    """The online store's connection from AIRFLOW_CONN_FEAST_ONLINE_STORE (same as the tasks')."""
    if settings.feast_online_store == "sqlite":
        return None
    from urllib.parse import unquote, urlsplit

    uri = os.environ.get("AIRFLOW_CONN_FEAST_ONLINE_STORE", "")
    if not uri:
        raise RuntimeError("MLOPS_FEAST_ONLINE_STORE is not sqlite: set AIRFLOW_CONN_FEAST_ONLINE_STORE")
    u = urlsplit(uri)
    return {
        "host": u.hostname,
        "port": u.port,
        "login": unquote(u.username or ""),
        "password": unquote(u.password or ""),
        "schema": u.path.lstrip("/") or None,
    }


def create_app(settings: Settings | None = None) -> Any:
    """The FastAPI application (a factory: settings are read when the service starts)."""
    from contextlib import asynccontextmanager

    from fastapi import FastAPI, HTTPException

    from include.features.store import FEATURE_SERVICE, open_store, service_views
    from include.serving import prediction_log
    from include.serving.inputs import online_values, single_row_inputs

    settings = settings or get_settings()
    holder = ChampionHolder(settings)
    flights = FlightIndex(settings.lake_root)
    state: dict[str, Any] = {}
    poll_seconds = float(os.environ.get("MLOPS_SERVING_POLL_SECONDS", "30"))
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(poll_seconds):
            holder.refresh()

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        from threadpoolctl import threadpool_limits

        # One flight per request: OpenMP thread start-up costs more than it saves, and the
        # threads would compete with the other processes on the machine.
        threadpool_limits(limits=1)
        store = open_store(settings, _online_conn(settings))
        state["store"] = store
        state["views"] = service_views(store, FEATURE_SERVICE)
        state["service"] = store.get_feature_service(FEATURE_SERVICE)  # looked up once, not per request
        eng = prediction_log.engine(settings.prediction_log_url)
        state["writer"] = prediction_log.BackgroundWriter(eng)
        holder.refresh()
        flights.refresh(force=True)
        poller = threading.Thread(target=poll, name="champion-poller", daemon=True)
        poller.start()
        yield
        stop.set()
        state["writer"].close()
        eng.dispose()

    app = FastAPI(title="airflow-mlops flight delay service", lifespan=lifespan)

    @app.get("/health")
    def health() -> dict[str, Any]:
        current = holder.current
        writer = state.get("writer")
        return {
            "status": "ok" if current is not None else "no_model",
            "model_name": settings.model_name,
            "model_version": current.version if current else None,
            "error": holder.error,
            "flights_known": len(flights),
            "predictions_logged": writer.written if writer else 0,
            "prediction_log_errors": writer.errors if writer else 0,
        }

    @app.get("/version")
    def version() -> dict[str, Any]:
        current = holder.current
        if current is None:
            raise HTTPException(503, holder.error or "no champion loaded")
        return {
            "model_name": settings.model_name,
            "version": current.version,
            "run_id": current.run_id,
            "loaded_at": current.loaded_at,
        }

    @app.post("/reload")
    def reload() -> dict[str, Any]:
        """Re-read the `champion` alias now (deployments and rollbacks call this)."""
        current = holder.refresh()
        if current is None:
            raise HTTPException(503, holder.error or "no champion loaded")
        return {"version": current.version, "error": holder.error}

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict[str, Any]:
        current = holder.current
        if current is None:
            raise HTTPException(503, holder.error or "no champion loaded: run train_model")
        if request.flight_id is not None and request.carrier is None:
            found = flights.get(request.flight_id)
            if found is None:
                raise HTTPException(
                    404,
                    f"flight {request.flight_id} is not in the latest {SCHEDULE_DAYS} days of validated "
                    "schedules; give carrier, origin, dest and scheduled_departure instead",
                )
            row = dict(found)
        else:
            departure = pd.Timestamp(request.scheduled_departure)
            departure = (
                departure.tz_localize("UTC") if departure.tzinfo is None else departure.tz_convert("UTC")
            )
            row = {
                "flight_id": request.flight_id if request.flight_id is not None else -1,
                "tailnum": request.tailnum,
                "carrier": request.carrier.upper(),
                "origin": request.origin.upper(),
                "dest": request.dest.upper(),
                "scheduled_departure": departure,
            }
        inputs = single_row_inputs(row, online_values(state["store"], state["service"], row), state["views"])
        features = {c: inputs[c] for c in current.columns}
        score = float(current.model.predict_proba(pd.DataFrame([features], columns=current.columns))[0, 1])
        request_id = uuid.uuid4().hex
        now = datetime.now(UTC)
        state["writer"].put(
            [
                {
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
            ]
        )
        return {
            "flight_id": row["flight_id"],
            "model_name": settings.model_name,
            "model_version": current.version,
            "score": score,
            "late": score >= settings.decision_threshold,
            "threshold": settings.decision_threshold,
            "request_id": request_id,
        }

    return app
