"""The deployment decision's record (who answered, or that nobody did) and the overdue reminder,
which is kept with every alert raised even where no channel is configured."""

from __future__ import annotations

import logging

from include.core.settings import get_settings
from include.monitoring.tables import alerts
from include.training.gate_steps import responder


def test_the_responder_is_named_or_the_timeout_said():
    assert responder({"responded_by_user": {"id": "7", "name": "dana"}, "timed_out": False}) == "dana"
    assert responder({"responded_by_user": {"id": "7"}}) == "7"
    assert "timed out" in responder({"responded_by_user": None, "timed_out": True})
    assert responder(None) == "unknown (no answer recorded)"


def test_the_overdue_reminder_names_the_run_and_is_recorded(tmp_path, monkeypatch, caplog):
    from include.airflow_glue.alerting import decision_overdue

    monkeypatch.setenv("MLOPS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("MLOPS_MONITORING_URL", raising=False)
    # What the scheduler passes a deadline callback: the REST API's DAG run and the deadline.
    context = {"dag_run": {"dag_run_id": "manual__decide", "dag_id": "train_model"}, "deadline": {"id": "d"}}
    with caplog.at_level(logging.WARNING, logger="airflow.task"):
        decision_overdue(context=context, after="1 day, 0:00:00", timeout="2 days, 0:00:00")
    assert "DEPLOYMENT DECISION OVERDUE" in caplog.text and "manual__decide" in caplog.text
    kept = alerts(get_settings())
    assert len(kept) == 1 and "manual__decide" in kept.iloc[0]["text"]
    assert "Required Actions" in kept.iloc[0]["text"] and kept.iloc[0]["channels"] == "[]"


def test_the_reminder_never_raises_when_nothing_can_record_it(tmp_path, monkeypatch, caplog):
    from include.airflow_glue.alerting import decision_overdue

    monkeypatch.setenv("MLOPS_MONITORING_URL", "nosuchdialect://127.0.0.1/monitoring")
    with caplog.at_level(logging.WARNING, logger="airflow.task"):
        decision_overdue(context=None)  # no context at all, a database that cannot be opened
    assert "DEPLOYMENT DECISION OVERDUE" in caplog.text  # the log still says it
    assert "could not record the alert" in caplog.text
