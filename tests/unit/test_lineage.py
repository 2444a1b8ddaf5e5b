"""The lineage record: built from a version's facts, shown as a tree and a page, found by the CLI;
the training set's canonical hash. The CLI runs against a real local MLflow (SQLite)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from include.lake.partitions import frame_sha256
from include.oncall import lineage as show
from include.registry import lineage
from tests.unit.test_model_loading import fitted_logistic, local_mlflow, register  # noqa: F401

RAW = "/lake/raw/flight_schedules/interval=2026-11-20T00:00:00+00:00_2026-11-21T00:00:00+00:00/part-0.parquet"
VALIDATED = RAW.replace("/raw/", "/validated/")


def facts() -> dict:
    meta = {
        "feature_service": "flight_delay_v1",
        "feature_definitions_sha256": "f" * 64,
        "window_start": "2026-11-01T00:00:00+00:00",
        "window_end": "2026-11-22T00:00:00+00:00",
        "rows": 100,
        "train_rows": 80,
        "holdout_rows": 20,
        "training_set_sha256": "a" * 64,
        "partitions": {VALIDATED: "b" * 64},
        "inputs": {
            "raw": {RAW: {"sha256": "c" * 64, "rows": 950}},
            "validated": {VALIDATED: {"sha256": "b" * 64, "rows": 945}},
            "features": {},
        },
    }
    return {
        "model_name": "flight_delay",
        "version": "3",
        "generated_at": "2026-12-07T00:00:00+00:00",
        "event": "deployed",
        "version_tags": {
            "candidate": "hist_gradient_boosting-max_depth=2",
            "champion.since": "2026-12-07T00:01:00+00:00",
            "champion.deployed_by": "scheduler",
            "champion.approved_by": "not required",
            "champion.previous": "2",
            "champion.reason": "gate passed",
            "serving.path": "fast",
        },
        "status": {"state": "champion"},
        "run_id": "r1",
        "parent_run_id": "p1",
        "run": {"params": {"max_depth": "2", "seed": "0"}, "metrics": {"roc_auc": 0.71}, "tags": {}},
        "parent_run": {
            "tags": {
                "git_commit": "1234567890abcdef",
                "git_dirty": "false",
                "lock_sha256": "d" * 64,
                "airflow.dag_id": "train_model",
                "airflow.run_id": "manual__x",
                "airflow.dag_version_id": "0193-abc",
            }
        },
        "lineage": meta,
        "gate": {"decision": "deploy", "reasons": [], "decided_at": "2026-12-07T00:00:30+00:00"},
        "partitions": [
            {
                "table": "flight_schedules",
                "interval": "2026-11-20T00:00:00+00:00_2026-11-21T00:00:00+00:00",
                "zone": "validated",
                "sha256": "b" * 64,
                "validation": {
                    "found": True,
                    "suite": "flight_schedules_v7",
                    "success": True,
                    "failed": [],
                    "data_docs_page": "file:///docs/page.html",
                    "quarantine": {"exists": False},
                },
            }
        ],
        "missing": {},
    }


def test_the_record_names_every_stage_of_the_chain() -> None:
    batches = [{"batch_key": "2026-11-22_2026-11-23", "flights": 940, "predicted_at": None}]
    r = lineage.build(facts(), batches)  # type: ignore[arg-type]
    assert r["format"] == lineage.FORMAT and r["version"] == "3"
    assert r["raw_partitions"] == [
        {
            "path": RAW,
            "table": "flight_schedules",
            "interval": r["source_intervals"][0],
            "sha256": "c" * 64,
            "rows": 950,
        }
    ]
    assert r["validated_partitions"][0]["rows"] == 945
    assert (
        r["validation"][0]["suite"] == "flight_schedules_v7" and r["validation"][0]["decision"] == "published"
    )
    assert r["features"]["feature_service"] == "flight_delay_v1"
    assert r["training_set"]["sha256"] == "a" * 64 and r["training_set"]["train_rows"] == 80
    assert r["code"]["git_commit"] == "1234567890abcdef" and r["code"]["git_dirty"] == "false"
    assert r["code"]["dag_version_id"] == "0193-abc" and r["code"]["lock_sha256"] == "d" * 64
    assert r["training"]["seed"] == "0" and r["training"]["metrics"] == {"roc_auc": 0.71}
    assert r["gate"]["decision"] == "deploy" and r["gate"]["approver"] == "not required"
    assert r["deployments"][0]["previous"] == "2" and r["deployments"][0]["serving_path"] == "fast"
    assert r["prediction_batches"] == batches

    text = show.tree(r)
    for expected in (
        "version 3",
        "sha256 cccccccccccc",
        "flight_schedules_v7",
        "flight_delay_v1",
        "1234567890ab",
        "deploy",
    ):
        assert expected in text, expected
    page = show.page(r)
    assert page.startswith("<!doctype html>") and "<svg" in page and "<script" not in page
    assert "training set" in page and "100 rows" in page


def test_a_run_from_before_inputs_were_recorded_still_lists_its_validated_partitions() -> None:
    old = facts()
    old["lineage"].pop("inputs")
    r = lineage.build(old)  # type: ignore[arg-type]
    assert [f["sha256"] for f in r["validated_partitions"]] == ["b" * 64]
    assert r["validated_partitions"][0]["rows"] is None and r["raw_partitions"] == []


def test_the_training_set_hash_ignores_row_and_column_order_and_sees_a_changed_value() -> None:
    frame = pd.DataFrame({"flight_id": [3, 1, 2], "late": [1, 0, 1], "x": [0.5, 1.5, np.nan]})
    same = frame[["x", "late", "flight_id"]].sample(frac=1.0, random_state=1)
    assert frame_sha256(frame, "flight_id") == frame_sha256(same, "flight_id")
    changed = frame.copy()
    changed.loc[0, "x"] = 0.5000001
    assert frame_sha256(changed, "flight_id") != frame_sha256(frame, "flight_id")
    retyped = frame.astype({"late": "float64"})
    assert frame_sha256(retyped, "flight_id") != frame_sha256(frame, "flight_id")


def test_an_unknown_version_names_the_versions_that_exist(local_mlflow, capsys) -> None:  # noqa: F811
    settings = local_mlflow
    register(settings, fitted_logistic())
    register(settings, fitted_logistic())
    assert show.main(["9"]) == 2
    err = capsys.readouterr().err
    assert "no version 9 of flight_delay" in err and "Versions of flight_delay: 2, 1" in err


def test_a_registered_version_is_shown_with_what_is_missing(local_mlflow, capsys, tmp_path) -> None:  # noqa: F811
    settings = local_mlflow
    version = register(settings, fitted_logistic())
    out = tmp_path / "page.html"
    assert show.main([version, "--html", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"flight_delay version {version}" in text and "missing:" in text
    assert out.read_text().startswith("<!doctype html>")
    with pytest.raises(LookupError):
        show.record(settings, "404")


def test_the_shadow_stage_and_a_persons_reject_are_in_the_record():
    f = facts()
    tags = {
        k: v for k, v in f["version_tags"].items() if not k.startswith("champion.")
    }  # never champion: shadowed, then rejected
    f["version_tags"] = {
        **tags,
        "shadow.since": "2026-12-07T01:00:00+00:00",
        "shadow.deployed_by": "scheduler",
        "shadow.state": "retired",
        "shadow.decision": "retire",
        "shadow.reasons": "shadow ROC AUC 0.61 vs champion 0.66: worse by more than 0.01",
        "approval.decision": "reject",
        "approval.by": "dana",
        "approval.at": "2026-12-07T02:00:00+00:00",
    }
    record = lineage.build(f)
    events = {d["event"]: d for d in record["deployments"]}
    assert set(events) == {"shadow", "rejected"}
    assert events["shadow"]["decision"] == "retire" and events["shadow"]["state"] == "retired"
    assert events["rejected"]["by"] == "dana" and record["gate"]["approver"] == "dana"
    shown = show.tree(record)
    assert "shadow at 2026-12-07T01:00:00+00:00 by scheduler" in shown
    assert "[retired; promotion check: retire]" in shown
