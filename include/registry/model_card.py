"""Model cards: one page per registered model version, stored with the version's MLflow run.

Why: what a version is, is spread over the registry (aliases, tags), two runs (the candidate's
params, metrics and artifacts; the training run's trigger and commit) and the lake's validation
records (did the partitions it learnt from pass their checks?). A reviewer, an approver or
on call needs it on one page: what the model predicts, whether it serves and since when, why
the gate let it through (or not), which data it saw, and what it is known not to do.

The card is rebuilt from those records at each event of the version's life (registered, gate,
deployed, rollback, replaced), so it never says more than the records do; a missing record is
shown as missing, not guessed. The version's lineage record (include/registry/lineage.py) is
stored beside it from the same facts. It is stored as `model_card/model_card.{md,html}` on the
version's run, where MLflow's UI shows it and a web page can fetch it (`load_html`).
`python -m include.registry.model_card publish N` rebuilds one by hand.

This module publishes and reads cards; the parts are in include/registry/card/: the record
(`record.collect`, `status`, `validation`), what the card says (`content`) and its renderings
(`render`). No Airflow here; MLflow is imported inside the functions that need it.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

from include.core.settings import Settings
from include.core.urls import redact_url
from include.registry import lineage
from include.registry.card.record import collect, quiet_client
from include.registry.card.render import render_html, render_markdown

log = logging.getLogger("airflow.task")

MD_ARTIFACT = "model_card/model_card.md"
HTML_ARTIFACT = "model_card/model_card.html"


def publish(settings: Settings, version: str, event: str) -> dict[str, str]:
    """Rebuild the card of `version` and store it on the version's run (overwriting the last one);
    tag the version with when and why it was rebuilt."""
    facts = collect(settings, version)
    facts["event"] = event
    run_id = facts["run_id"]
    if not run_id:
        raise LookupError(f"version {version} of {settings.model_name} has no MLflow run to store a card on")
    client = quiet_client(settings)
    client.log_text(run_id, render_markdown(facts), MD_ARTIFACT)
    client.log_text(run_id, render_html(facts), HTML_ARTIFACT)
    # The version's lineage record, from the same facts, completed at the same events.
    client.log_dict(run_id, lineage.build(facts), lineage.ARTIFACT)
    name, version = settings.model_name, str(version)
    client.set_model_version_tag(name, version, "model_card.updated_at", facts["generated_at"])
    client.set_model_version_tag(name, version, "model_card.event", event)
    log.info(
        "model card of %s version %s updated (%s): runs:/%s/%s", name, version, event, run_id, HTML_ARTIFACT
    )
    return {"version": version, "run_id": run_id, "artifact": HTML_ARTIFACT}


def publish_or_warn(settings: Settings, version: str, event: str) -> dict[str, str] | None:
    """`publish`, for callers whose own work is done (a verified deployment, a registration): the
    card is documentation, so a failure is logged with the command that rebuilds it, not raised."""
    try:
        return publish(settings, version, event)
    except Exception as exc:
        log.warning(
            "the model card of %s version %s was not updated (event %s): %s: %s. "
            "Regenerate it with: python -m include.registry.model_card publish %s",
            settings.model_name,
            version,
            event,
            type(exc).__name__,
            redact_url(str(exc))[:500],
            version,
        )
        return None


def load_html(settings: Settings, version: str) -> str | None:
    """The stored HTML card of `version`, or None when the version or its card does not exist.
    For a web page: one registry lookup and one artifact download, nothing rebuilt."""
    from mlflow.exceptions import MlflowException

    client = quiet_client(settings)
    try:
        mv = client.get_model_version(settings.model_name, str(version))
    except MlflowException:
        return None
    if not mv.run_id:
        return None
    with tempfile.TemporaryDirectory(prefix="model-card-") as tmp:
        try:
            local = client.download_artifacts(mv.run_id, HTML_ARTIFACT, tmp)
        except (MlflowException, OSError):
            return None
        return Path(local).read_text(encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """`python -m include.registry.model_card publish N`: rebuild a card by hand (e.g. when the publish after
    a deployment failed and the task log said so)."""
    import argparse

    from include.core.settings import get_settings

    parser = argparse.ArgumentParser(prog="python -m include.registry.model_card", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    publish_cmd = commands.add_parser("publish", help="rebuild the model card of a registered version")
    publish_cmd.add_argument("version", help="registered model version number")
    publish_cmd.add_argument("--event", default="manual", help="recorded as tag model_card.event")
    args = parser.parse_args(argv)
    settings = get_settings()
    try:
        result = publish(settings, args.version, args.event)
    except LookupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    artifact_uri = quiet_client(settings).get_run(result["run_id"]).info.artifact_uri
    print(
        f"model card of {settings.model_name} version {result['version']} published:\n"
        f"  runs:/{result['run_id']}/{result['artifact']}\n"
        f"  {redact_url(artifact_uri)}/{result['artifact']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
