"""The on-call page's data and HTML: what it reads from the records, and that it stays safe.

The page in a real browser against a running Airflow (auth, champion from MLflow, model card)
is tested in tests/e2e/test_scheduler_run.py."""

from __future__ import annotations

import json
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from include.core.settings import get_settings
from include.monitoring.statistics import CheckResult
from include.monitoring.tables import record, record_request
from include.oncall import files, lake_reader, monitoring_reader, serving_reader
from include.oncall import health as model_health
from include.oncall import page as model_health_page
from include.registry import tracking
from tests.ports import free_port


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLOPS_SERVING_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens
    return get_settings()


def test_credentials_never_reach_the_page(monkeypatch, settings):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://bob:s3cret@mlflow.example.com/x")
    assert tracking.ui_base(get_settings()) == "https://mlflow.example.com/x"
    monkeypatch.setenv("MLOPS_SERVING_URL", "http://svc:tok3n@127.0.0.1:1")
    assert "tok3n" not in json.dumps(serving_reader.serving(get_settings(), None))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////tmp/m.db")
    assert tracking.ui_base(get_settings()) is None


def test_sparkline_draws_values_gaps_and_threshold():
    svg = model_health_page.sparkline([0.1, 0.2, None, 0.4, 0.3], threshold=0.35)
    assert svg.startswith("<svg") and svg.count("<polyline") == 2
    assert "stroke-dasharray" in svg  # the threshold
    assert "no values" in model_health_page.sparkline([None, None])
    one = model_health_page.sparkline([0.5])
    assert '<circle cx="70.0"' in one  # a single night in the middle, not lost at the edge


def test_monitoring_reads_the_champions_nights_freshness_and_requests(settings):
    for n, (share, breached) in enumerate([(0.05, False), (0.31, True), (0.35, True)]):
        day = date(2013, 12, 8 + n)
        record(
            settings,
            "3",
            day,
            [
                CheckResult(
                    "feature_drift", breached, share, 0.2, f"{int(share * 26)} of 26 features drifted"
                ),
                CheckResult("freshness", False, 2.0 + n, 36.0, "materialized until ..."),
            ],
            "run-1",
        )
    record(settings, "2", date(2013, 12, 1), [CheckResult("feature_drift", False, 0.0, 0.2, "old")], None)
    record_request(settings, "3", date(2013, 12, 10), ["feature_drift breached 2 nights"], None, "run-1")
    report = Path(settings.monitoring_reports_root) / f"{settings.model_name}_v3_2013-12-10.html"
    report.parent.mkdir(parents=True)
    report.write_text("<html>report</html>")

    mon = monitoring_reader.monitoring(settings, "3", nights=14)
    assert mon["days"] == ["2013-12-10", "2013-12-09", "2013-12-08"]
    drift = mon["checks"]["feature_drift"]
    assert [d["status"] for d in drift] == ["ok", "BREACHED", "BREACHED"]
    assert drift[-1]["threshold"] == 0.2
    assert mon["freshness"]["lag_hours"] == 4.0 and mon["freshness"]["day"] == "2013-12-10"
    assert mon["requests"][0]["reasons"] == ["feature_drift breached 2 nights"]
    assert mon["requests"][0]["status"] == "pending"
    assert mon["reports"] == {"2013-12-10": f"reports/{report.name}"}
    assert files.report_file(settings, report.name) == str(report)

    # Only the window asked for, and never another version's rows.
    assert monitoring_reader.monitoring(settings, "3", nights=1)["days"] == ["2013-12-10"]
    assert monitoring_reader.monitoring(settings, "2", nights=14)["days"] == ["2013-12-01"]


def test_the_system_health_series_are_read_per_day_whatever_version_served(settings):
    """Service, storage and run-time numbers come back as one value per day (None: not
    recorded), the stores in MB, each DAG's run time under its name; the page draws them."""
    for n, version in enumerate(["2", "3"]):
        day = date(2013, 12, 9 + n)
        record(
            settings,
            version,
            day,
            [
                CheckResult("feature_drift", False, 0.1, 0.2, "ok"),
                CheckResult("service_health", False, 0.0, 0.01, "ok", {"requests": 500.0 + n, "p99_ms": 5.0}),
                CheckResult("storage", None, 1.0, None, "ok", {"bytes.lake": 2e6 * (n + 1)}),
                CheckResult("task_durations", None, None, 3.0, "ok", {"seconds.train_model": 60.0 + n}),
            ],
            "run-1",
        )
    mon = monitoring_reader.monitoring(settings, "3", nights=14)
    system = mon["system"]
    assert system["requests since the last night"] == [501.0]  # the champion's days only: Dec 10
    assert system["lake (MB)"] == [4.0] and system["train_model run (s)"] == [61.0]
    page = model_health_page.render(_snap(monitoring={**_snap()["monitoring"], "system": system}))
    assert "System health" in page and "train_model run (s)" in page and "lake (MB)" in page
    assert "no system numbers recorded yet" in model_health_page.render(_snap())


def test_the_alerts_raised_are_listed_newest_first_and_none_is_no_error(settings):
    import sqlalchemy as sa

    from include.monitoring.tables import CHECKS_TABLE, REQUESTS_TABLE, record_alert

    # A monitoring database from before alerts were kept: no alerts_sent table, and no error.
    eng = sa.create_engine(settings.monitoring_url)
    Path(settings.monitoring_url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    CHECKS_TABLE.create(eng)
    REQUESTS_TABLE.create(eng)
    eng.dispose()
    assert monitoring_reader.monitoring(settings, "3")["alerts"] == []
    record_alert(settings, "[airflow-mlops] failed: ingest_flights.extract_flights", "block", [])
    record_alert(settings, "[airflow-mlops] deployment decision overdue", "text", ["smtp:mlops_alerts_smtp"])
    alerts = monitoring_reader.monitoring(settings, "3")["alerts"]
    assert [a["subject"] for a in alerts] == [
        "[airflow-mlops] deployment decision overdue",
        "[airflow-mlops] failed: ingest_flights.extract_flights",
    ]
    assert alerts[0]["channels"] == ["smtp:mlops_alerts_smtp"] and alerts[1]["channels"] == []
    page = model_health_page.render(_snap(monitoring={**_snap()["monitoring"], "alerts": alerts}))
    assert "deployment decision overdue" in page and "none configured (logged and kept)" in page
    assert "No alert raised so far." in model_health_page.render(_snap())


def test_no_monitoring_yet_is_said_not_raised(settings):
    mon = monitoring_reader.monitoring(settings, None)
    assert mon["checks"] == {} and "no monitoring run yet" in mon["note"]


def _quarantine(settings, table: str, interval: str, decision: str, published: bool) -> None:
    lake = Path(settings.lake_root)
    qdir = lake / "quarantine" / table / f"interval={interval}"
    qdir.mkdir(parents=True)
    page = Path(settings.data_docs_root) / "validations" / table / "page.html"
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text("<html>docs</html>")
    record_ = {"decision": decision, "rows": 10, "quarantined_rows": 10 if decision == "block" else 2}
    record_ |= {"failed": ["schema"], "data_docs_page": f"file://{page}"}
    (qdir / "reason.json").write_text(json.dumps(record_))
    if published:
        part = lake / "validated" / table / f"interval={interval}" / "part-0.parquet"
        part.parent.mkdir(parents=True)
        part.write_bytes(b"")


def test_quarantine_lists_what_waits_for_action(settings):
    _quarantine(settings, "flight_schedules", "20261120T0000Z_20261121T0000Z", "block", published=False)
    _quarantine(settings, "weather_observations", "20261121T0000Z_20261122T0000Z", "split", published=True)
    _quarantine(
        settings, "flight_outcomes", "20261119T0000Z_20261120T0000Z", "block", published=True
    )  # forced

    q = lake_reader.quarantine(settings)
    assert q["total"] == 3
    assert [(e["table"], e["interval"][:8]) for e in q["waiting"]] == [("flight_schedules", "20261120")]
    assert q["recent"][0]["table"] == "weather_observations"  # newest interval first
    link = q["waiting"][0]["data_docs"]
    assert link == "data-docs/validations/flight_schedules/page.html"
    served = files.served_data_docs(settings, link.removeprefix("data-docs/"))
    assert served is not None and served.body == b"<html>docs</html>" and served.media_type == "text/html"


def test_rows_that_belong_to_no_interval_wait_for_action(settings):
    _quarantine(settings, "weather_observations", "20261121T0000Z_20261122T0000Z", "split", published=True)
    folder = Path(settings.lake_root) / "quarantine" / "flight_schedules" / "unplaced"
    folder.mkdir(parents=True)
    (folder / "extract.json").write_text(json.dumps({"rows": 2, "reasons": {"unparseable_timestamp": 2}}))
    q = lake_reader.quarantine(settings)
    assert q["total"] == 2
    assert [(e["table"], e["interval"], e["quarantined_rows"]) for e in q["waiting"]] == [
        ("flight_schedules", "unplaced", 2)
    ]
    assert q["waiting"][0]["failed"] == ["unparseable_timestamp"]


def _real_file(path: Path) -> Path:
    """A real file at `path`: a refusal must be about the path rule, never about a missing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("not for the page")
    return path


@pytest.mark.parametrize(
    ("name", "reaches"),  # the name asked for; the file (under the data folder) it names
    [
        ("../monitoring.db", "monitoring/monitoring.db"),
        ("..%2Fx.html", "monitoring/reports/..%2Fx.html"),  # an encoded slash, taken literally
        ("x.html/../../y.html", "monitoring/y.html"),
        (".html", "monitoring/reports/.html"),
        ("{data_dir}/secret.html", "secret.html"),  # an absolute path
    ],
    ids=["parent", "encoded-slash", "dot-dot-inside", "no-name", "absolute"],
)
def test_report_names_are_refused_even_when_they_reach_a_real_file(settings, name, reaches):
    name = name.format(data_dir=settings.data_dir)
    reports = Path(settings.monitoring_reports_root)
    (reports / "x.html").mkdir(parents=True)  # a folder named like a report: x.html/.. is a real path
    _real_file(settings.data_dir / reaches)
    assert (reports / name).is_file()  # joined naively, the name does reach that file
    assert files.report_file(settings, name) is None


@pytest.mark.parametrize(
    "relative",
    ["../secret.html", "validations/../../secret.html", "{data_dir}/secret.html", "escape.html"],
    ids=["parent", "dot-dot-inside", "absolute", "symlink-out"],
)
def test_data_docs_paths_out_of_the_site_are_refused_even_when_the_file_exists(settings, relative):
    relative = relative.format(data_dir=settings.data_dir)
    secret = _real_file(settings.data_dir / "secret.html")
    site = Path(settings.data_docs_root)
    (site / "validations").mkdir(parents=True)
    (site / "escape.html").symlink_to(secret)  # inside the site by name, outside by target
    assert (site / relative).is_file()  # joined naively, the path does reach the secret
    assert files.data_docs_file(settings, relative) is None
    assert files.data_docs_link(settings, str(site / relative)) is None
    assert files.data_docs_link(settings, f"file://{site / relative}") is None


def test_files_inside_their_folders_are_served(settings):
    """The control of the two tests above: the same functions serve what they are for."""
    report = _real_file(Path(settings.monitoring_reports_root) / f"{settings.model_name}_v3_2013-12-10.html")
    assert files.report_file(settings, report.name) == str(report)
    assert files.report_file(settings, f"{settings.model_name}_v9_2013-12-10.html") is None  # no such report
    page = _real_file(Path(settings.data_docs_root) / "validations" / "flight_schedules" / "page.html")
    assert files.data_docs_file(settings, "validations/flight_schedules/page.html") == str(page)
    assert files.data_docs_file(settings, "validations/x/../flight_schedules/page.html") == str(page)
    link = files.data_docs_link(settings, f"file://{page}")
    assert link == "data-docs/validations/flight_schedules/page.html"


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # the stdlib's handler name
        body = {"status": "ok", "model_name": "flight_delay", "model_version": "3", "predictions_logged": 12}
        body = json.dumps({**body, "prediction_log_errors": 0, "error": None}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_serving_health_says_whether_the_champion_serves(settings, monkeypatch):
    down = serving_reader.serving(settings, "3")
    assert down["reachable"] is False and "refused" in down["error"].lower()

    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("MLOPS_SERVING_URL", f"http://127.0.0.1:{server.server_address[1]}")
        up = serving_reader.serving(get_settings(), "3")
        assert up["reachable"] and up["version"] == "3" and up["matches_champion"]
        assert up["predictions_logged"] == 12 and up["prediction_log_errors"] == 0
        assert serving_reader.serving(get_settings(), "4")["matches_champion"] is False
    finally:
        server.shutdown()


def test_snapshot_without_any_model_renders_and_says_so(settings):
    snap = model_health.snapshot(settings)
    assert snap["champion"] is None and snap["candidates"] == []
    assert snap["errors"] == []
    page = model_health_page.render(snap)
    assert 'id="champion-version">none<' in page
    assert "unreachable" in page  # the service is down in this test


def _snap(**over):
    snap = {
        "model_name": "flight_delay",
        "generated_at": "2026-11-30T05:00:00+00:00",
        "elapsed_ms": 12.0,
        "champion": {
            "version": "3",
            "champion_since": "2026-11-29T03:10:00+00:00",
            "gate_decision": "deploy",
            "gate_reasons": "all checks passed",
            "deployed_by": "scheduler",
            "approved_by": "<script>alert(1)</script>",
            "model_card": "model-card/3",
            "run_url": "http://127.0.0.1:5000/#/experiments/1/runs/abc",
        },
        "candidates": [
            {
                "version": "4",
                "created": "2026-11-30",
                "candidate": "hgb",
                "gate_decision": "reject",
                "gate_reasons": "ROC AUC below champion",
                "aliases": ["challenger"],
                "model_card": "model-card/4",
            },
        ],
        "monitoring": {
            "version": "3",
            "days": ["2013-12-09", "2013-12-08"],
            "checks": {
                "feature_drift": [
                    {
                        "day": "2013-12-08",
                        "status": "ok",
                        "value": 0.1,
                        "threshold": 0.2,
                        "detail": "2 of 26",
                    },
                    {
                        "day": "2013-12-09",
                        "status": "BREACHED",
                        "value": 0.3,
                        "threshold": 0.2,
                        "detail": "8 of 26",
                    },
                ]
            },
            "reports": {"2013-12-09": "reports/flight_delay_v3_2013-12-09.html"},
            "freshness": {
                "status": "ok",
                "lag_hours": 3.0,
                "max_hours": 36.0,
                "detail": "d",
                "day": "2013-12-09",
            },
            "requests": [],
        },
        "quarantine": {"waiting": [], "recent": [], "total": 0, "data_docs_index": None},
        "serving": {"reachable": True, "status": "ok", "version": "3", "matches_champion": True, "url": "u"},
        "errors": ["MLflow monitoring run: ConnectionError: refused"],
    }
    snap.update(over)
    return snap


def test_page_shows_the_shadow_beside_the_champion_with_the_checks_word():
    shadow = {
        "version": "5",
        "shadow_since": "2026-11-30T03:00:00+00:00",
        "shadow_decision": "wait",
        "shadow_nights": "2",
        "shadow_reasons": "2 of 3 labelled nights: waiting for more <b>",
        "model_card": "model-card/5",
        "lineage": "lineage/5",
    }
    page = model_health_page.render(_snap(shadow=shadow))
    assert 'id="shadow-version">5<' in page and "beside champion v3" in page
    assert "2 of 3 labelled nights" in page and "&lt;b&gt;" in page and 'href="lineage/5"' in page
    none = model_health_page.render(_snap(shadow=None))
    assert 'id="shadow-version">none<' in none and "promotion=shadow" in none


def test_page_shows_the_champion_its_card_trends_and_escapes_everything():
    page = model_health_page.render(_snap())
    assert 'id="champion-version">3<' in page
    assert 'href="model-card/3"' in page and 'href="model-card/4"' in page
    assert 'href="reports/flight_delay_v3_2013-12-09.html"' in page
    assert "<svg" in page and "BREACHED" in page
    assert "<script>" not in page and "&lt;script&gt;" in page  # a recorded value cannot inject
    assert "Could not read" in page and "ConnectionError" in page  # a source down is said, not hidden
    assert "serves the champion" in page


def test_page_flags_a_service_that_serves_another_version():
    page = model_health_page.render(
        _snap(
            serving={"reachable": True, "status": "ok", "version": "2", "matches_champion": False, "url": "u"}
        )
    )
    assert "does NOT serve the champion" in page


def test_warm_up_loads_what_the_first_page_load_would_wait_for():
    import sys

    model_health.warm_up()
    assert {
        "mlflow.tracking.request_header.registry",
        "include.registry.model_card",
        "include.monitoring.records",
        "include.monitoring.tables",
    } <= set(sys.modules)
