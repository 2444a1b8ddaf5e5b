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


class _TI:
    def __init__(self, try_number: int) -> None:
        self.id, self.try_number = "01a2500d-d814-7a74-a9da-6a8514c5bc20", try_number


def test_a_retry_goes_on_with_the_earlier_answer_and_a_first_try_asks(train_model, monkeypatch):
    """Airflow 3.3.2 can lose the try that resumes with a quick answer; its retry must not wipe
    the person's choice (and wait for a timeout's Reject). Without an earlier answer it asks."""
    from datetime import UTC, datetime

    from airflow.sdk.api.datamodels._generated import HITLDetailResponse, HITLUser
    from airflow.sdk.execution_time import hitl

    task = train_model.get_task("approve_deployment")
    answered = HITLDetailResponse(
        response_received=True,
        responded_by_user=HITLUser(id="1", name="admin"),
        responded_at=datetime(2026, 12, 7, 10, 30, 32, tzinfo=UTC),
        chosen_options=["Deploy"],
        params_input={},
    )
    monkeypatch.setattr(hitl, "get_hitl_detail_content_detail", lambda ti_id: answered)
    resumed: list[dict] = []
    monkeypatch.setattr(type(task), "execute_complete", lambda self, context, event: resumed.append(event))
    asked: list[int] = []
    monkeypatch.setattr(
        type(task).__mro__[1], "execute", lambda self, context: asked.append(context["ti"].try_number)
    )

    task.execute({"ti": _TI(try_number=2)})
    assert asked == [] and resumed[0]["chosen_options"] == ["Deploy"]
    assert resumed[0]["responded_by_user"] == {"id": "1", "name": "admin"} and not resumed[0]["timedout"]

    task.execute({"ti": _TI(try_number=1)})  # a first try always asks
    unanswered = answered.model_copy(update={"response_received": False, "chosen_options": None})
    monkeypatch.setattr(hitl, "get_hitl_detail_content_detail", lambda ti_id: unanswered)
    task.execute({"ti": _TI(try_number=3)})  # a retry with nothing answered asks again
    assert asked == [1, 3] and len(resumed) == 1
