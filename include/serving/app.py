"""The online prediction service: POST /predict, GET /health, GET /version, POST /reload, GET /metrics.

`make run` starts it on 127.0.0.1 (`python -m include.serving`, see __main__.py). A request
names a flight (`{"flight_id": 1234}`, looked up in the latest validated schedules) or gives the
entity keys and departure itself; features come from Feast's online store, the model is the
version behind MLflow's `champion` alias. The service re-reads the alias every
MLOPS_SERVING_POLL_SECONDS and on POST /reload (what deployments and rollbacks call), so it
follows `champion` wherever it moves. Every prediction is logged like the batch path's.

Here: the application and its routes. The champion: include/serving/champion.py; flights by id:
flight_index.py; the request path: online.py.

The service defends itself: POST /reload needs `Authorization: Bearer <MLOPS_SERVING_TOKEN>`
(401 otherwise); a body over MAX_BODY_BYTES gets 413; a Host header not in
MLOPS_SERVING_ALLOWED_HOSTS (127.0.0.1, localhost) gets 400; /predict refuses ids and keys
out of form and departures far from now (422); /health shows errors with URL credentials removed.
A request whose features cannot be read is refused (503), never scored without them.

GET /metrics: the service's own health in Prometheus' format (include/serving/metrics.py).
"""

from __future__ import annotations

import gc
import hmac
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from include.core.settings import Settings, get_settings
from include.core.urls import redact_url
from include.serving.champion import ChampionHolder, ChampionPoller
from include.serving.flight_index import SCHEDULE_DAYS, FlightIndex
from include.serving.metrics import CONTENT_TYPE, MetricsMiddleware, ServiceMetrics
from include.serving.online import (
    FeatureReadError,
    PredictRequest,
    ServingResources,
    departure_problem,
    open_resources,
    predict_one,
    request_row,
    unknown_flight_message,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

MAX_BODY_BYTES = 16 * 1024  # a /predict body is ~200 bytes


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` is answered 413 before any route reads it
    (by its Content-Length, or by counting a chunked body)."""

    def __init__(self, app: Any, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _refuse(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.responses import JSONResponse

        detail = f"request body over {self.max_bytes} bytes: a /predict body names one flight"
        await JSONResponse({"detail": detail}, status_code=413)(scope, receive, send)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            more = message.get("more_body", False)
        body, replayed = b"".join(chunks), False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def reload_refusal(settings: Settings, authorization: str | None) -> str | None:
    """Why a POST /reload is refused (401), or None when it carries the service's token."""
    if not settings.serving_token:
        return "this service has no MLOPS_SERVING_TOKEN, so /reload is refused (make run sets it)"
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return "POST /reload needs 'Authorization: Bearer <MLOPS_SERVING_TOKEN>'"
    if not hmac.compare_digest(given.strip().encode(), settings.serving_token.encode()):
        return "wrong token for POST /reload (MLOPS_SERVING_TOKEN of the service and the caller differ)"
    return None


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
        # Everything loaded so far (libraries, the model, Feast's registry) lives as long as the
        # service: out of the collector's sight, a full collection no longer walks it mid-request.
        gc.collect()
        gc.freeze()
        yield
        poller.stop()
        resources.close()

    return lifespan


def health_state(service: OnlineService) -> dict[str, Any]:
    """What /health reports and /metrics exports: the loaded model and the service's counters."""
    settings, holder, resources = service.settings, service.holder, service.resources
    current = holder.current
    writer = resources.writer if resources else None
    return {
        "status": "ok" if current is not None else "no_model",
        "model_name": settings.model_name,
        "model_version": current.version if current else None,
        "serving_path": current.path if current else None,  # treelite / linear / sklearn
        "error": redact_url(holder.error) if holder.error else None,
        "refused": holder.refused,  # a champion version the loader refused, and why
        "shadow_version": holder.shadow.version if holder.shadow else None,  # scored, never served
        "shadow_errors": writer.deferred_errors if writer else 0,
        "flights_known": len(service.flights),
        "predictions_logged": writer.written if writer else 0,
        "prediction_log_errors": writer.errors if writer else 0,
        # Requests served with a feature view past its ttl (as missing, like training).
        "stale_feature_fallbacks": resources.stale_fallbacks if resources else 0,
        "feature_read_failures": resources.feature_read_failures if resources else 0,
    }


def _add_routes(app: FastAPI, service: OnlineService, metrics: ServiceMetrics) -> None:
    from fastapi import Header, HTTPException, Response

    settings, holder, flights = service.settings, service.holder, service.flights

    @app.get("/health")
    def health() -> dict[str, Any]:
        return health_state(service)

    @app.get("/metrics")
    def prometheus_metrics() -> Response:
        """Requests, latency, errors, feature-read failures, the model in use (Prometheus text)."""
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/version")
    def version() -> dict[str, Any]:
        current = holder.current
        if current is None:
            raise HTTPException(503, redact_url(holder.error or "no champion loaded"))
        return {
            "model_name": settings.model_name,
            "version": current.version,
            "run_id": current.run_id,
            "loaded_at": current.loaded_at,
            "serving_path": current.path,
        }

    @app.post("/reload")
    def reload(authorization: str | None = Header(None)) -> dict[str, Any]:
        """Re-read the `champion` alias now (deployments and rollbacks call this, with the token)."""
        refused = reload_refusal(settings, authorization)
        if refused is not None:
            raise HTTPException(401, refused, headers={"WWW-Authenticate": "Bearer"})
        current = holder.refresh()
        error = redact_url(holder.error) if holder.error else None
        if current is None:
            raise HTTPException(503, error or "no champion loaded")
        return {"version": current.version, "error": error}

    @app.post("/predict")
    async def predict(request: PredictRequest) -> dict[str, Any]:
        """On the event loop itself: ~1 ms of CPU a prediction, so a worker thread would add a
        hand-off, not throughput (the prediction log is written by its own thread)."""
        too_far = departure_problem(request, settings)
        if too_far is not None:
            raise HTTPException(422, too_far)
        current = holder.current
        if current is None:
            raise HTTPException(503, redact_url(holder.error or "no champion loaded: run train_model"))
        row = request_row(request, flights)
        if row is None:
            raise HTTPException(404, unknown_flight_message(request.flight_id, SCHEDULE_DAYS))
        assert service.resources is not None  # requests are served after the lifespan opened them
        try:
            return predict_one(settings, current, service.resources, row, holder.shadow)
        except FeatureReadError as exc:
            raise HTTPException(503, str(exc)) from exc


def create_app(settings: Settings | None = None) -> Any:
    """The FastAPI application (a factory: settings are read when the service starts)."""
    from fastapi import FastAPI

    settings = settings or get_settings()
    service = OnlineService(settings, ChampionHolder(settings), FlightIndex(settings.lake_root))
    poller = ChampionPoller(service.holder, float(os.environ.get("MLOPS_SERVING_POLL_SECONDS", "30")))
    app = FastAPI(title="airflow-mlops flight delay service", lifespan=_lifespan(service, poller))
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    # Added last = runs first: a wrong Host is refused before the body is read.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(settings.serving_allowed_hosts))
    # Outermost: refusals by the other middleware are counted too.
    metrics = ServiceMetrics(lambda: health_state(service))
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    _add_routes(app, service, metrics)
    return app
