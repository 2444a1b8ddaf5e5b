"""train_model's human decision: a HITL branch (Deploy / Reject, Reject on timeout) with the gate's
table and the model card link in its request, and a DeadlineAlert that reminds on-call."""

from __future__ import annotations

from datetime import timedelta

import pytest

from include.core.settings import PROJECT_DIR, get_settings


@pytest.fixture(scope="module")
def train_model():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
    assert not bag.import_errors
    return bag.dags["train_model"]


def test_the_decision_is_deploy_or_reject_and_silence_rejects(train_model):
    from include.airflow_glue.approval import DEPLOY, REJECT, SHADOW, DeploymentDecision

    task = train_model.get_task("approve_deployment")
    assert isinstance(task, DeploymentDecision)
    assert task.options == [DEPLOY, SHADOW, REJECT] and task.defaults == [REJECT]
    assert task.options_mapping == {
        DEPLOY: "deploy_champion",
        SHADOW: "start_shadow",
        REJECT: "reject_deployment",
    }
    assert task.response_timeout == timedelta(hours=get_settings().approval_timeout_hours)
    assert task.downstream_task_ids == {"deploy_champion", "start_shadow", "reject_deployment"}
    # The request shows the gate's table and links the version's model card.
    assert "['table']" in task.body and "/model-health/model-card/" in task.body


def test_a_run_may_wait_for_the_decision_and_on_call_is_reminded(train_model):
    settings = get_settings()
    assert train_model.dagrun_timeout > timedelta(hours=settings.approval_timeout_hours)
    [alert] = train_model.deadline if isinstance(train_model.deadline, list) else [train_model.deadline]
    assert alert.interval == timedelta(hours=settings.approval_reminder_hours)
    assert alert.callback.path == "include.airflow_glue.alerting.decision_overdue"


def test_the_deadlines_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("MLOPS_APPROVAL_TIMEOUT_HOURS", "0.05")
    monkeypatch.setenv("MLOPS_APPROVAL_REMINDER_HOURS", "0.01")
    s = get_settings()
    assert (s.approval_timeout_hours, s.approval_reminder_hours) == (0.05, 0.01)
