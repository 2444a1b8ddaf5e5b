"""The steps of train_model, one function per task. No Airflow here: XCom-sized dicts in and out.

prepare_training_data -> train_candidate (one per grid entry) -> register_best -> evaluate_gate.
Data moves through files (`<data>/training_sets/<run>/{train,holdout}.parquet`); MLflow keeps the
record: a parent run per DAG run, a child run per candidate, the best registered with alias
`challenger`, and the gate decision as tags and JSON on the candidate run and the version.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from include.core.settings import CHALLENGER, Settings
from include.features.store import FEATURE_SERVICE
from include.features.training_set import LABEL, build_training_set
from include.monitoring import statistics as monitoring
from include.monitoring.statistics import steps as monitor_steps
from include.registry import model_card, tracking
from include.training import candidates as training
from include.training.candidates import gate

log = logging.getLogger("airflow.task")


class NoCandidateError(RuntimeError):
    """Every candidate of the grid failed: nothing to register."""


class NotEnoughDataError(RuntimeError):
    """Too few validated days to train and hold out (a new install, or a window before the data)."""


MIN_TRAIN_DAYS = 3  # days of training rows needed on top of the holdout


def run_folder(settings: Settings, run_id: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", run_id)
    return settings.training_sets_dir / safe


def _ends(lake_root: str, zone: str, table: str, start: datetime, end: datetime) -> list[datetime]:
    """Ends of the daily partitions of `table` in `zone` inside [start, end)."""
    from include.lake.partitions import parse_interval_key, partitions_between

    files = partitions_between(lake_root, zone, table, start, end)  # type: ignore[arg-type]
    return [parse_interval_key(Path(f).parent.name.removeprefix("interval="))[1] for f in files]


def ready_days(lake_root: str, start: datetime, end: datetime) -> int:
    """Days in [start, end) with validated outcomes (labels) AND every feature view's partition."""
    from include.features.engineering import FEATURE_TABLES
    from include.source.dataset import FLIGHT_OUTCOMES

    days = set(_ends(lake_root, "validated", FLIGHT_OUTCOMES.name, start, end))
    for table in FEATURE_TABLES:
        days &= set(_ends(lake_root, "features", table, start, end))
    return len(days)


def latest_window_end(lake_root: str) -> datetime:
    """Default end of the training window: the day before the latest day that has both validated
    outcomes and features (the labels of that latest day are still arriving)."""
    from include.features.engineering import FEATURE_TABLES
    from include.source.dataset import FLIGHT_OUTCOMES

    everything = (datetime(1970, 1, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1))
    latest = [max(_ends(lake_root, "validated", FLIGHT_OUTCOMES.name, *everything), default=None)]
    latest += [max(_ends(lake_root, "features", t, *everything), default=None) for t in FEATURE_TABLES]
    if any(x is None for x in latest):
        raise NotEnoughDataError(
            f"no validated flight_outcomes or no feature partitions under {lake_root} yet: "
            "run ingest_flights and materialize_features first"
        )
    return min(x for x in latest if x is not None) - timedelta(days=1)


def prepare_training_data(
    settings: Settings,
    store: Any,
    window_end: datetime,
    window_days: int,
    holdout_days: int,
    run_id: str,
) -> dict[str, Any]:
    """Training set from Feast for [end - days, end), split by time, written for the candidates."""
    start = window_end - timedelta(days=window_days)
    have = ready_days(settings.lake_root, start, window_end)
    if have < holdout_days + MIN_TRAIN_DAYS:
        raise NotEnoughDataError(
            f"only {have} day(s) with validated outcomes and features in "
            f"[{start:%Y-%m-%d}, {window_end:%Y-%m-%d}); "
            f"training needs at least {holdout_days + MIN_TRAIN_DAYS} ({holdout_days} held out). "
            "Ingest more days (ingest_flights) or choose another window."
        )
    ts = build_training_set(
        store,
        settings.lake_root,
        start,
        window_end,
        FEATURE_SERVICE,
        timedelta(hours=settings.prediction_lead_hours),
    )
    split = training.time_split(ts.frame, "scheduled_departure", holdout_days)
    folder = run_folder(settings, run_id)
    folder.mkdir(parents=True, exist_ok=True)
    split.train.to_parquet(folder / "train.parquet", index=False)
    split.holdout.to_parquet(folder / "holdout.parquet", index=False)
    meta = {
        **ts.meta,
        "feature_columns": ts.feature_columns,
        "train_rows": len(split.train),
        "holdout_rows": len(split.holdout),
        "holdout_start": split.holdout_start.isoformat(),
        "holdout_late_share": float(split.holdout[LABEL].mean()),
    }
    (folder / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
    log.info(
        "training set %s..%s: %d train rows, %d holdout rows from %s (late share %.3f / %.3f)",
        start.date(),
        window_end.date(),
        meta["train_rows"],
        meta["holdout_rows"],
        split.holdout_start.date(),
        float(split.train[LABEL].mean()),
        meta["holdout_late_share"],
    )
    return {
        "folder": str(folder),
        "window_start": start.isoformat(),
        "window_end": window_end.isoformat(),
        "holdout_start": split.holdout_start.isoformat(),
        "train_rows": meta["train_rows"],
        "holdout_rows": meta["holdout_rows"],
        "feature_service": FEATURE_SERVICE,
        "partitions": len(ts.meta["partitions"]),
    }


def _load(prepared: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    folder = Path(prepared["folder"])
    meta = json.loads((folder / "meta.json").read_text())
    return pd.read_parquet(folder / "train.parquet"), pd.read_parquet(folder / "holdout.parquet"), meta


def start_parent_run(settings: Settings, prepared: dict[str, Any], tags: dict[str, str], params: dict) -> str:
    """The DAG run's MLflow run: lineage, windows and the Params; candidates are its children."""
    import mlflow

    _, _, meta = _load(prepared)
    exp = tracking.experiment_id(settings)
    with mlflow.start_run(experiment_id=exp, run_name=f"train_model {tags.get('airflow.run_id', '')}") as run:
        mlflow.set_tags({**tags, "git_commit": tracking.git_commit(), "feature_service": FEATURE_SERVICE})
        mlflow.log_params({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in params.items()})
        mlflow.log_dict(meta, "lineage.json")
        return run.info.run_id


def _lineage_tags(meta: dict[str, Any]) -> dict[str, str]:
    import hashlib

    digest = hashlib.sha256(json.dumps(meta["partitions"], sort_keys=True).encode()).hexdigest()
    return {
        "feature_service": meta["feature_service"],
        "window_start": meta["window_start"],
        "window_end": meta["window_end"],
        "holdout_start": meta["holdout_start"],
        "partitions": str(len(meta["partitions"])),
        "partitions_sha256": digest,
    }


def train_candidate(
    settings: Settings,
    prepared: dict[str, Any],
    spec: dict[str, Any],
    parent_run_id: str,
    tags: dict[str, str],
    shuffle_labels: bool = False,
) -> dict[str, Any]:
    """Fit one spec, measure it on the holdout, log everything to a child MLflow run.

    One thread per candidate: Airflow runs two candidates at a time on 2 cores, and OpenMP
    threads of several processes competing for the same cores made a 2 s fit take minutes."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _train_candidate(settings, prepared, spec, parent_run_id, tags, shuffle_labels)


def _train_candidate(
    settings: Settings,
    prepared: dict[str, Any],
    spec: dict[str, Any],
    parent_run_id: str,
    tags: dict[str, str],
    shuffle_labels: bool,
) -> dict[str, Any]:
    import matplotlib.pyplot as plt
    import mlflow
    from mlflow.models import infer_signature

    train, holdout, meta = _load(prepared)
    features = meta["feature_columns"]
    columns = training.input_columns(features)
    name = training.candidate_name(spec)
    model, fit_seconds = training.fit(spec, train, features, shuffle_labels=shuffle_labels)
    p = training.scores(model, holdout, columns)
    y = holdout[LABEL].to_numpy()
    measured = training.metrics(y, p, settings.decision_threshold)
    slices = training.slice_auc(holdout, p)
    importance = training.permutation_importance(model, holdout, columns)
    size_mb = training.model_size_mb(model)
    latency_ms = training.single_row_latency_ms(model, holdout, columns)
    tracking.client(settings)
    exp = tracking.experiment_id(settings)
    with mlflow.start_run(experiment_id=exp, run_name=name, parent_run_id=parent_run_id) as run:
        mlflow.set_tags(
            {**tags, **_lineage_tags(meta), "git_commit": tracking.git_commit(), "candidate": name}
        )
        if shuffle_labels:
            mlflow.set_tag("shuffle_labels", "true")
        mlflow.log_params(
            {**spec, "threshold": settings.decision_threshold, "shuffle_labels": shuffle_labels}
        )
        mlflow.log_metrics(
            {
                **measured,
                "fit_seconds": fit_seconds,
                "train_rows": len(train),
                "holdout_rows": len(holdout),
                "model_size_mb": size_mb,
                "single_row_latency_ms": latency_ms,
            }
        )
        mlflow.log_dict(meta, "lineage.json")
        mlflow.log_dict({k: {"roc_auc": a, "rows": n} for k, (a, n) in slices.items()}, "slices.json")
        mlflow.log_dict(importance, "permutation_importance.json")
        reference, reference_meta = monitoring.reference_frame(
            train, holdout, columns, training.scores(model, train, columns), p
        )
        monitor_steps.log_reference(reference, {**reference_meta, "holdout_roc_auc": measured["roc_auc"]})
        fig = training.roc_and_calibration_figure(y, p, name)
        mlflow.log_figure(fig, "plots/roc_calibration.png")
        plt.close(fig)
        fig = training.importance_figure(importance)
        mlflow.log_figure(fig, "plots/permutation_importance.png")
        plt.close(fig)
        example = holdout[columns].head(5)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict_proba(example)[:, 1]),
            input_example=example,
            pip_requirements=tracking.pip_requirements(),
            skops_trusted_types=tracking.SKOPS_TRUSTED_TYPES,
        )
        run_id = run.info.run_id
    log.info(
        "candidate %s: ROC AUC %.4f, PR AUC %.4f, log loss %.4f, Brier %.4f (fit %.1f s, MLflow run %s)",
        name,
        measured["roc_auc"],
        measured["pr_auc"],
        measured["log_loss"],
        measured["brier"],
        fit_seconds,
        run_id,
    )
    return {
        "name": name,
        "spec": spec,
        "run_id": run_id,
        "model_uri": info.model_uri,
        "metrics": measured,
        "size_mb": size_mb,
        "latency_ms": latency_ms,
    }


def register_best(settings: Settings, candidates: list[dict[str, Any]], parent_run_id: str) -> dict[str, Any]:
    """Register the candidate with the best holdout ROC AUC; alias `challenger` points at it."""
    import mlflow

    done = [c for c in candidates if c]
    if not done:
        raise NoCandidateError("no candidate finished: see the failed train_candidate tasks' logs")
    best = max(done, key=lambda c: (c["metrics"]["roc_auc"], -c["size_mb"]))
    tracking.client(settings)
    mv = mlflow.register_model(
        best["model_uri"],
        settings.model_name,
        tags={"candidate": best["name"], "run_id": best["run_id"], "parent_run_id": parent_run_id},
    )
    tracking.set_alias(settings, CHALLENGER, str(mv.version), run_id=best["run_id"])
    client = tracking.client(settings)
    client.set_tag(parent_run_id, "best_candidate", best["name"])
    client.set_tag(parent_run_id, "registered_version", str(mv.version))
    ranking = sorted(done, key=lambda c: -c["metrics"]["roc_auc"])
    log.info(
        "candidates by holdout ROC AUC:\n%s\nregistered %s version %s (alias challenger)",
        "\n".join(f"  {c['metrics']['roc_auc']:.4f}  {c['name']}" for c in ranking),
        settings.model_name,
        mv.version,
    )
    model_card.publish_or_warn(settings, str(mv.version), "registered")
    return {**best, "version": str(mv.version)}


def evaluate_gate(
    settings: Settings, store: Any, prepared: dict[str, Any], registered: dict[str, Any]
) -> dict[str, Any]:
    """Measure the challenger, the champion and the baseline on the same holdout; decide.

    Single-row latency is measured with one thread, as the service runs: with OpenMP's default
    threads a busy machine made one HGB prediction take a second and failed the latency check."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _evaluate_gate(settings, store, prepared, registered)


def _evaluate_gate(
    settings: Settings, store: Any, prepared: dict[str, Any], registered: dict[str, Any]
) -> dict[str, Any]:
    from include.features.store import service_views

    _, holdout, _ = _load(prepared)
    y = holdout[LABEL].to_numpy()
    version = registered["version"]
    candidate_model = tracking.load_model(settings, version)  # what serving will load
    candidate_cols = tracking.model_input_columns(settings, version)
    expected_cols = training.serving_columns(service_views(store, FEATURE_SERVICE))
    p = training.scores(candidate_model, holdout, candidate_cols)
    candidate = gate.ModelEvidence(
        training.metrics(y, p, settings.decision_threshold)["roc_auc"], training.slice_auc(holdout, p)
    )

    champion_info = tracking.champion(settings)
    champion = None
    champion_note = "none (first model: absolute checks only)"
    if champion_info is not None and champion_info.version != version:
        champ_cols = tracking.model_input_columns(settings, champion_info.version)
        missing = sorted(set(champ_cols) - set(holdout.columns))
        if missing:
            champion_note = f"version {champion_info.version} cannot score this holdout (missing {missing})"
        else:
            champ_model = tracking.load_model(settings, champion_info.version)
            cp = training.scores(champ_model, holdout, champ_cols)
            champion = gate.ModelEvidence(training.roc_auc(y, cp), training.slice_auc(holdout, cp))
            champion_note = f"version {champion_info.version}"
    decision = gate.decide(
        candidate,
        baseline_roc_auc=training.baseline_auc(holdout),
        champion=champion,
        signature_ok=sorted(candidate_cols) == sorted(expected_cols),
        size_mb=registered["size_mb"],
        latency_ms=training.single_row_latency_ms(candidate_model, holdout, candidate_cols),
        t=gate.GateThresholds(),
    )
    report = {
        "model_name": settings.model_name,
        "version": version,
        "candidate": registered["name"],
        "run_id": registered["run_id"],
        "champion": champion_note,
        "champion_version": champion_info.version if champion_info else None,
        "holdout_rows": len(holdout),
        "thresholds": gate.GateThresholds().as_dict(),
        **decision.as_dict(),
        "reasons": decision.reasons,
        "table": decision.as_table(),
        "decided_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    client = tracking.client(settings)
    verdict = "deploy" if decision.passed else "reject"
    client.set_tag(registered["run_id"], "gate.decision", verdict)
    client.set_tag(
        registered["run_id"], "gate.reasons", "; ".join(decision.reasons)[:4900] or "all checks passed"
    )
    client.log_text(registered["run_id"], json.dumps(report, indent=2), "gate_decision.json")
    client.set_model_version_tag(settings.model_name, version, "gate.decision", verdict)
    client.set_model_version_tag(
        settings.model_name,
        version,
        "gate.reasons",
        "; ".join(decision.reasons)[:4900] or "all checks passed",
    )
    log.info(
        "gate for %s version %s against champion %s on %d holdout rows:\n%s",
        settings.model_name,
        version,
        champion_note,
        len(holdout),
        decision.as_table(),
    )
    model_card.publish_or_warn(settings, version, "gate")
    return report
