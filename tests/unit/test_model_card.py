"""Model cards: rendering from a hand-written facts dict, status from the registry's tags, and one
round trip through a real local MLflow (SQLite) with real validation records on disk.

The card's parts live in include/registry/card/ (record, status, content, render); publishing,
reading and the CLI in include/registry/model_card.py."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from include.core.settings import CHALLENGER, CHAMPION, get_settings
from include.core.urls import redact_url
from include.registry import model_card
from include.registry.card import content
from include.registry.card.record import collect
from include.registry.card.render import render_html, render_markdown
from include.registry.card.status import status_of

SHA = "ab" * 32
SCRIPT = "<script>alert('x')</script>"


def facts(**overrides) -> dict:
    base = {
        "model_name": "flight_delay",
        "version": "7",
        "generated_at": "2026-11-23T12:00:00+00:00",
        "event": "deployed",
        "tracking_uri": "http://alice:s3cret@mlflow.example.com:5000",
        "registered_at": "2026-11-23T11:00:00+00:00",
        "version_tags": {"candidate": "logistic_regression-C=1.0"},
        "aliases": ["champion"],
        "champion_version": "7",
        "challenger_version": "7",
        "status": {
            "state": "champion",
            "detail": "serves batch scoring and the online service",
            "since": "2026-11-23T11:30:00+00:00",
            "deployed_by": "alice",
            "approved_by": "bob",
            "reason": SCRIPT,
            "previous": "6",
        },
        "run_id": "run123",
        "parent_run_id": "parent456",
        "run": {
            "run_name": "logistic_regression-C=1.0",
            "experiment_id": "1",
            "artifact_uri": "s3://carol:hunter2@bucket/artifacts/run123/artifacts",
            "params": {"model": "logistic_regression", "C": "1.0", "note": SCRIPT},
            "metrics": {"roc_auc": 0.7123, "brier": 0.1712, "train_rows": 12000.0},
            "tags": {"git_commit": "deadbeef"},
        },
        "parent_run": {"tags": {"triggered_by": "manual", "airflow.run_id": "manual__2026-11-23"}},
        "lineage": {
            "window_start": "2013-06-07T00:00:00+00:00",
            "window_end": "2013-06-28T00:00:00+00:00",
            "holdout_start": "2013-06-24T00:00:00+00:00",
            "train_rows": 12000,
            "holdout_rows": 3500,
            "feature_service": "flight_delay_v1",
        },
        "slices": {"carrier=AA": {"roc_auc": 0.70, "rows": 900}},
        "gate": {
            "evaluated": True,
            "decision": "deploy",
            "reasons": [],
            "table": "check  result  detail\nabsolute_floor  pass  0.71 >= 0.60\ndecision: DEPLOY",
            "decided_at": "2026-11-23T11:20:00+00:00",
            "champion": "version 6",
        },
        "partitions": [
            {
                "table": "flight_schedules",
                "interval": "20130601T0000Z_20130602T0000Z",
                "sha256": SHA,
                "validation": {
                    "found": True,
                    "success": True,
                    "evaluated_expectations": 19,
                    "successful_expectations": 19,
                    "data_docs_page": "validations/x/lake-flight_schedules.html",
                    "quarantine": {"exists": True, "decision": "split", "quarantined_rows": 3},
                },
            }
        ],
        "prediction_lead_hours": 2.0,
        "missing": {},
    }
    base.update(overrides)
    return base


def test_html_is_escaped_self_contained_and_names_the_version():
    page = render_html(facts())
    assert SCRIPT not in page and "<script" not in page.lower()
    assert "&lt;script&gt;" in page
    assert re.search(r"<title>[^<]*flight_delay[^<]*version 7[^<]*</title>", page)
    assert re.search(r'id="model-version">7<', page)
    for external in ("<link", " src=", "http-equiv", "@import", "url("):
        assert external not in page
    for section in ("Purpose", "Status", "Training data", "Parameters", "Metrics per slice", "Lineage"):
        assert f"<h2>{section}" in page
    assert "<pre>check  result  detail" in page  # the gate table, verbatim
    assert "P(arrival ≥ 15 min late)" in page and "2 h before" in page


def test_sha256_is_full_in_markdown_and_shortened_in_html():
    md, page = render_markdown(facts()), render_html(facts())
    assert SHA in md
    assert SHA not in page and SHA[:12] in page
    assert "split: 3 rows quarantined" in md and "19/19" in page
    assert SCRIPT not in md  # Markdown viewers render inline HTML too


def test_credentials_are_stripped_from_every_url():
    md, page = render_markdown(facts()), render_html(facts())
    for text in (md, page):
        assert "s3cret" not in text and "hunter2" not in text and "alice:" not in text
        assert "mlflow.example.com:5000" in text and "s3://bucket/artifacts" in text
    assert redact_url("postgresql+psycopg://u:p@ss@db:5432/x") == "postgresql+psycopg://db:5432/x"
    assert redact_url("https://h/x?token=abc&b=1") == "https://h/x?token=***&b=1"
    assert redact_url("sqlite:////data/mlflow.db") == "sqlite:////data/mlflow.db"


def test_a_missing_gate_and_missing_records_say_so():
    f = facts(
        gate={"evaluated": False, "reasons": []},
        lineage=None,
        slices=None,
        partitions=[],
        run=None,
        missing={"gate": "not yet evaluated", "lineage.json": "not found"},
    )
    for text in (render_markdown(f), render_html(f)):
        assert "not yet evaluated" in text
        assert "No partitions recorded" in text and "lineage.json" in text


def test_computed_known_limits_for_a_weak_slice_a_small_slice_and_a_short_window():
    f = facts(
        slices={
            "carrier=AA": {"roc_auc": 0.71, "rows": 900},
            "carrier=F9": {"roc_auc": 0.51, "rows": 600},
            "origin=LGA": {"roc_auc": 0.66, "rows": 120},
        },
        lineage={"window_start": "2013-06-21T00:00:00+00:00", "window_end": "2013-06-28T00:00:00+00:00"},
    )
    limits = content.known_limits(f)
    assert limits[: len(content.KNOWN_LIMITS)] == content.KNOWN_LIMITS
    computed = " ".join(limits[len(content.KNOWN_LIMITS) :])
    assert "carrier=F9" in computed and "0.510" in computed
    assert "origin=LGA" in computed and "only 120 holdout rows" in computed
    assert "carrier=AA" not in computed
    assert "7 days" in computed
    assert "Training window of 7 days" in render_markdown(f)
    assert "carrier=F9: ROC AUC 0.510" in render_html(f)
    assert not content.known_limits(facts())[len(content.KNOWN_LIMITS) :]  # 21 days, good slice


def test_status_from_aliases_and_the_successors_tags():
    history = {
        "1": {"champion.since": "t3", "champion.restored_after_failed_deploy_of": "2"},
        "2": {"champion.since": "t2", "champion.previous": "1"},
        "3": {"champion.since": "t4", "champion.previous": "1", "champion.deployed_by": "ann"},
        "4": {"gate.decision": "reject"},
    }
    assert status_of("3", history["3"], [CHAMPION], history)["state"] == "champion"
    retired = status_of("1", history["1"], [], history)
    assert retired["state"] == "retired" and retired["replaced_by"] == "3" and retired["replaced_at"] == "t4"
    failed = status_of("2", history["2"], [], history)
    assert failed["state"] == "not deployed" and "failed" in failed["detail"]
    rejected = status_of("4", history["4"], [CHALLENGER], history)
    assert rejected["state"] == "challenger" and "rejected" in rejected["detail"]


@pytest.fixture
def local_mlflow(tmp_path, monkeypatch):
    """A real MLflow (SQLite + local artifacts) and data folder in tmp_path."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}")
    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLOPS_LAKE_ROOT", raising=False)
    monkeypatch.delenv("MLOPS_ARTIFACTS_ROOT", raising=False)
    previous = mlflow.get_tracking_uri()
    yield get_settings()
    mlflow.set_tracking_uri(previous)
    mlflow.set_registry_uri(previous)


def _lake_with_records(settings) -> dict[str, str]:
    """Two validated partitions; the first has GX results (an old failed one, a newer passed one),
    its Data Docs page and a quarantine record; the second has no validation record."""
    from include.lake.partitions import file_sha256

    key = "20130601T0000Z_20130602T0000Z"
    paths = []
    for table in ("flight_schedules", "flight_outcomes"):
        part = Path(settings.lake_root) / "validated" / table / f"interval={key}" / "part-0.parquet"
        part.parent.mkdir(parents=True)
        part.write_bytes(f"not really parquet {table}".encode())
        paths.append(part)
    suite = "flight_schedules_2026-11-23-1"
    results, site = Path(settings.validation_results_root), Path(settings.data_docs_root)
    for run_time, ok in (("20261101T000000.000000Z", False), ("20261130T034144.172594Z", True)):
        result = results / suite / key / run_time / "lake-flight_schedules.json"
        result.parent.mkdir(parents=True)
        result.write_text(
            json.dumps(
                {
                    "success": ok,
                    "statistics": {"evaluated_expectations": 19, "successful_expectations": 19 if ok else 18},
                    "results": [],
                    "meta": {"run_id": {"run_name": key, "run_time": run_time}},
                }
            )
        )
        page = site / "validations" / suite / key / run_time / "lake-flight_schedules.html"
        page.parent.mkdir(parents=True)
        page.write_text("<html></html>")
    # another table whose name starts like ours must not be taken for it
    other = results / "flight_schedules_extra_1" / key / "20991231T000000.0Z"
    other.mkdir(parents=True)
    (other / "lake-flight_schedules.json").write_text(json.dumps({"success": False}))
    reason = Path(settings.lake_root) / "quarantine" / "flight_schedules" / f"interval={key}" / "reason.json"
    reason.parent.mkdir(parents=True)
    reason.write_text(json.dumps({"decision": "split", "quarantined_rows": 3, "failed": ["unknown_airport"]}))
    return {str(p): file_sha256(p) for p in paths}


def _register_tiny_model(settings, partitions: dict[str, str]) -> tuple[str, str]:
    """A LogisticRegression logged like train_candidate does (child of a parent run), registered."""
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from include.registry import tracking

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] + rng.normal(scale=0.5, size=200) > 0).astype(int)
    model = LogisticRegression().fit(x, y)
    tracking.client(settings)
    exp = tracking.experiment_id(settings)
    with mlflow.start_run(experiment_id=exp, run_name="train_model manual__1") as parent:
        mlflow.set_tags(
            {
                "triggered_by": "manual",
                "git_commit": "0123abcd",
                "airflow.run_id": "manual__1",
                "reason": "unit",
            }
        )
    lineage = {
        "feature_service": "flight_delay_v1",
        "window_start": "2013-06-14T00:00:00+00:00",
        "window_end": "2013-06-28T00:00:00+00:00",
        "holdout_start": "2013-06-24T00:00:00+00:00",
        "prediction_lead_hours": 2.0,
        "train_rows": 150,
        "holdout_rows": 50,
        "partitions": partitions,
    }
    with mlflow.start_run(
        experiment_id=exp, run_name="logistic_regression-C=1.0", parent_run_id=parent.info.run_id
    ) as run:
        mlflow.log_params({"model": "logistic_regression", "C": 1.0, "threshold": 0.4})
        mlflow.log_metrics({"roc_auc": 0.8123, "pr_auc": 0.7, "log_loss": 0.5, "brier": 0.17})
        mlflow.log_dict(lineage, "lineage.json")
        mlflow.log_dict(
            {"carrier=AA": {"roc_auc": 0.81, "rows": 400}, "carrier=OO": {"roc_auc": 0.52, "rows": 40}},
            "slices.json",
        )
        info = mlflow.sklearn.log_model(model, name="model", pip_requirements=["scikit-learn"])
    mv = mlflow.register_model(
        info.model_uri,
        settings.model_name,
        tags={
            "candidate": "logistic_regression-C=1.0",
            "run_id": run.info.run_id,
            "parent_run_id": parent.info.run_id,
        },
    )
    return str(mv.version), run.info.run_id


def test_publish_then_load_html_with_a_real_mlflow(local_mlflow, caplog, capsys):
    from include.registry import tracking

    settings = local_mlflow
    partitions = _lake_with_records(settings)
    version, run_id = _register_tiny_model(settings, partitions)
    client = tracking.client(settings)
    assert model_card.load_html(settings, version) is None  # registered, no card yet
    tracking.set_alias(settings, CHALLENGER, version, run_id=run_id)

    first = model_card.publish(settings, version, "registered")
    assert first == {"version": version, "run_id": run_id, "artifact": model_card.HTML_ARTIFACT}
    page = model_card.load_html(settings, version)
    assert page is not None and 'class="state challenger"' in page and "not yet evaluated" in page
    tags = client.get_model_version(settings.model_name, version).tags
    assert tags["model_card.event"] == "registered"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", tags["model_card.updated_at"])

    # The gate ran and a person approved: the card follows.
    gate = {"passed": True, "reasons": [], "table": "check  result\ndecision: DEPLOY", "decided_at": "t-gate"}
    client.log_text(run_id, json.dumps(gate), "gate_decision.json")
    client.set_model_version_tag(settings.model_name, version, "gate.decision", "deploy")
    tracking.set_alias(
        settings, CHAMPION, version, previous="none", deployed_by="alice", approved_by="bob", reason="first"
    )
    assert model_card.publish(settings, version, "deployed")["run_id"] == run_id
    page = model_card.load_html(settings, version)
    assert 'class="state champion"' in page and f'id="model-version">{version}<' in page
    assert "alice" in page and "bob" in page and "t-gate" in page and "decision: DEPLOY" in page
    assert "2013-06-14T00:00:00+00:00 → 2013-06-28T00:00:00+00:00 (14 days)" in page
    assert "Training window of 14 days" in page and "carrier=OO" in page
    # the partitions: latest GX result, its Data Docs page, the quarantine record; none for the other
    assert "19/19" in page and "lake-flight_schedules.html" in page
    assert "split: 3 rows quarantined (unknown_airport)" in page and "no validation record" in page
    assert client.get_model_version(settings.model_name, version).tags["model_card.event"] == "deployed"
    listed = {a.path for a in client.list_artifacts(run_id, "model_card")}
    assert listed == {model_card.MD_ARTIFACT, model_card.HTML_ARTIFACT}
    md = Path(client.download_artifacts(run_id, model_card.MD_ARTIFACT, str(settings.data_dir))).read_text()
    assert "| state | champion |" in md and all(sha in md for sha in partitions.values())
    assert "triggered_by" in md and "manual__1" in md and "0123abcd" in md

    # Unknown versions: None, a LookupError, a warning with the command, a CLI exit status.
    assert model_card.load_html(settings, "99") is None
    with pytest.raises(LookupError):
        collect(settings, "99")
    with caplog.at_level(logging.WARNING, logger="airflow.task"):
        assert model_card.publish_or_warn(settings, "99", "deployed") is None
    assert "python -m include.registry.model_card publish 99" in caplog.text
    assert model_card.main(["publish", "99"]) == 1
    assert model_card.main(["publish", version]) == 0
    assert f"runs:/{run_id}/{model_card.HTML_ARTIFACT}" in capsys.readouterr().out
    assert client.get_model_version(settings.model_name, version).tags["model_card.event"] == "manual"


def test_a_failing_card_never_undoes_a_verified_deployment(local_mlflow, monkeypatch, caplog):
    from include.registry import deploy, tracking

    settings = local_mlflow
    version, _ = _register_tiny_model(settings, {})
    monkeypatch.setattr(deploy, "serving_reload", lambda s: {"version": version})  # no service here
    monkeypatch.setattr(deploy, "serving_check", lambda s, v, probe: {"score": 0.5})

    def broken(*args, **kwargs):
        raise OSError("artifact store unreachable")

    monkeypatch.setattr(model_card, "publish", broken)
    with caplog.at_level(logging.WARNING, logger="airflow.task"):
        result = deploy.move_champion(settings, version, {}, {"deployed_by": "alice"})
    assert result["version"] == version and tracking.champion(settings).version == version
    assert f"version {version} was not updated" in caplog.text and "artifact store unreachable" in caplog.text
    assert f"python -m include.registry.model_card publish {version}" in caplog.text


def test_the_approver_is_named_or_said_to_be_unneeded():
    from include.registry.deploy import approver

    assert approver(False, None) == "not required (require_approval off)"
    assert approver(True, {"responded_by_user": {"id": "7", "name": "dana"}}) == "dana"
    assert approver(True, {"responded_by_user": {"id": "7"}}) == "7"
    assert approver(True, None) == "approved (responder not recorded)"
