"""The services defend themselves: the online service's refusals (token, body size, bounds, Host),
its prediction log losing no row, the plugin's sandboxed files, and `make run`'s secrets and
log servers. Each refusal has its control: the same call done right is not refused."""

from __future__ import annotations

import importlib.util
import json
import logging
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from include.core import runtime_env
from include.core.settings import PROJECT_DIR, get_settings
from include.oncall import files
from include.oncall import health as model_health
from include.serving import app as serving_app
from include.serving import prediction_log
from include.serving.champion import ChampionHolder, LoadedModel
from tests.conftest import TEST_NOW

TOKEN = "s3rving-t0ken-for-tests"
KEYS = {"carrier": "UA", "origin": "EWR", "dest": "ORD", "scheduled_departure": TEST_NOW.isoformat()}


@pytest.fixture
def service(tmp_path, monkeypatch):
    """The service's app as uvicorn builds it, without its start-up (no Feast, no champion):
    a request that passes every check reaches the route and gets 503 (no champion loaded)."""
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLOPS_SERVING_TOKEN", TOKEN)
    monkeypatch.delenv("MLOPS_SERVING_ALLOWED_HOSTS", raising=False)
    return TestClient(serving_app.create_app(get_settings()), base_url="http://127.0.0.1:8000")


def test_reload_needs_the_token(service, monkeypatch):
    loaded = LoadedModel("7", None, [], None, "2026-11-23T12:00:00+00:00")
    monkeypatch.setattr(ChampionHolder, "refresh", lambda self: loaded)  # no MLflow here
    missing = service.post("/reload")
    assert missing.status_code == 401 and "Authorization: Bearer" in missing.json()["detail"]
    assert missing.headers["www-authenticate"] == "Bearer"
    wrong = service.post("/reload", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401 and "wrong token" in wrong.json()["detail"]
    assert service.post("/reload", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    right = service.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})  # the control
    assert right.status_code == 200 and right.json()["version"] == "7"


def test_reload_is_refused_when_the_service_has_no_token(service, monkeypatch):
    monkeypatch.setenv("MLOPS_SERVING_TOKEN", "")
    client = TestClient(serving_app.create_app(get_settings()), base_url="http://127.0.0.1")
    answer = client.post("/reload", headers={"Authorization": "Bearer "})
    assert answer.status_code == 401 and "no MLOPS_SERVING_TOKEN" in answer.json()["detail"]


def test_deployments_send_the_token(monkeypatch):
    import httpx

    from include.registry import deploy

    monkeypatch.setenv("MLOPS_SERVING_TOKEN", TOKEN)
    sent = {}

    def post(url, headers=None, timeout=None):
        sent.update(url=url, headers=headers)
        return httpx.Response(200, json={"version": "7"}, request=httpx.Request("POST", url))

    monkeypatch.setattr(httpx, "post", post)
    assert deploy.serving_reload(get_settings()) == {"version": "7"}
    assert sent["headers"] == {"Authorization": f"Bearer {TOKEN}"}


def test_an_oversized_body_is_refused_before_it_is_read(service):
    big = json.dumps({**KEYS, "tailnum": "N1", "pad": "x" * 20_000})
    answer = service.post("/predict", content=big, headers={"content-type": "application/json"})
    assert answer.status_code == 413 and "16384 bytes" in answer.json()["detail"]

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b"x" * 1024

    assert service.post("/predict", content=chunks()).status_code == 413
    assert service.post("/predict", json=KEYS).status_code == 503  # control: a normal body passes


@pytest.mark.parametrize(
    "body",
    [
        {"flight_id": 2**63},
        {"flight_id": -1},
        {**KEYS, "scheduled_departure": (TEST_NOW + timedelta(days=8)).isoformat()},
        {**KEYS, "scheduled_departure": (TEST_NOW - timedelta(days=401)).isoformat()},
        {**KEYS, "scheduled_departure": "2013-06-30T18:00:00Z"},
        {**KEYS, "scheduled_departure": "9999-12-31T00:00:00Z"},
        {**KEYS, "carrier": "UAL"},
        {**KEYS, "carrier": "U'"},
        {**KEYS, "origin": "EWR1"},
        {**KEYS, "dest": "O D"},
        {**KEYS, "tailnum": "N1; DROP"},
        {"flight_id": 5, "carrier": "UA"},  # neither form: was a 500
        {"flight_id": 5, "tailnum": "N1"},
    ],
)
def test_predict_refuses_out_of_bounds_requests_with_422(service, body):
    answer = service.post("/predict", json=body)
    assert answer.status_code == 422, answer.text


@pytest.mark.parametrize(
    "body",
    [
        {"flight_id": 2**63 - 1},
        KEYS,
        {**KEYS, "flight_id": 5, "tailnum": "N14228", "carrier": "9E", "origin": "jfk"},
        {**KEYS, "scheduled_departure": (TEST_NOW + timedelta(days=6)).isoformat()},
        {**KEYS, "scheduled_departure": (TEST_NOW - timedelta(days=30)).isoformat()},  # a holdout probe
    ],
)
def test_predict_lets_requests_within_bounds_through(service, body):
    """The control: these reach the route (404 unknown flight id / 503 no champion), not 422."""
    answer = service.post("/predict", json=body)
    assert answer.status_code in (404, 503), answer.text


def test_an_untrusted_host_is_refused(service, monkeypatch):
    assert service.get("/health", headers={"host": "evil.example.com"}).status_code == 400
    assert service.get("/health", headers={"host": "localhost:8000"}).status_code == 200  # control
    assert service.get("/health").status_code == 200  # 127.0.0.1:8000
    monkeypatch.setenv("MLOPS_SERVING_ALLOWED_HOSTS", "serving.internal")
    other = TestClient(serving_app.create_app(get_settings()), base_url="http://serving.internal")
    assert other.get("/health").status_code == 200
    assert other.get("/health", headers={"host": "127.0.0.1"}).status_code == 400


def test_health_shows_no_credentials(service, monkeypatch):
    def refresh(self):
        self.error = "could not load the champion: connection to http://bob:s3cret@mlflow:5000/ refused"

    monkeypatch.setattr(ChampionHolder, "refresh", refresh)
    service.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    error = service.get("/health").json()["error"]
    assert "s3cret" not in error and "http://mlflow:5000/" in error


def test_a_failing_batch_is_retried_row_by_row_and_loses_no_good_row(tmp_path, monkeypatch, caplog):
    eng = prediction_log.engine(f"sqlite:///{tmp_path / 'log.db'}")
    row = {
        "source": "online",
        "flight_id": 1,
        "model_name": "m",
        "model_version": "1",
        "score": 0.5,
        "threshold": 0.4,
        "predicted_late": 1,
        "features": "{}",
        "predicted_at": TEST_NOW,
    }
    good = [{**row, "flight_id": i, "request_id": f"r{i}"} for i in range(5)]
    bad = {**row, "flight_id": 99, "request_id": "bad", "score": None}  # NOT NULL: fails alone
    writer = prediction_log.BackgroundWriter(eng, flush_every=5.0)
    real_insert = writer._insert
    calls = []

    def flaky_insert(rows):
        calls.append(len(rows))
        if len(calls) == 1:  # the whole batch fails once (a locked database, say)
            raise sa.exc.OperationalError("INSERT", {}, Exception("database is locked"))
        real_insert(rows)

    monkeypatch.setattr(writer, "_insert", flaky_insert)
    with caplog.at_level(logging.ERROR, logger=prediction_log.__name__):
        writer.put([*good[:3], bad, *good[3:]])
        writer.close()
    with eng.connect() as conn:
        stored = sorted(r[0] for r in conn.execute(sa.select(prediction_log.PREDICTION_LOG.c.flight_id)))
    assert calls[0] == 6 and stored == [0, 1, 2, 3, 4]
    assert writer.written == 5 and writer.errors == 1
    lost = [r.getMessage() for r in caplog.records if "prediction log row lost" in r.getMessage()]
    assert len(lost) == 1 and '"request_id": "bad"' in lost[0]


def test_data_docs_and_reports_are_served_sandboxed(tmp_path, monkeypatch):
    from plugins import model_health_plugin as plugin

    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    settings = get_settings()
    reports, site = Path(settings.monitoring_reports_root), Path(settings.data_docs_root)
    reports.mkdir(parents=True)
    (reports / "flight_delay_v3_2026-11-22.html").write_text("<p>r</p>")
    site.mkdir(parents=True)
    (site / "index.html").write_text("<script src=https://cdn.example/x.js></script>")
    plugin.app.dependency_overrides[plugin.airflow_user] = lambda: "on-call"
    try:
        client = TestClient(plugin.app)
        for path in ("/reports/flight_delay_v3_2026-11-22.html", "/data-docs/index.html"):
            answer = client.get(path)
            assert answer.status_code == 200, path
            csp = answer.headers["content-security-policy"]
            assert csp.startswith("sandbox ") and "allow-same-origin" not in csp, path
    finally:
        plugin.app.dependency_overrides.clear()
    assert files.FILE_HEADERS["Content-Security-Policy"] == files.SANDBOX_CSP


def test_model_health_errors_show_no_credentials():
    errors: list[str] = []

    def down():
        raise ConnectionError("could not reach postgresql://mon:hunter2@db:5432/monitoring")

    assert model_health._section(errors, "monitoring tables", down, None) is None
    assert "hunter2" not in errors[0] and "postgresql://db:5432/monitoring" in errors[0]


def test_make_run_generates_the_secrets_0600_once(tmp_path):
    home = tmp_path / "airflow"
    env = runtime_env.airflow_env(home, data_dir=tmp_path / "data")
    passwords = home / runtime_env.PASSWORDS_FILE
    token_file = home / runtime_env.SERVING_TOKEN_FILE
    password = runtime_env.admin_password(home)
    assert password != "admin" and len(password) >= 16
    assert passwords.stat().st_mode & 0o777 == 0o600 and token_file.stat().st_mode & 0o777 == 0o600
    assert (
        env["MLOPS_SERVING_TOKEN"] == token_file.read_text().strip() and len(env["MLOPS_SERVING_TOKEN"]) >= 32
    )
    # Kept at the next start (the control: not regenerated each time)
    again = runtime_env.airflow_env(home, data_dir=tmp_path / "data")
    assert (
        runtime_env.admin_password(home) == password
        and again["MLOPS_SERVING_TOKEN"] == env["MLOPS_SERVING_TOKEN"]
    )
    # The old default of run.sh is replaced, and a file left readable by others is narrowed.
    passwords.write_text('{"admin": "admin"}\n')
    passwords.chmod(0o644)
    assert runtime_env.ensure_admin_password(home) is True
    assert runtime_env.admin_password(home) not in ("admin", password)
    assert passwords.stat().st_mode & 0o777 == 0o600


def test_env_sh_reads_the_token_from_its_file(tmp_path, capsys):
    home = tmp_path / "airflow"
    assert runtime_env.main([str(home)]) == 0
    out = capsys.readouterr().out
    token = (home / runtime_env.SERVING_TOKEN_FILE).read_text().strip()
    assert token not in out and f'MLOPS_SERVING_TOKEN="$(cat {home / "serving_token"})"' in out
    assert runtime_env.admin_password(home) not in out


def test_the_log_servers_are_off(tmp_path):
    env = runtime_env.airflow_env(tmp_path / "airflow", data_dir=tmp_path / "data")
    assert env[runtime_env.LOG_SERVERS_ENV] == "off"
    spec = importlib.util.spec_from_file_location(
        "local_settings", PROJECT_DIR / "scripts/airflow_local_settings.py"
    )
    assert spec is not None and spec.loader is not None
    local = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(local)  # pytest's argv: nothing to add
    skip = local.skip_log_servers
    assert skip(["airflow", "scheduler"], "off") == ["airflow", "scheduler", "--skip-serve-logs"]
    assert skip(["airflow", "triggerer"], None) == ["airflow", "triggerer", "--skip-serve-logs"]
    assert skip(["airflow", "api-server"], "off") == ["airflow", "api-server"]  # control: others untouched
    assert skip(["airflow", "scheduler"], "on") == ["airflow", "scheduler"]  # control: can be turned on


def test_no_user_logs_in_with_a_fixed_password():
    assert not hasattr(runtime_env, "ADMIN_PASSWORD")
    for path in [
        *PROJECT_DIR.glob("scripts/*.py"),
        *PROJECT_DIR.glob("benchmarks/*.py"),
        *PROJECT_DIR.glob("tests/e2e/*.py"),
    ]:
        text = path.read_text()
        assert '"admin", "admin"' not in text and "ADMIN_PASSWORD" not in text, path
    assert '"admin": "admin"' not in (PROJECT_DIR / "scripts/run.sh").read_text().replace(
        'grep -q \'"admin": "admin"\'', ""
    )
