"""The evaluate_gate step of train_model: evidence on one holdout, the decision, its record. I/O.

The challenger (as serving will load it, from the registry), the champion and the naive baseline
are measured on the same holdout; gate.py decides; the decision goes to the task log (a table),
to the candidate's MLflow run (tags and gate_decision.json) and to the registered version's tags.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from include.core.settings import Settings
from include.features.store import FEATURE_SERVICE
from include.features.training_set import LABEL
from include.registry import model_card, tracking
from include.training import candidates as training
from include.training import gate
from include.training.contracts import GateReport, PreparedData, RegisteredCandidate, Rejection
from include.training.data import load_prepared

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

log = logging.getLogger("airflow.task")


def evaluate_gate(
    settings: Settings, store: Any, prepared: PreparedData, registered: RegisteredCandidate
) -> GateReport:
    """Measure the challenger, the champion and the baseline on the same holdout; decide.

    Single-row latency is measured with one thread, as the service runs: with OpenMP's default
    threads a busy machine made one HGB prediction take a second and failed the latency check."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _evaluate_gate(settings, store, prepared, registered)


def widest_gap(holdout: pd.DataFrame, p: np.ndarray, threshold: float) -> tuple[str, float] | None:
    """The widest gap between slices of a model's scores on the holdout (None without slices);
    slices as big as the gate's slice checks ask (`slice_min_rows`, `fairness_min_late`)."""
    from include.training import fairness

    t = gate.GateThresholds()
    gaps = fairness.slice_gaps(
        holdout, holdout[LABEL].to_numpy(), p, threshold, t.slice_min_rows, t.fairness_min_late
    )
    return fairness.worst_gap(gaps) if gaps else None


def _champion_evidence(
    settings: Settings, version: str, holdout: pd.DataFrame, y: np.ndarray
) -> tuple[gate.ModelEvidence | None, str, str | None, str | None]:
    """The champion measured on the holdout, what it is in words, its version, and why it could
    not be measured (None when it was, or when there is no champion: the first model).

    A champion that exists but cannot score this holdout (missing columns, a refused or failing
    load) is a failed gate check, never the first model's rules. A registry outage raises
    (RegistryUnavailableError): the task fails and retries."""
    champion_info = tracking.champion(settings)
    if champion_info is None or champion_info.version == version:
        note = "none (first model: absolute checks only)"
        return None, note, champion_info.version if champion_info else None, None
    champion_version = champion_info.version
    note = f"version {champion_version}"
    try:
        champ_cols = tracking.model_input_columns(settings, champion_version)
        missing = sorted(set(champ_cols) - set(holdout.columns))
        if missing:
            problem = f"champion version {champion_version} cannot score this holdout (missing {missing})"
            return None, note, champion_version, problem
        champ_model = tracking.load_model(settings, champion_version)
        cp = training.scores(champ_model, holdout, champ_cols)
    except tracking.RegistryUnavailableError:
        raise
    except Exception as exc:
        problem = f"champion version {champion_version} could not be measured: {type(exc).__name__}: {exc}"
        return None, note, champion_version, problem[:600]
    evidence = gate.ModelEvidence(
        training.roc_auc(y, cp),
        training.slice_auc(holdout, cp),
        widest_gap(holdout, cp, settings.decision_threshold),
    )
    return evidence, note, champion_version, None


def _evaluate_gate(
    settings: Settings, store: Any, prepared: PreparedData, registered: RegisteredCandidate
) -> GateReport:
    from include.features.store import service_views

    _, holdout, _ = load_prepared(prepared)
    y = holdout[LABEL].to_numpy()
    version = registered["version"]
    # what serving will load; the gate judges it, so its own load needs no passed gate yet
    candidate_model = tracking.load_model(settings, version, candidate=True)
    candidate_cols = tracking.model_input_columns(settings, version)
    expected_cols = training.serving_columns(service_views(store, FEATURE_SERVICE))
    p = training.scores(candidate_model, holdout, candidate_cols)
    candidate = gate.ModelEvidence(
        training.metrics(y, p, settings.decision_threshold)["roc_auc"],
        training.slice_auc(holdout, p),
        widest_gap(holdout, p, settings.decision_threshold),
    )
    champion, champion_note, champion_version, unmeasured = _champion_evidence(settings, version, holdout, y)
    decision = gate.decide(
        candidate,
        baseline_roc_auc=training.baseline_auc(holdout),
        champion=champion,
        champion_unmeasured=unmeasured,
        signature_ok=sorted(candidate_cols) == sorted(expected_cols),
        size_mb=registered["size_mb"],
        latency_ms=training.single_row_latency_ms(candidate_model, holdout, candidate_cols),
        t=gate.GateThresholds(),
    )
    report = _report(settings, registered, champion_note, champion_version, len(holdout), decision)
    _record(settings, report, decision)
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


def _report(
    settings: Settings,
    registered: RegisteredCandidate,
    champion_note: str,
    champion_version: str | None,
    holdout_rows: int,
    decision: gate.GateDecision,
) -> GateReport:
    verdict = decision.as_dict()
    return GateReport(
        model_name=settings.model_name,
        version=registered["version"],
        candidate=registered["name"],
        run_id=registered["run_id"],
        champion=champion_note,
        champion_version=champion_version,
        holdout_rows=holdout_rows,
        thresholds=gate.GateThresholds().as_dict(),
        passed=verdict["passed"],
        checks=verdict["checks"],
        reasons=decision.reasons,
        table=decision.as_table(),
        decided_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def _record(settings: Settings, report: GateReport, decision: gate.GateDecision) -> None:
    """The decision as tags and JSON on the candidate's run, and as tags on the version."""
    client = tracking.client(settings)
    verdict = "deploy" if decision.passed else "reject"
    reasons = "; ".join(decision.reasons)[:4900] or "all checks passed"
    client.set_tag(report["run_id"], "gate.decision", verdict)
    client.set_tag(report["run_id"], "gate.reasons", reasons)
    client.log_text(report["run_id"], json.dumps(report, indent=2), "gate_decision.json")
    client.set_model_version_tag(settings.model_name, report["version"], "gate.decision", verdict)
    client.set_model_version_tag(settings.model_name, report["version"], "gate.reasons", reasons)


def reject(decision: GateReport) -> Rejection:
    """Not deployed: the run and the decision stay in MLflow for audit; the champion is unchanged."""
    log.warning(
        "REJECTED: %s version %s is not deployed; champion unchanged (%s).\nReasons:\n  %s",
        decision["model_name"],
        decision["version"],
        decision["champion"],
        "\n  ".join(decision["reasons"]),
    )
    return Rejection(version=decision["version"], deployed=False, reasons=decision["reasons"])


def responder(response: dict[str, Any] | None) -> str:
    """Who answered the deployment decision, for the version's tags and the log."""
    if not response:
        return "unknown (no answer recorded)"
    if response.get("timed_out"):
        return "nobody: the request timed out (default Reject)"
    from include.registry.deploy import responder_name

    return responder_name(response) or "unknown"


def reject_by_person(settings: Settings, decision: GateReport, response: dict[str, Any] | None) -> Rejection:
    """A candidate the gate passed was rejected in Required Actions (or nobody answered in time):
    recorded on the version (`approval.*` tags, its model card); the champion is unchanged."""
    who = responder(response)
    at = str((response or {}).get("responded_at") or datetime.now(UTC).isoformat())
    name, version = decision["model_name"], str(decision["version"])
    with tracking.registry_call(f"record the rejection of version {version}"):
        client = tracking.client(settings)
        for key, value in {"approval.decision": "reject", "approval.by": who, "approval.at": at}.items():
            client.set_model_version_tag(name, version, key, value)
    model_card.publish_or_warn(settings, version, "rejected in Required Actions")
    log.warning(
        "REJECTED by %s: %s version %s passed the gate but is not deployed; champion unchanged (%s).",
        who,
        name,
        version,
        decision["champion"],
    )
    return Rejection(version=version, deployed=False, reasons=[f"rejected by {who} at {at}"])
