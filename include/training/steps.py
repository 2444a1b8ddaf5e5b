"""The steps of train_model, one function per task. No Airflow here: XCom-sized dicts in and out.

prepare_training_data -> train_candidate (one per grid entry) -> register_best -> evaluate_gate
(gate_steps.py). Data moves through files (data.py); MLflow keeps the record: a parent run per
DAG run, a child run per candidate (with its monitoring reference, reference.py), the best
registered with alias `challenger`, and the gate decision as tags and JSON on the candidate run
and the version.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from include.core.settings import CHALLENGER, Settings
from include.features.store import FEATURE_SERVICE, definitions_sha256
from include.features.training_set import LABEL, build_training_set
from include.registry import model_card, tracking
from include.training import candidates as training
from include.training.contracts import CandidateResult, PreparedData, PreparedRun, RegisteredCandidate
from include.training.data import load_prepared, require_days, run_folder, write_split
from include.training.reference import behaviour_reference, log_reference, reference_frame

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger("airflow.task")


class NoCandidateError(RuntimeError):
    """Every candidate of the grid failed: nothing to register."""


# --- prepare_training_data -------------------------------------------------------------------


def prepare_training_data(
    settings: Settings,
    store: Any,
    window_end: datetime,
    window_days: int,
    holdout_days: int,
    run_id: str,
) -> PreparedData:
    """Training set from Feast for [end - days, end), split by time, written for the candidates."""
    start = window_end - timedelta(days=window_days)
    require_days(settings.lake_root, start, window_end, holdout_days)
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
    meta = {
        **ts.meta,
        "feature_definitions_sha256": definitions_sha256(),
        "feature_columns": ts.feature_columns,
        "train_rows": len(split.train),
        "holdout_rows": len(split.holdout),
        "holdout_start": split.holdout_start.isoformat(),
        "holdout_late_share": float(split.holdout[LABEL].mean()),
    }
    write_split(folder, split, meta)
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
    return PreparedData(
        folder=str(folder),
        window_start=start.isoformat(),
        window_end=window_end.isoformat(),
        holdout_start=split.holdout_start.isoformat(),
        train_rows=len(split.train),
        holdout_rows=len(split.holdout),
        feature_service=FEATURE_SERVICE,
        partitions=len(ts.meta["partitions"]),
    )


def start_parent_run(
    settings: Settings, prepared: PreparedData, tags: Mapping[str, str], params: Mapping[str, Any]
) -> str:
    """The DAG run's MLflow run: lineage, windows and the Params; candidates are its children."""
    import mlflow

    _, _, meta = load_prepared(prepared)
    name = f"train_model {tags.get('airflow.run_id', '')}"
    with tracking.registry_call("open the training run (experiment, tags, params, lineage)"):
        exp = tracking.experiment_id(settings)
        with mlflow.start_run(experiment_id=exp, run_name=name) as run:
            mlflow.set_tags({**tags, **tracking.code_tags(), "feature_service": FEATURE_SERVICE})
            mlflow.log_params(
                {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in params.items()}
            )
            mlflow.log_dict(meta, "lineage.json")
            return run.info.run_id


def open_parent_run(
    settings: Settings,
    prepared: PreparedData,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    answered: Sequence[Mapping[str, Any]],
) -> PreparedRun:
    """`start_parent_run`, recording the retraining requests of monitor_model this run answers."""
    with_requests = dict(tags)
    if answered:
        with_requests["retrain_requests"] = json.dumps(answered)[:4000]
        log.info("answering retraining requests of monitor_model: %s", answered)
    parent = start_parent_run(settings, prepared, with_requests, params)
    return {**prepared, "parent_run_id": parent, "retrain_request_ids": [int(r["id"]) for r in answered]}


# --- train_candidate -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Measured:
    """A fitted candidate and what was measured of it on the holdout."""

    name: str
    model: Any
    columns: list[str]
    train: pd.DataFrame
    holdout: pd.DataFrame
    meta: dict[str, Any]
    y: np.ndarray
    p: np.ndarray
    metrics: dict[str, float]
    slices: dict[str, tuple[float, int]]
    importance: dict[str, float]
    fit_seconds: float
    size_mb: float
    latency_ms: float


def _lineage_tags(meta: dict[str, Any]) -> dict[str, str]:
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
    prepared: PreparedData,
    spec: dict[str, Any],
    parent_run_id: str,
    tags: Mapping[str, str],
    shuffle_labels: bool = False,
) -> CandidateResult:
    """Fit one spec, measure it on the holdout, log everything to a child MLflow run.

    One thread per candidate: Airflow runs two candidates at a time on 2 cores, and OpenMP
    threads of several processes competing for the same cores made a 2 s fit take minutes."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        measured = _fit_and_measure(settings, prepared, spec, shuffle_labels)
        with tracking.registry_call(f"log candidate {measured.name}'s run and model"):
            run_id, model_uri = _log_candidate_run(
                settings, measured, spec, parent_run_id, tags, shuffle_labels
            )
    m = measured.metrics
    log.info(
        "candidate %s: ROC AUC %.4f, PR AUC %.4f, log loss %.4f, Brier %.4f (fit %.1f s, MLflow run %s)",
        measured.name,
        m["roc_auc"],
        m["pr_auc"],
        m["log_loss"],
        m["brier"],
        measured.fit_seconds,
        run_id,
    )
    return CandidateResult(
        name=measured.name,
        spec=spec,
        run_id=run_id,
        model_uri=model_uri,
        metrics=m,
        size_mb=measured.size_mb,
        latency_ms=measured.latency_ms,
    )


def _fit_and_measure(
    settings: Settings, prepared: PreparedData, spec: dict[str, Any], shuffle_labels: bool
) -> _Measured:
    train, holdout, meta = load_prepared(prepared)
    features = meta["feature_columns"]
    columns = training.input_columns(features)
    name = training.candidate_name(spec)
    model, fit_seconds = training.fit(spec, train, features, shuffle_labels=shuffle_labels)
    p = training.scores(model, holdout, columns)
    y = holdout[LABEL].to_numpy()
    return _Measured(
        name=name,
        model=model,
        columns=columns,
        train=train,
        holdout=holdout,
        meta=meta,
        y=y,
        p=p,
        metrics=training.metrics(y, p, settings.decision_threshold),
        slices=training.slice_auc(holdout, p),
        importance=training.permutation_importance(model, holdout, columns),
        fit_seconds=fit_seconds,
        size_mb=training.model_size_mb(model),
        latency_ms=training.single_row_latency_ms(model, holdout, columns),
    )


def _log_candidate_run(
    settings: Settings,
    m: _Measured,
    spec: dict[str, Any],
    parent_run_id: str,
    tags: Mapping[str, str],
    shuffle_labels: bool,
) -> tuple[str, str]:
    """The candidate's child run: tags, params, metrics, lineage, slices, importance, monitoring
    reference, plots and the model; returns the run id and the model's URI."""
    import mlflow

    tracking.client(settings)
    exp = tracking.experiment_id(settings)
    with mlflow.start_run(experiment_id=exp, run_name=m.name, parent_run_id=parent_run_id) as run:
        mlflow.set_tags(
            {**tags, **_lineage_tags(m.meta), "git_commit": tracking.git_commit(), "candidate": m.name}
        )
        if shuffle_labels:
            mlflow.set_tag("shuffle_labels", "true")
        mlflow.log_params(
            {
                **spec,
                "seed": training.SEED,
                "threshold": settings.decision_threshold,
                "shuffle_labels": shuffle_labels,
            }
        )
        mlflow.log_metrics(
            {
                **m.metrics,
                "fit_seconds": m.fit_seconds,
                "train_rows": len(m.train),
                "holdout_rows": len(m.holdout),
                "model_size_mb": m.size_mb,
                "single_row_latency_ms": m.latency_ms,
            }
        )
        mlflow.log_dict(m.meta, "lineage.json")
        mlflow.log_dict({k: {"roc_auc": a, "rows": n} for k, (a, n) in m.slices.items()}, "slices.json")
        mlflow.log_dict(m.importance, "permutation_importance.json")
        reference, reference_meta = reference_frame(
            m.train, m.holdout, m.columns, training.scores(m.model, m.train, m.columns), m.p
        )
        behaviour = behaviour_reference(
            m.model, m.columns, m.train, m.holdout, m.p, settings.decision_threshold
        )
        log_reference(reference, {**reference_meta, **behaviour, "holdout_roc_auc": m.metrics["roc_auc"]})
        _log_plots(m)
        info = _log_model(m)
        return run.info.run_id, info.model_uri


def _log_plots(m: _Measured) -> None:
    import matplotlib.pyplot as plt
    import mlflow

    fig = training.roc_and_calibration_figure(m.y, m.p, m.name)
    mlflow.log_figure(fig, "plots/roc_calibration.png")
    plt.close(fig)
    fig = training.importance_figure(m.importance)
    mlflow.log_figure(fig, "plots/permutation_importance.png")
    plt.close(fig)


def _log_model(m: _Measured) -> Any:
    """The fitted pipeline as the run's MLflow model (what the registry and serving load)."""
    import mlflow
    from mlflow.models import infer_signature

    example = m.holdout[m.columns].head(5)
    with tracking.quiet_skops():
        return mlflow.sklearn.log_model(
            m.model,
            name="model",
            signature=infer_signature(example, m.model.predict_proba(example)[:, 1]),
            input_example=example,
            pip_requirements=tracking.pip_requirements(),
            skops_trusted_types=tracking.SKOPS_TRUSTED_TYPES,
        )


# --- register_best ---------------------------------------------------------------------------


def register_best(
    settings: Settings, candidates: Sequence[CandidateResult | None], parent_run_id: str
) -> RegisteredCandidate:
    """Register the candidate with the best holdout ROC AUC; alias `challenger` points at it."""
    import mlflow

    done = [c for c in candidates if c]
    if not done:
        raise NoCandidateError("no candidate finished: see the failed train_candidate tasks' logs")
    best = max(done, key=lambda c: (c["metrics"]["roc_auc"], -c["size_mb"]))
    client = tracking.client(settings)
    with tracking.registry_call(f"register {best['name']} as a version of {settings.model_name}"):
        # A retry of this task (killed after registering) finds its version instead of adding one.
        query = f"name = '{settings.model_name}' and run_id = '{best['run_id']}'"
        already = client.search_model_versions(query)
        if already:
            mv = min(already, key=lambda v: int(v.version))
            log.info("%s version %s already holds this run's model: reused", settings.model_name, mv.version)
        else:
            mv = mlflow.register_model(
                best["model_uri"],
                settings.model_name,
                tags={"candidate": best["name"], "run_id": best["run_id"], "parent_run_id": parent_run_id},
            )
        tracking.set_alias(settings, CHALLENGER, str(mv.version), run_id=best["run_id"])
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
