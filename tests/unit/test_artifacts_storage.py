"""Validation results, Data Docs and drift reports in shared storage (moto's S3 server on loopback).

Workers of the server profile share no disk: what a validate task writes, the model card, the
other validate tasks and the API server's Model health page must read from the object store.
Each check has a control: a missing interval has no record, a file outside its root is refused
even where a naive join reaches a real object, and an index checked only once loses the page
another task wrote meanwhile.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from include.core.settings import get_settings
from include.lake import storage
from include.lake.partitions import write_text_atomic
from include.quality import gx_session
from include.quality.gx_session import GxSession
from include.quality.suites import Check

KEY = "20261115T0000Z_20261116T0000Z"
CHECKS = [Check("ExpectColumnValuesToNotBeNull", {"column": "x"}, "row", "missing_value")]


@pytest.fixture
def s3_settings(s3_bucket, tmp_path, monkeypatch):
    """Settings with the artifacts in the bucket (the lake and the data folder stay local), run
    from an empty folder so that a URL taken for a path would show up there as `s3:/...`."""
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MLOPS_ARTIFACTS_ROOT", f"s3://{s3_bucket}/artifacts")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    yield get_settings(), s3_bucket
    assert not (tmp_path / "s3:").exists(), "an s3:// location was written as a local folder"
    local = [tmp_path / "data" / "data_docs", tmp_path / "data" / "gx_validation_results"]
    assert not any(p.exists() for p in [*local, tmp_path / "data" / "monitoring" / "reports"])


def _validate(settings, table: str, frame: pd.DataFrame, run_name: str = KEY) -> str:
    """One validate task: its own GX session on the settings' stores; the page's location."""
    session = GxSession(settings.data_docs_root, settings.validation_results_root)
    _, page = session.validate(table, f"{table}_v1", CHECKS, frame, run_name)
    assert page is not None
    return page


def _site_relative(settings, page: str) -> str:
    return page.removeprefix(settings.data_docs_root.rstrip("/") + "/")


def _index(settings) -> str:
    return storage.read_bytes(storage.join(settings.data_docs_root, "index.html")).decode()


def test_settings_put_artifacts_under_one_root_defaulting_to_the_data_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLOPS_ARTIFACTS_ROOT", raising=False)
    local = get_settings()
    assert local.artifacts_root == str(tmp_path)  # the layout these files always had
    assert local.data_docs_root == str(tmp_path / "data_docs")
    assert local.validation_results_root == str(tmp_path / "gx_validation_results")
    assert local.monitoring_reports_root == str(tmp_path / "monitoring" / "reports")
    monkeypatch.setenv("MLOPS_ARTIFACTS_ROOT", "s3://bucket/mlops/")
    remote = get_settings()
    assert remote.data_docs_root == "s3://bucket/mlops/data_docs"
    assert remote.monitoring_reports_root == "s3://bucket/mlops/monitoring/reports"
    assert remote.lake_root == local.lake_root  # each root is its own setting
    # control: another scheme is refused, naming the variable, not written to a folder "gs:"
    monkeypatch.setenv("MLOPS_ARTIFACTS_ROOT", "gs://bucket/mlops")
    with pytest.raises(ValueError, match=r"MLOPS_ARTIFACTS_ROOT='gs://bucket/mlops'.*not installed"):
        get_settings()


def test_two_tables_of_one_interval_validate_into_s3_and_the_card_finds_their_results(s3_settings):
    from include.oncall import files, lake_reader
    from include.registry.card.validation import validation_record

    settings, bucket = s3_settings
    pages = {
        "flight_schedules": _validate(settings, "flight_schedules", pd.DataFrame({"x": [1, 2, 3]})),
        "flight_outcomes": _validate(settings, "flight_outcomes", pd.DataFrame({"x": [1.0, None]})),
    }
    index = _index(settings)
    for table, page in pages.items():
        assert page.startswith(f"s3://{bucket}/artifacts/data_docs/validations/{table}_v1/{KEY}/")
        assert storage.is_file(page) and f"{table}_v1" in storage.read_bytes(page).decode()
        assert _site_relative(settings, page) in index  # both tasks' pages are in the one index
        results = storage.glob(settings.validation_results_root, f"{table}_v1/{KEY}/*/lake-{table}.json")
        assert len(results) == 1 and results[0].startswith(f"s3://{bucket}/artifacts/gx_validation_results/")

        record = validation_record(settings, table, KEY)
        assert record["found"] is True and record["suite"] == f"{table}_v1"
        assert record["success"] is (table == "flight_schedules")
        assert record["data_docs_page"] == _site_relative(settings, page)
        # the on-call page links the stored page and serves its bytes
        link = files.data_docs_link(settings, page)
        assert link == f"data-docs/{_site_relative(settings, page)}"
        served = files.served_data_docs(settings, link.removeprefix("data-docs/"))
        assert served is not None and served.body == storage.read_bytes(page)
    assert validation_record(settings, "flight_outcomes", KEY)["failed"] == ["missing_value (x)"]
    assert lake_reader.quarantine(settings)["data_docs_index"] == "data-docs/index.html"
    # control: an interval nobody validated has no record
    assert validation_record(settings, "flight_schedules", "20261116T0000Z_20261117T0000Z")["found"] is False


def _another_tasks_validation(settings, page: str, run_time: str) -> str:
    """What a third validate task stores (its result, then its page) under another run time: a
    copy of an existing result and page, written straight to the bucket."""
    relative = _site_relative(settings, page).removeprefix("validations/")
    suite, key, old_time, name = relative.split("/")
    result = storage.join(
        settings.validation_results_root, suite, key, old_time, name.replace(".html", ".json")
    )
    new_result = storage.join(
        settings.validation_results_root, suite, key, run_time, name.replace(".html", ".json")
    )
    storage.write_bytes_atomic(new_result, storage.read_bytes(result))
    new_page = storage.join(settings.data_docs_root, "validations", suite, key, run_time, name)
    storage.write_bytes_atomic(new_page, storage.read_bytes(page))
    return new_page


@pytest.mark.parametrize(
    ("attempts", "kept"), [(gx_session.INDEX_ATTEMPTS, True), (1, False)], ids=["checked", "control-once"]
)
def test_the_index_keeps_a_page_another_task_wrote_while_it_was_built(
    s3_settings, monkeypatch, attempts, kept
):
    """No lock spans machines: task B's index may be written from a listing that misses task C's
    page. B checks its index after writing it and rebuilds it while a stored page is missing."""
    settings, _ = s3_settings
    monkeypatch.setattr(gx_session, "INDEX_ATTEMPTS", attempts)
    first = _validate(settings, "flight_schedules", pd.DataFrame({"x": [1]}))

    second = GxSession(settings.data_docs_root, settings.validation_results_root)
    real_build = second.context.build_data_docs
    late: list[str] = []

    def build_then_another_task_stores(*args, **kwargs):
        built = real_build(*args, **kwargs)
        if not late:  # after B listed the site and wrote its index, C's page lands
            late.append(_another_tasks_validation(settings, first, "20991231T000000.000000Z"))
        return built

    monkeypatch.setattr(second.context, "build_data_docs", build_then_another_task_stores)
    _, page = second.validate("flight_outcomes", "flight_outcomes_v1", CHECKS, pd.DataFrame({"x": [2]}), KEY)
    index = _index(settings)
    assert _site_relative(settings, first) in index and _site_relative(settings, page) in index
    assert (_site_relative(settings, late[0]) in index) is kept
    assert gx_session.missing_from_index(settings.data_docs_root) == (
        [] if kept else [_site_relative(settings, late[0])]
    )


def test_the_plugin_serves_reports_and_data_docs_from_s3_sandboxed_and_nothing_else(s3_settings):
    import boto3
    from fastapi.testclient import TestClient

    from include.monitoring.records import report_path
    from include.monitoring.statistics import CheckResult
    from include.monitoring.tables import record
    from include.oncall import files, monitoring_reader
    from plugins import model_health_plugin as plugin

    settings, bucket = s3_settings
    day = date(2026, 11, 22)
    report = report_path(settings, "3", day)
    assert report == f"s3://{bucket}/artifacts/monitoring/reports/{settings.model_name}_v3_{day}.html"
    write_text_atomic(report, "<p>drift report</p>")
    page = storage.join(
        settings.data_docs_root, "validations", "flight_schedules_v1", KEY, "t", "lake-f.html"
    )
    write_text_atomic(page, "<p>data docs page</p>")
    write_text_atomic(storage.join(settings.data_docs_root, "static", "styles", "x.css"), "p {}")
    record(settings, "3", day, [CheckResult("volume", False, 1.0, 2.0, "ok")], None)
    assert monitoring_reader.monitoring(settings, "3")["reports"] == {
        day.isoformat(): f"reports/{Path(report).name}"
    }

    # real objects wherever a naive join of the refused names below would lead
    s3 = boto3.client("s3")
    for key in (
        "artifacts/secret.html",
        "artifacts/monitoring/secret.html",
        "artifacts/data_docs/validations/../../secret.html",  # the literal key, for a join that keeps ".."
        "artifacts/monitoring/reports/../secret.html",
    ):
        s3.put_object(Bucket=bucket, Key=key, Body=b"not for the page")
    for relative in ("validations/../../secret.html", "../secret.html", "/artifacts/secret.html", "", "."):
        assert files.served_data_docs(settings, relative) is None, relative
    for name in (
        "../secret.html",
        "..%2Fsecret.html",
        "x/../../secret.html",
        f"s3://{bucket}/artifacts/secret.html",
    ):
        assert files.served_report(settings, name) is None, name
    assert files.data_docs_link(settings, f"s3://{bucket}/artifacts/secret.html") is None
    assert files.data_docs_link(settings, f"s3://{bucket}/artifacts/data_docs/../secret.html") is None

    plugin.app.dependency_overrides[plugin.airflow_user] = lambda: "on-call"
    try:
        client = TestClient(plugin.app)
        for path, body, media in (
            (f"/reports/{Path(report).name}", b"<p>drift report</p>", "text/html"),
            (
                f"/data-docs/validations/flight_schedules_v1/{KEY}/t/lake-f.html",
                b"<p>data docs page</p>",
                "text/html",
            ),
            ("/data-docs/static/styles/x.css", b"p {}", "text/css"),
        ):
            answer = client.get(path)
            assert answer.status_code == 200 and answer.content == body, path
            assert answer.headers["content-type"].startswith(media), path
            for header, value in files.FILE_HEADERS.items():
                assert answer.headers[header] == value, (path, header)
            assert "allow-same-origin" not in answer.headers["content-security-policy"]
        for path in (
            "/reports/..%2Fsecret.html",
            "/reports/nothing.html",
            "/data-docs/validations/%2E%2E/%2E%2E/secret.html",
            "/data-docs/..%2Fsecret.html",
        ):
            assert client.get(path).status_code == 404, path
    finally:
        plugin.app.dependency_overrides.clear()
