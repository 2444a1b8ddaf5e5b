"""The online prediction service: POST /predict, GET /health, GET /version, POST /reload.

`make run` starts it on 127.0.0.1 (`uvicorn include.serving.app:create_app --factory`). A request
names a flight (`{"flight_id": 1234}`, looked up in the latest validated schedules) or gives the
entity keys and departure itself; features come from Feast's online store, the model is the
version behind MLflow's `champion` alias. The service re-reads the alias every
MLOPS_SERVING_POLL_SECONDS and on POST /reload (what deployments and rollbacks call), so it
follows `champion` wherever it moves. Every prediction is logged like the batch path's.

Here: the application and its routes. The champion: include/serving/champion.py; flights by id:
flight_index.py; the request path: online.py.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.core.settings import Settings, get_settings
from include.serving.champion import ChampionHolder, ChampionPoller
from include.serving.flight_index import SCHEDULE_DAYS, FlightIndex
from include.serving.online import (
    PredictRequest,
    ServingResources,
    open_resources,
    predict_one,
    request_row,
    unknown_flight_message,
)

if TYPE_CHECKING:
    from fastapi import FastAPI


@dataclass
class OnlineService:
    """The service's state: the champion, the flights by id, and (once started) its resources."""

    settings: Settings
    holder: ChampionHolder
    flights: FlightIndex
    resources: ServingResources | None = None


def _lifespan(
    service: OnlineService, poller: ChampionPoller
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(_app: Any) -> AsyncIterator[None]:
        from threadpoolctl import threadpool_limits

        # One flight per request: OpenMP thread start-up costs more than it saves, and the
        # threads would compete with the other processes on the machine.
        threadpool_limits(limits=1)
        resources = open_resources(service.settings)
        service.resources = resources
        service.holder.refresh()
        service.flights.refresh(force=True)
        poller.start()
        yield
        poller.stop()
        resources.close()

    return lifespan


def _add_routes(app: FastAPI, service: OnlineService) -> None:
    from fastapi import HTTPException

    settings, holder, flights = service.settings, service.holder, service.flights

    @app.get("/health")
    def health() -> dict[str, Any]:
        current = holder.current
        writer = service.resources.writer if service.resources else None
        return {
            "status": "ok" if current is not None else "no_model",
            "model_name": settings.model_name,
            "model_version": current.version if current else None,
            "error": holder.error,
            "refused": holder.refused,  # a champion version the loader refused, and why
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
        row = request_row(request, flights)
        if row is None:
            raise HTTPException(404, unknown_flight_message(request.flight_id, SCHEDULE_DAYS))
        assert service.resources is not None  # requests are served after the lifespan opened them
        return predict_one(settings, current, service.resources, row)


def create_app(settings: Settings | None = None) -> Any:
    """The FastAPI application (a factory: settings are read when the service starts)."""
    from fastapi import FastAPI

    settings = settings or get_settings()
    service = OnlineService(settings, ChampionHolder(settings), FlightIndex(settings.lake_root))
    poller = ChampionPoller(service.holder, float(os.environ.get("MLOPS_SERVING_POLL_SECONDS", "30")))
    app = FastAPI(title="airflow-mlops flight delay service", lifespan=_lifespan(service, poller))
    _add_routes(app, service)
    return app
