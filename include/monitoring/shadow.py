"""Should the shadow replace the champion? A pure decision on the same labelled flights.

Both models scored every flight of a night (score_flights); once a night's labels are complete
(the monitoring rule: its outcomes and the next day's are validated, enough flights labelled),
the night counts. The decision, like the gate's, returns its reasons:

- `wait`: fewer labelled nights than required (`MLOPS_SHADOW_NIGHTS`), or the evidence is not yet
  conclusive and the shadow has not used up its `max_nights`;
- `promote`: over the pooled labelled flights, the shadow's ROC AUC is at least the champion's
  plus `promote_margin`, its calibration (|mean score - late share|) is not worse than the
  champion's by more than `calibration_tolerance`, and no carrier slice (with enough flights)
  lost more than `slice_tolerance` of ROC AUC;
- `retire`: the shadow is worse than the champion by more than `retire_margin`, or it reached
  `max_nights` without earning promotion.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from include.monitoring.contracts import PromotionDecision


@dataclass(frozen=True)
class ShadowThresholds:
    """Every threshold of the promotion check, in one place (ROC AUC is the ranking metric)."""

    nights: int = 3
    max_nights: int = 7
    promote_margin: float = 0.0
    retire_margin: float = 0.01
    calibration_tolerance: float = 0.02
    slice_tolerance: float = 0.03
    slice_min_rows: int = 200

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Night:
    """One labelled night, both models on the same flights."""

    day: str
    flights: int
    frame: pd.DataFrame = field(repr=False)  # flight_id, carrier, late, champion, shadow


def _auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else float("nan")


def _quality(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {
        "roc_auc": round(_auc(y, p), 4),
        "calibration_gap": round(abs(float(p.mean()) - float(y.mean())), 4),
        "brier": round(float(np.mean((p - y) ** 2)), 4),
    }


def _slices(frame: pd.DataFrame, t: ShadowThresholds) -> dict[str, dict[str, float]]:
    out = {}
    for carrier, part in frame.groupby("carrier"):
        y = part["late"].to_numpy()
        if len(part) < t.slice_min_rows or len(np.unique(y)) < 2:
            continue
        out[str(carrier)] = {
            "champion": round(_auc(y, part["champion"].to_numpy()), 4),
            "shadow": round(_auc(y, part["shadow"].to_numpy()), 4),
            "rows": float(len(part)),
        }
    return out


def decide(nights: list[Night], t: ShadowThresholds) -> PromotionDecision:
    """The promotion check's decision over the labelled nights so far (oldest first)."""
    empty: dict[str, float] = {}
    base: PromotionDecision = {
        "decision": "wait",
        "reasons": [],
        "labelled_nights": len(nights),
        "flights": sum(n.flights for n in nights),
        "champion": empty,
        "shadow": empty,
        "slices": {},
        "thresholds": t.as_dict(),
    }
    if len(nights) < t.nights:
        base["reasons"] = [f"{len(nights)} of {t.nights} labelled nights: waiting for more"]
        return base
    frame = pd.concat([n.frame for n in nights], ignore_index=True)
    y = frame["late"].to_numpy()
    champion = _quality(y, frame["champion"].to_numpy())
    shadow = _quality(y, frame["shadow"].to_numpy())
    slices = _slices(frame, t)
    base["champion"], base["shadow"], base["slices"] = champion, shadow, slices
    auc_c, auc_s = champion["roc_auc"], shadow["roc_auc"]
    if np.isnan(auc_c) or np.isnan(auc_s):
        base["reasons"] = ["the labelled flights hold one class only: no ROC AUC yet"]
        return base
    compared = f"shadow ROC AUC {auc_s:.4f} vs champion {auc_c:.4f} on the same {len(frame)} flights"
    if auc_s < auc_c - t.retire_margin:
        base["decision"], base["reasons"] = "retire", [f"{compared}: worse by more than {t.retire_margin}"]
        return base
    failed = []
    if auc_s < auc_c + t.promote_margin:
        failed.append(f"{compared}: not better by {t.promote_margin}")
    gap_c, gap_s = champion["calibration_gap"], shadow["calibration_gap"]
    if gap_s > gap_c + t.calibration_tolerance:
        failed.append(f"calibration gap {gap_s:.4f} > champion's {gap_c:.4f} + {t.calibration_tolerance}")
    for carrier, s in sorted(slices.items()):
        if s["shadow"] < s["champion"] - t.slice_tolerance:
            failed.append(
                f"carrier {carrier}: ROC AUC {s['shadow']:.4f} < champion {s['champion']:.4f} - "
                f"{t.slice_tolerance} ({int(s['rows'])} flights)"
            )
    if not failed:
        base["decision"], base["reasons"] = "promote", [f"{compared}; calibration and every slice hold"]
    elif len(nights) >= t.max_nights:
        base["decision"] = "retire"
        base["reasons"] = [*failed, f"{len(nights)} nights without earning promotion"]
    else:
        base["reasons"] = failed
    return base
