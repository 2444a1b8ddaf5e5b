"""The deployment decision a person makes in Airflow's Required Actions (train_model).

With `require_approval`, a challenger that passed the gate waits in `approve_deployment` (a
Human-in-the-loop branch): the request shows the gate's table and links the version's model card;
the answer is **Deploy** (→ `deploy_champion`), **Shadow** (→ `start_shadow`: scored beside the
champion until promote_shadow decides) or **Reject** (→ `reject_deployment`). Nobody
answering within `approval_timeout_hours` is a Reject (the operator's default; the champion
stays). A DeadlineAlert on the run reminds on-call after `approval_reminder_hours`.

Airflow 3.3 parks the waiting task in `awaiting_input`: it holds no worker slot. The answer comes
from the UI or from the REST API (`PATCH /api/v2/dags/train_model/dagRuns/<run>/taskInstances/
approve_deployment/-1/hitlDetails` with `{"chosen_options": ["Deploy"]}`).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.hitl import HITLBranchOperator
from airflow.sdk.definitions.callback import SyncCallback
from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

DEPLOY, SHADOW, REJECT = "Deploy", "Shadow", "Reject"
RESPONSE_KEY = "response"  # the XCom key of who answered what (the branch returns only branches)


class DeploymentDecision(HITLBranchOperator):
    """A HITL branch that also keeps its answer (`RESPONSE_KEY`): who chose what and when, or that
    the timeout chose the default. deploy_champion and reject_deployment record it on the version.

    A retry never throws a person's answer away. Airflow 3.3.2 can lose the try that resumes with
    an answer given within about a second of the task parking (the scheduler takes the parked
    try's executor event for a task "changed externally" and marks it up for retry), and the
    retry's request would wipe the answer and wait for a new one until the timeout's Reject. So
    a retry first looks for an answer to an earlier try and, when there is one, goes on with it.
    To ask again after an answer, start a new train_model run."""

    def execute(self, context: Any) -> Any:
        if int(getattr(context["ti"], "try_number", 1) or 1) > 1:
            kept = self._earlier_answer(context)
            if kept is not None:
                self.log.warning(
                    "an earlier try of this decision was answered (%s by %s at %s): going on with that "
                    "answer instead of asking again",
                    kept["chosen_options"],
                    (kept["responded_by_user"] or {}).get("name", "nobody (timeout)"),
                    kept["responded_at"],
                )
                return self.execute_complete(context, kept)
        return super().execute(context)

    def _earlier_answer(self, context: Any) -> dict[str, Any] | None:
        """The answer recorded for this task instance, as the resume event carries it (None when
        there is none)."""
        from airflow.sdk.execution_time.hitl import get_hitl_detail_content_detail

        try:
            found = get_hitl_detail_content_detail(context["ti"].id)
        except Exception as exc:  # no request was written yet: nothing to go on with
            self.log.info("no earlier answer to this decision (%s)", type(exc).__name__)
            return None
        if not found.response_received or not found.chosen_options or found.responded_at is None:
            return None
        user = found.responded_by_user
        return {
            "chosen_options": list(found.chosen_options),
            "params_input": dict(found.params_input or {}),
            "responded_at": found.responded_at,
            "responded_by_user": None if user is None else {"id": user.id, "name": user.name},
            "timedout": user is None,
        }

    def execute_complete(self, context: Any, event: dict[str, Any]) -> Any:
        if "error" not in event:
            context["ti"].xcom_push(
                key=RESPONSE_KEY,
                value={
                    "chosen_options": list(event.get("chosen_options") or []),
                    "responded_by_user": event.get("responded_by_user"),
                    "responded_at": str(event.get("responded_at") or ""),
                    "timed_out": bool(event.get("timedout")),
                },
            )
        return super().execute_complete(context=context, event=event)


def decision(
    task_id: str, deploy_task: str, shadow_task: str, reject_task: str, timeout: timedelta, **kwargs: Any
) -> DeploymentDecision:
    """The decision task: Deploy, Shadow or Reject; Reject when nobody answers within `timeout`."""
    return DeploymentDecision(
        task_id=task_id,
        options=[DEPLOY, SHADOW, REJECT],
        options_mapping={DEPLOY: deploy_task, SHADOW: shadow_task, REJECT: reject_task},
        defaults=REJECT,
        response_timeout=timeout,
        **kwargs,
    )


def reminder(after: timedelta, timeout: timedelta) -> DeadlineAlert:
    """On-call is told when a run is still unfinished `after` its queued time (a decision waits)."""
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=after,
        callback=SyncCallback(
            "include.airflow_glue.alerting.decision_overdue",
            kwargs={"after": str(after), "timeout": str(timeout)},
        ),
    )
