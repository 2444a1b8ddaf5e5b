"""The deployment gate: a pure predicate over metrics measured on ONE holdout.

A candidate deploys only if every check holds: an absolute floor; it beats the naive baseline
(the route's recent late share) by a margin; it is not worse than the champion beyond a
tolerance; every slice (carrier, origin) with enough rows is above its floor and has not
regressed against the champion beyond a tolerance; its widest gap between slices (late-flag
rate, recall or calibration; training/fairness.py) is not wider than the champion's beyond a
tolerance; its signature is what serving expects; its size and single-row latency are within
bounds. Without a champion (the first model) the comparisons with it are skipped, the rest
still apply; a champion that exists but could not be measured on the holdout is a failed check
(`champion_measured`), never the first model's rules. The decision carries every check and its
numbers, for the task log (a table), MLflow (tags + JSON) and the on-call page.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, TypedDict


@dataclass(frozen=True)
class GateThresholds:
    """Every threshold of the gate, in one place. ROC AUC is the ranking metric compared."""

    min_roc_auc: float = 0.60
    baseline_margin: float = 0.02
    champion_tolerance: float = 0.005
    slice_floor_roc_auc: float = 0.52
    slice_min_rows: int = 200
    slice_tolerance: float = 0.03
    fairness_tolerance: float = 0.3
    """The candidate's widest slice gap (late-flag rate, recall or calibration between carriers,
    origins or hour bands with `slice_min_rows` flights; training/fairness.py) may exceed the
    champion's on the same holdout by at most this. Ordinary weekly retrains of 2013 widened it
    by up to 0.28 (median 0.02; benchmarks/attribution_calibration.py): 0.05 refused 7 of 23."""
    fairness_min_late: int = 30
    """... recall gaps only between slices with this many late flights."""
    max_size_mb: float = 50.0
    max_latency_ms: float = 50.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ModelEvidence:
    """What was measured of one model on the shared holdout."""

    roc_auc: float
    slices: dict[str, tuple[float, int]] = field(default_factory=dict)  # slice -> (roc_auc, rows)
    widest_gap: tuple[str, float] | None = None  # (metric.dimension, gap) on the holdout


class GateCheckRecord(TypedDict):
    """A check of the gate as JSON."""

    name: str
    passed: bool
    detail: str


class GateDecisionRecord(TypedDict):
    """The gate's decision as JSON (`GateDecision.as_dict`): the verdict and every check."""

    passed: bool
    checks: list[GateCheckRecord]


@dataclass(frozen=True)
class GateCheck:
    name: str
    passed: bool
    detail: str


@dataclass(frozen=True)
class GateDecision:
    passed: bool
    checks: list[GateCheck]

    @property
    def reasons(self) -> list[str]:
        """Why it failed (empty when it passed)."""
        return [f"{c.name}: {c.detail}" for c in self.checks if not c.passed]

    def as_dict(self) -> GateDecisionRecord:
        return GateDecisionRecord(
            passed=self.passed,
            checks=[GateCheckRecord(name=c.name, passed=c.passed, detail=c.detail) for c in self.checks],
        )

    def as_table(self) -> str:
        width = max(len(c.name) for c in self.checks)
        rows = [f"{'check':<{width}}  result  detail"]
        rows += [f"{c.name:<{width}}  {'pass' if c.passed else 'FAIL':<6}  {c.detail}" for c in self.checks]
        rows.append(f"decision: {'DEPLOY' if self.passed else 'REJECT'}")
        return "\n".join(rows)


def decide(
    candidate: ModelEvidence,
    baseline_roc_auc: float,
    champion: ModelEvidence | None,
    signature_ok: bool,
    size_mb: float,
    latency_ms: float,
    t: GateThresholds | None = None,
    champion_unmeasured: str | None = None,
) -> GateDecision:
    """Apply every check; the candidate passes only if all of them pass.

    `champion_unmeasured`: why an existing champion could not be measured (then `champion` is
    None and the candidate is rejected with that reason)."""
    t = t or GateThresholds()
    auc = candidate.roc_auc
    checks = [
        GateCheck("absolute_floor", auc >= t.min_roc_auc, f"ROC AUC {auc:.4f} >= {t.min_roc_auc:.4f}"),
        GateCheck(
            "beats_baseline",
            auc >= baseline_roc_auc + t.baseline_margin,
            f"ROC AUC {auc:.4f} >= baseline {baseline_roc_auc:.4f} + {t.baseline_margin:.4f}",
        ),
    ]
    if champion_unmeasured is not None:
        checks.append(GateCheck("champion_measured", False, champion_unmeasured))
    if champion is not None:
        checks.append(
            GateCheck(
                "not_worse_than_champion",
                auc >= champion.roc_auc - t.champion_tolerance,
                f"ROC AUC {auc:.4f} >= champion {champion.roc_auc:.4f} - {t.champion_tolerance:.4f}",
            )
        )
    for name, (slice_auc, rows) in sorted(candidate.slices.items()):
        if rows < t.slice_min_rows:
            continue  # too few rows to judge; reported by the caller's slice table
        checks.append(
            GateCheck(
                f"slice_floor[{name}]",
                slice_auc >= t.slice_floor_roc_auc,
                f"ROC AUC {slice_auc:.4f} >= {t.slice_floor_roc_auc:.4f} ({rows} rows)",
            )
        )
        if champion is not None and name in champion.slices:
            before = champion.slices[name][0]
            checks.append(
                GateCheck(
                    f"slice_regression[{name}]",
                    slice_auc >= before - t.slice_tolerance,
                    f"ROC AUC {slice_auc:.4f} >= champion {before:.4f} - {t.slice_tolerance:.4f}",
                )
            )
    if champion is not None and candidate.widest_gap is not None and champion.widest_gap is not None:
        (name, gap), (before_name, before) = candidate.widest_gap, champion.widest_gap
        checks.append(
            GateCheck(
                "fairness_gap",
                gap <= before + t.fairness_tolerance,
                f"widest slice gap {gap:.3f} ({name}) <= champion {before:.3f} ({before_name}) "
                f"+ {t.fairness_tolerance:.3f}",
            )
        )
    checks += [
        GateCheck("signature", signature_ok, "inputs and output match what serving sends and expects"),
        GateCheck("size", size_mb <= t.max_size_mb, f"{size_mb:.1f} MB <= {t.max_size_mb:.1f} MB"),
        GateCheck(
            "latency", latency_ms <= t.max_latency_ms, f"{latency_ms:.1f} ms <= {t.max_latency_ms:.1f} ms"
        ),
    ]
    return GateDecision(all(c.passed for c in checks), checks)
