"""Send an alert through the notifiers whose Airflow connection exists; nothing is required.

- `mlops_alerts_smtp` (an SMTP connection; extra {"to": "a@x, b@y", "from_email": ...}): Airflow's
  SmtpNotifier.
- `mlops_alerts_slack` (a Slack incoming-webhook connection): the Slack provider's webhook
  notifier, when apache-airflow-providers-slack is installed.
The caller always logs the same text as a WARNING block: a notifier is an extra channel, never
the only one. Airflow is imported inside the function (this module is imported by tasks only).
"""

from __future__ import annotations

import logging
from typing import Any

from include.config import ALERT_SLACK_CONN_ID, ALERT_SMTP_CONN_ID

log = logging.getLogger("airflow.task")


def _connection(conn_id: str) -> Any | None:
    from airflow.sdk import BaseHook

    try:
        return BaseHook.get_connection(conn_id)
    except Exception:  # not defined: this channel is off
        return None


def send(subject: str, text: str, context: dict[str, Any]) -> list[str]:
    """Send `text` to every configured channel; returns the channels used. A failing channel is
    logged and skipped: an alert must never fail the task that raises it."""
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
                html_content=f"<pre>{_escape(text)}</pre>",
                smtp_conn_id=ALERT_SMTP_CONN_ID,
            ).notify(context)
            sent.append(f"smtp:{ALERT_SMTP_CONN_ID}")
        except Exception:
            log.exception("could not send the alert through connection %s", ALERT_SMTP_CONN_ID)
    if _connection(ALERT_SLACK_CONN_ID) is not None:
        try:
            from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

            SlackWebhookNotifier(slack_webhook_conn_id=ALERT_SLACK_CONN_ID, text=f"```{text}```").notify(
                context
            )
            sent.append(f"slack:{ALERT_SLACK_CONN_ID}")
        except ImportError:
            log.warning(
                "connection %s exists but apache-airflow-providers-slack is not installed: add it to "
                "requirements.txt to send alerts to Slack",
                ALERT_SLACK_CONN_ID,
            )
        except Exception:
            log.exception("could not send the alert through connection %s", ALERT_SLACK_CONN_ID)
    return sent


def _escape(text: str) -> str:
    import html

    return html.escape(text)
