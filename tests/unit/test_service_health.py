"""The system's nightly health checks on constructed cases: the service's counters since the last
scrape (and after a restart), errors and latency against their limits, an unreachable service,
storage that grows far faster than usual, a DAG that ran far longer than its week."""

from __future__ import annotations

import pytest

from include.monitoring.health import (
    ServiceSnapshot,
    duration_check,
    parse_metrics,
    quantile_ms,
    service_check,
    since,
    storage_check,
)
from include.monitoring.policy import MonitoringPolicy
from include.serving.metrics import ServiceMetrics

POLICY = MonitoringPolicy()


def _service(requests: int, errors: int = 0, seconds: float = 0.003) -> str:
    """The /metrics text of a service that answered `requests` /predict calls (`errors` with 503)."""
    m = ServiceMetrics(lambda: {"model_name": "flight_delay", "model_version": "3", "serving_path": "fast"})
    for i in range(requests):
        m.observe("/predict", 503 if i < errors else 200, seconds)
    m.observe("/metrics", 200, 0.001)
    return m.render().decode()


def test_the_exposition_is_read_back():
    snap = parse_metrics(_service(200, errors=3))
    assert (snap.requests, snap.predict_requests, snap.errors, snap.model_version) == (201, 200, 3, "3")
    assert quantile_ms(snap.buckets, 0.99) == pytest.approx(3.0)  # the 3 ms bucket's bound


def test_counters_count_since_the_last_scrape_and_restart_after_a_reset():
    before, after = parse_metrics(_service(100)), parse_metrics(_service(350, errors=10))
    night = since(before, after)
    assert (night.requests, night.errors) == (250, 10)
    restarted = parse_metrics(_service(40))
    assert since(after, restarted).requests == 41  # lower than before: the service restarted
    assert since(None, after) == after


def test_a_healthy_night_passes_and_errors_or_latency_breach():
    ok = service_check(parse_metrics(_service(500, errors=2)), None, POLICY)
    assert ok.breached is False and "0.40%" in ok.detail
    errors = service_check(parse_metrics(_service(500, errors=20)), None, POLICY)
    assert (
        errors.breached is True and "error share 3.99% > 1.00%" in errors.detail
    )  # 20 of 501 (one /metrics)
    slow = service_check(parse_metrics(_service(500, seconds=0.2)), None, POLICY)
    assert slow.breached is True and "p99 <= 250 ms > 50 ms" in slow.detail


def test_an_unreachable_service_is_a_breach_and_a_quiet_one_has_no_verdict():
    down = service_check(None, "http://127.0.0.1:1/metrics: URLError: refused", POLICY)
    assert down.breached is True and "did not answer" in down.detail
    quiet = service_check(ServiceSnapshot(requests=5), None, POLICY)
    assert quiet.breached is None


def test_storage_that_grows_far_faster_than_usual_breaches():
    mb = 1e6
    sizes = {"lake": 500 * mb, "prediction_log": 100 * mb, "monitoring_db": 1 * mb}
    usual = storage_check(sizes, [540 * mb, 570 * mb], POLICY)  # +30, then +31 MB
    assert usual.breached is False, usual.detail
    runaway = storage_check({**sizes, "prediction_log": 400 * mb}, [540 * mb, 570 * mb], POLICY)
    assert runaway.breached is True and "prediction_log 400.0 MB" in runaway.detail
    first = storage_check(sizes, [], POLICY)
    assert first.breached is None and "third night" in first.detail


def test_a_dag_that_ran_far_longer_than_its_week_breaches():
    week = {"train_model": [60.0, 70.0, 65.0, 62.0], "score_flights": [20.0, 22.0, 21.0]}
    ok = duration_check({"train_model": 75.0, "score_flights": 25.0}, week, POLICY)
    assert ok.breached is False, ok.detail
    slow = duration_check({"train_model": 400.0, "score_flights": 25.0}, week, POLICY)
    assert slow.breached is True and "train_model 400 s (usual 64 s)" in slow.detail
    # under duration_min_s, even 3 x is not worth an alert
    assert duration_check({"score_flights": 100.0}, week, POLICY).breached is False
    assert duration_check({}, week, POLICY).breached is None
    assert duration_check({"new_dag": 900.0}, week, POLICY).breached is None  # nothing to compare with
