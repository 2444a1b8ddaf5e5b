"""Send an alert through the notifiers whose Airflow connection exists; nothing is required.

- `mlops_alerts_smtp` (an SMTP connection; extra {"to": "a@x, b@y", "from_email": ...}): Airflow's
  SmtpNotifier.
- `mlops_alerts_slack` (a Slack incoming-webhook connection): the Slack provider's webhook
  notifier, when apache-airflow-providers-slack is installed.
The caller always logs the same text as a WARNING block: a notifier is an extra channel, never
the only one. Airflow is imported inside the function (this module is imported by tasks only).
"""

from __future__ import annotations

import html
import importlib
import logging
from typing import TYPE_CHECKING, Any

from include.core.settings import ALERT_SLACK_CONN_ID, ALERT_SMTP_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger("airflow.task")


def _connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # not defined: this channel is off
        return None


def send(subject: str, text: str, context: Context) -> list[str]:
    """Send `text` to every configured channel; returns the channels used. A failing channel is
    logged and skipped: an alert must never fail the task that raises it. Credentials in any URL
    of the subject or text are removed first (an error message may quote a connection URL)."""
    from include.core.urls import redact_url

    subject, text = redact_url(subject), redact_url(text)
    sent = []
    smtp = _connection(ALERT_SMTP_CONN_ID)
    if smtp is not None:
        try:
            from airflow.providers.smtp.notifications.smtp import SmtpNotifier

            extra = smtp.extra_dejson
            SmtpNotifier(
                to=[x.strip() for x in str(extra.get("to", "")).split(",") if x.strip()],
                from_email=extra.get("from_email") or smtp.login or "airflow-mlops@localhost",
                subject=subject,
                html_content=f"<pre>{html.escape(text)}</pre>",
                smtp_conn_id=ALERT_SMTP_CONN_ID,
            ).notify(context)
            sent.append(f"smtp:{ALERT_SMTP_CONN_ID}")
        except Exception:
            log.exception("could not send the alert through connection %s", ALERT_SMTP_CONN_ID)
    if _connection(ALERT_SLACK_CONN_ID) is not None:
        try:
            # An optional provider (not in the lock): imported by name, only when its connection exists.
            slack = importlib.import_module("airflow.providers.slack.notifications.slack_webhook")
            slack.SlackWebhookNotifier(
                slack_webhook_conn_id=ALERT_SLACK_CONN_ID, text=f"```{text}```"
            ).notify(context)
            sent.append(f"slack:{ALERT_SLACK_CONN_ID}")
        except ImportError:
            log.warning(
                "connection %s exists but apache-airflow-providers-slack is not installed: add it to "
                "requirements.txt to send alerts to Slack",
                ALERT_SLACK_CONN_ID,
            )
        except Exception:
            log.exception("could not send the alert through connection %s", ALERT_SLACK_CONN_ID)
    _keep(subject, text, sent)
    return sent


def _keep(subject: str, text: str, channels: list[str]) -> None:
    """Record the alert in the monitoring database (`alerts_sent`), so it is on record even where
    no channel is configured. Never raises: a database that is down must not hide the alert,
    which the caller has logged already."""
    try:
        from include.core.settings import get_settings
        from include.monitoring.tables import record_alert

        record_alert(get_settings(), subject, text, channels)
    except Exception:
        log.exception("could not record the alert %r in the monitoring database", subject)


def decision_overdue(context: Any = None, **kwargs: Any) -> None:
    """The DeadlineAlert callback of train_model: a run is still not finished long after it was
    queued, which in practice means the deployment decision waits for a person (Required Actions).
    Logs and sends the reminder; never raises."""
    try:
        # The scheduler passes {"dag_run": <the REST API's DAG run>, "deadline": {...}}.
        dag_run = (context or {}).get("dag_run") if isinstance(context, dict) else None
        run = dag_run if isinstance(dag_run, dict) else {}
        run_id = run.get("dag_run_id") or run.get("run_id") or getattr(dag_run, "run_id", None)
        after, timeout = kwargs.get("after"), kwargs.get("timeout")
        text = (
            f"train_model run {run_id or '(see the DAG)'} is not finished {after} after it was queued.\n"
            "If approve_deployment waits for a decision: Airflow UI > Browse > Required Actions, choose "
            f"Deploy or Reject. Without an answer the candidate is rejected {timeout} after the request "
            "(the champion stays). If no decision is waiting, the run is stuck: read its task logs."
        )
        log.warning("DEPLOYMENT DECISION OVERDUE\n%s", text)
        send("[airflow-mlops] deployment decision overdue: train_model", text, context or {})  # type: ignore[arg-type]
    except Exception:
        log.exception("the overdue-decision reminder could not be sent")


def on_task_failure(context: Context) -> None:
    """Every DAG's on_failure_callback: end the failed task's log with the failure block (and send
    it to the alert connections when they exist). Never raises: it runs after the task failed."""
    try:
        from include.core.urls import redact_url
        from include.oncall.failure_block import summary_block

        ti, dag_run = context.get("ti"), context.get("dag_run")
        exc = context.get("exception")
        params = context.get("params") or {}
        start = getattr(dag_run, "data_interval_start", None)
        end = getattr(dag_run, "data_interval_end", None)
        data = [f"interval {start:%Y-%m-%d %H:%M} - {end:%Y-%m-%d %H:%M} UTC"] if start and end else []
        data += [
            f"{k} {params[k]}" for k in ("interval_start", "days", "window_end", "version") if params.get(k)
        ]
        block = summary_block(
            dag_id=str(getattr(ti, "dag_id", "?")),
            task_id=str(getattr(ti, "task_id", "?")),
            run_id=str(getattr(ti, "run_id", "?")),
            try_number=int(getattr(ti, "try_number", 0) or 0),
            data="; ".join(data) or "see the run's Params and triggering asset events",
            error_type=type(exc).__name__ if exc is not None else "unknown",
            error_message=redact_url(str(exc or "")),  # the log shows what the alert sends
        )
        # The UI folds what a callback logs into a collapsed section: close it first.
        log.error("::endgroup::\n%s", block)
        send(
            f"[airflow-mlops] failed: {getattr(ti, 'dag_id', '?')}.{getattr(ti, 'task_id', '?')}",
            block,
            context,
        )
    except Exception:
        log.exception("could not write the failure summary")
    from include.airflow_glue.timing import record

    record(context, "failed")
