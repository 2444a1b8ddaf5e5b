"""The online service's own health in Prometheus' text format (`GET /metrics`).

What a scraper (Prometheus, the Grafana agent, or nightly monitoring) needs to say how the service
is doing, apart from how the model is doing: requests by route and status, the latency histogram,
feature-read failures, the model version and serving path in use, and the prediction log's
counters. One registry per service (never the process-global one, so a test's second app does
not collide with the first), and a route label limited to the service's own routes (a scanner
probing random paths cannot grow the label set).

Cost: a few dictionary updates a request; the exposition is built only when /metrics is read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

ROUTES = frozenset({"/predict", "/health", "/version", "/reload", "/metrics", "/docs", "/openapi.json"})
OTHER_ROUTE = "other"
# Around the service's goal (p99 <= 10 ms at 100 requests/s): fine below 10 ms, coarse above.
LATENCY_BUCKETS = (0.001, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.05, 0.1, 0.25, 1.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class _StateCollector:
    """Read at scrape time: the loaded model and the counters the service already keeps."""

    def __init__(self, state: Callable[[], dict[str, Any]]) -> None:
        self._state = state

    def collect(self) -> Iterator[Any]:
        s = self._state()
        info = InfoMetricFamily("mlops_serving_model", "The model version serving and how (fast or sklearn)")
        if s.get("model_version") is not None:
            info.add_metric(
                [],
                {
                    "model_name": str(s.get("model_name") or ""),
                    "version": str(s["model_version"]),
                    "serving_path": str(s.get("serving_path") or ""),
                },
            )
        yield info
        loaded = GaugeMetricFamily("mlops_serving_model_loaded", "1 when a champion is loaded, else 0")
        loaded.add_metric([], 1.0 if s.get("model_version") is not None else 0.0)
        yield loaded
        for name, key, doc in (
            ("mlops_serving_predictions_logged", "predictions_logged", "Rows written to the prediction log"),
            (
                "mlops_serving_prediction_log_errors",
                "prediction_log_errors",
                "Prediction log rows that could not be written",
            ),
            (
                "mlops_serving_feature_read_failures",
                "feature_read_failures",
                "Requests refused because the online feature store could not be read",
            ),
            (
                "mlops_serving_stale_feature_fallbacks",
                "stale_feature_fallbacks",
                "Requests in which a feature view was past its ttl (served as missing)",
            ),
            (
                "mlops_serving_shadow_errors",
                "shadow_errors",
                "Online requests the shadow could not score (in the log writer's thread; answers unaffected)",
            ),
        ):
            counter = CounterMetricFamily(name, doc)
            counter.add_metric([], float(s.get(key) or 0))
            yield counter
        shadow = InfoMetricFamily("mlops_serving_shadow", "The version in shadow, scored after each answer")
        if s.get("shadow_version") is not None:
            shadow.add_metric([], {"version": str(s["shadow_version"])})
        yield shadow
        flights = GaugeMetricFamily("mlops_serving_flights_known", "Scheduled flights /predict can look up")
        flights.add_metric([], float(s.get("flights_known") or 0))
        yield flights


class _Traffic:
    """Requests by (route, status) and the latency histogram by route, counted in plain numbers:
    prometheus_client's own metric values switch to shared files when PROMETHEUS_MULTIPROC_DIR is
    set, which importing Feast does (feast/metrics.py), so two services (or two test apps) in one
    process would add up. Only the event loop writes them (the middleware is async)."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str], int] = {}
        self.buckets: dict[str, list[int]] = {}  # per route: a count per LATENCY_BUCKETS bound
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def observe(self, route: str, status: int, seconds: float) -> None:
        key = (route, str(status))
        self.requests[key] = self.requests.get(key, 0) + 1
        counts = self.buckets.setdefault(route, [0] * len(LATENCY_BUCKETS))
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                counts[i] += 1
                break
        self.sums[route] = self.sums.get(route, 0.0) + seconds
        self.counts[route] = self.counts.get(route, 0) + 1

    def collect(self) -> Iterator[Any]:
        requests = CounterMetricFamily(
            "mlops_serving_requests", "HTTP requests by route and status", labels=["route", "status"]
        )
        for (route, status), n in sorted(self.requests.items()):
            requests.add_metric([route, status], float(n))
        yield requests
        latency = HistogramMetricFamily(
            "mlops_serving_request_seconds",
            "Time from the request's arrival to its response's start, by route",
            labels=["route"],
        )
        for route in sorted(self.counts):
            cumulative, running = [], 0
            for bound, n in zip(LATENCY_BUCKETS, self.buckets[route], strict=True):
                running += n
                cumulative.append((repr(bound), float(running)))
            cumulative.append(("+Inf", float(self.counts[route])))
            latency.add_metric([route], cumulative, sum_value=self.sums[route])
        yield latency


class ServiceMetrics:
    """The service's metrics; `state` returns what /health reports (read at each scrape)."""

    def __init__(self, state: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._traffic = _Traffic()
        self.registry.register(self._traffic)
        self.registry.register(_StateCollector(state))

    def observe(self, path: str, status: int, seconds: float) -> None:
        self._traffic.observe(path if path in ROUTES else OTHER_ROUTE, status, seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsMiddleware:
    """ASGI middleware: each HTTP request's route, status and time into `metrics` (pure ASGI, no
    per-request objects beyond a closure)."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before the response starts is a server error

        async def send_and_record(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                self.metrics.observe(scope.get("path", ""), status, time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except Exception:
            self.metrics.observe(scope.get("path", ""), status, time.perf_counter() - started)
            raise
