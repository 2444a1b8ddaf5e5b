"""GET /metrics: the online service's requests, latency, refusals and feature-read failures in
Prometheus' text format, and a request whose features cannot be read refused rather than scored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from include.core.settings import get_settings
from include.serving import app as serving_app
from include.serving.champion import ChampionHolder, LoadedModel
from include.serving.metrics import OTHER_ROUTE
from include.serving.online import FeatureReadError, ServingResources, predict_one
from tests.conftest import TEST_NOW

FLIGHT = {"carrier": "UA", "origin": "EWR", "dest": "ORD", "scheduled_departure": TEST_NOW.isoformat()}


@pytest.fixture
def client(tmp_path, monkeypatch):
    """The app as uvicorn builds it, without its start-up (no Feast, no champion)."""
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLOPS_SERVING_ALLOWED_HOSTS", raising=False)
    monkeypatch.setenv("MLOPS_SERVING_TOKEN", "t0ken")
    return TestClient(serving_app.create_app(get_settings()), base_url="http://127.0.0.1:8000")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value of every sample of the exposition."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_by_route_and_status_with_their_latency(client):
    assert client.post("/predict", json=FLIGHT).status_code == 503  # no champion loaded
    assert client.post("/predict", json={**FLIGHT, "carrier": "not a carrier"}).status_code == 422
    assert client.get("/health").status_code == 200
    assert client.get("/wp-admin/setup.php").status_code == 404  # a scanner's path
    answer = client.get("/metrics")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    got = samples(answer.text)
    assert got[("mlops_serving_requests_total", (("route", "/predict"), ("status", "503")))] == 1
    assert got[("mlops_serving_requests_total", (("route", "/predict"), ("status", "422")))] == 1
    assert got[("mlops_serving_requests_total", (("route", "/health"), ("status", "200")))] == 1
    # Unknown paths share one label: a scanner cannot grow the label set.
    assert got[("mlops_serving_requests_total", (("route", OTHER_ROUTE), ("status", "404")))] == 1
    assert not any("wp-admin" in str(labels) for _, labels in got)
    assert got[("mlops_serving_request_seconds_count", (("route", "/predict"),))] == 2
    assert got[("mlops_serving_request_seconds_bucket", (("le", "+Inf"), ("route", "/predict")))] == 2
    assert got[("mlops_serving_model_loaded", ())] == 0
    assert got[("mlops_serving_feature_read_failures_total", ())] == 0


def test_refusals_by_the_middleware_are_counted(client):
    big = "{" + " " * 20_000 + "}"
    refused = client.post("/predict", content=big, headers={"content-type": "application/json"})
    assert refused.status_code == 413
    wrong_host = TestClient(client.app, base_url="http://evil.example").get("/health")
    assert wrong_host.status_code == 400
    got = samples(client.get("/metrics").text)
    assert got[("mlops_serving_requests_total", (("route", "/predict"), ("status", "413")))] == 1
    assert got[("mlops_serving_requests_total", (("route", "/health"), ("status", "400")))] == 1


def test_the_model_in_use_is_a_labelled_info_metric(client, monkeypatch):
    loaded = LoadedModel("7", None, [], None, "2026-11-23T12:00:00+00:00")

    def refresh(self: ChampionHolder) -> LoadedModel:  # no MLflow here: the alias names version 7
        self.current = loaded
        return loaded

    monkeypatch.setattr(ChampionHolder, "refresh", refresh)
    assert client.post("/reload", headers={"Authorization": "Bearer t0ken"}).status_code == 200
    got = samples(client.get("/metrics").text)
    info = [labels for (name, labels) in got if name == "mlops_serving_model_info"]
    assert info == [(("model_name", "flight_delay"), ("serving_path", "sklearn"), ("version", "7"))]
    assert got[("mlops_serving_model_loaded", ())] == 1


class _Rows:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def put(self, rows: list[dict[str, Any]]) -> None:
        self.rows.extend(rows)


class _Store:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def get_online_features(self, features: Any, entity_rows: Any) -> Any:
        if self.fail:
            raise ConnectionError("redis://:secret@127.0.0.1:6379 refused the connection")
        return type("Found", (), {"to_dict": lambda self, include_event_timestamps: {}})()


class _Model:
    def predict_proba(self, frame: Any) -> Any:
        import numpy as np

        return np.array([[0.3, 0.7]])


def _resources(fail: bool) -> ServingResources:
    return ServingResources(
        store=_Store(fail),
        service=None,
        views={},
        ttls={},
        writer=_Rows(),
        engine=None,  # type: ignore[arg-type]
    )


def test_a_request_whose_features_cannot_be_read_is_refused_and_counted():
    settings = get_settings()
    current = LoadedModel("7", _Model(), ["dep_hour"], None, "2026-11-23T12:00:00+00:00")
    row = {"flight_id": 5, **FLIGHT, "tailnum": "N1"}
    ok = _resources(fail=False)  # the control: the store answers, the flight is scored and logged
    assert predict_one(settings, current, ok, row)["score"] == pytest.approx(0.7)
    assert ok.feature_read_failures == 0 and len(ok.writer.rows) == 1  # type: ignore[attr-defined]
    broken = _resources(fail=True)
    with pytest.raises(FeatureReadError) as refused:
        predict_one(settings, current, broken, row)
    assert broken.feature_read_failures == 1 and broken.writer.rows == []  # type: ignore[attr-defined]
    assert "Nothing was predicted or logged" in str(refused.value) and "secret" not in str(refused.value)


def test_two_services_in_one_process_count_apart(client, tmp_path, monkeypatch):
    """Importing Feast sets PROMETHEUS_MULTIPROC_DIR, which makes prometheus_client's own values
    shared files: the service's counts are its own all the same (the CI run that found it)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    other = TestClient(serving_app.create_app(get_settings()), base_url="http://127.0.0.1:8000")
    assert client.post("/predict", json=FLIGHT).status_code == 503
    mine, theirs = samples(client.get("/metrics").text), samples(other.get("/metrics").text)
    assert mine[("mlops_serving_requests_total", (("route", "/predict"), ("status", "503")))] == 1
    assert not any(
        name == "mlops_serving_requests_total" and ("route", "/predict") in labels for name, labels in theirs
    )


class _Constant:
    def __init__(self, p: float) -> None:
        self.p = p

    def predict_proba(self, frame: Any) -> Any:
        import numpy as np

        if self.p < 0:
            raise ValueError("this shadow cannot score")
        return np.array([[1 - self.p, self.p]])


def test_the_shadow_is_scored_after_the_answer_and_never_answers(tmp_path):
    """/predict with a shadow loaded: the answer is the champion's; the shadow's score of the same
    inputs is made by the log writer's thread and logged as `shadow_online` under the same
    request id. A shadow that fails is counted and logged; the champion's row is written."""
    from include.serving import prediction_log

    settings = get_settings()
    eng = prediction_log.engine(f"sqlite:///{tmp_path / 'log.db'}")
    writer = prediction_log.BackgroundWriter(eng, flush_every=0.05)
    resources = ServingResources(
        store=_Store(fail=False), service=None, views={}, ttls={}, writer=writer, engine=eng
    )
    champion = LoadedModel("7", _Constant(0.7), ["dep_hour"], None, "2026-11-23T12:00:00+00:00")
    shadow = LoadedModel("8", _Constant(0.2), ["dep_hour"], None, "2026-11-30T12:00:00+00:00")
    broken = LoadedModel("9", _Constant(-1.0), ["dep_hour"], None, "2026-11-30T12:00:00+00:00")
    row = {"flight_id": 5, **FLIGHT, "tailnum": "N1"}

    answer = predict_one(settings, champion, resources, row, shadow)
    assert (answer["model_version"], answer["score"]) == ("7", pytest.approx(0.7))
    failed = predict_one(settings, champion, resources, row, broken)
    assert failed["score"] == pytest.approx(0.7)  # a failing shadow changes nothing for the caller
    writer.close()
    log = prediction_log.read(eng).sort_values(["request_id", "source"])
    mine = log[log["request_id"] == answer["request_id"]]
    assert dict(zip(mine["source"], mine["model_version"], strict=True)) == {
        "online": "7",
        "shadow_online": "8",
    }
    assert mine.set_index("source")["score"].to_dict() == pytest.approx({"online": 0.7, "shadow_online": 0.2})
    assert log[log["request_id"] == failed["request_id"]]["source"].tolist() == ["online"]
    assert writer.deferred_errors == 1 and writer.errors == 0
