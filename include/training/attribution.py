"""Attribution: what the model's scores depend on, as shares of the features. Pure (no I/O).

A feature's attribution on a set of flights is how much the model's scores move when that
feature alone is shuffled among those flights: mean |p(x) - p(x with the feature permuted)|
(permutation sensitivity). Unlike the training-time permutation importance (the drop of ROC AUC),
it needs no labels and is not drowned by the noise of one day's ROC AUC (0.49-0.74 on ordinary
days), so one night's ~1,000 flights say something. `shares` normalises attributions to sum to 1;
`shift` is the total-variation distance between two share vectors (0: the same reasons; 1:
disjoint ones).

Training keeps, in the monitoring reference, the mean of the training window's daily shares
(shuffled within a day, as a night is) and the largest shift a single day of the window had from
that mean (`reference`); monitoring's attribution-drift check compares a labelled night's shift
with that yardstick (include/monitoring/model_checks.py).

SHAP was not added: the `shap` package is a new dependency with compiled parts, for an
attribution whose mean |value| answers the same question; permutation sensitivity costs one
batch prediction of the stacked shuffled copies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Predict = Callable[["pd.DataFrame"], "np.ndarray"]
CONSTANT_WITHIN_A_DAY = ("dep_weekday", "dep_month")
"""Shuffling these among one day's flights changes nothing: left out of attributions."""


def sensitivity(
    predict: Predict, frame: pd.DataFrame, features: Sequence[str], seed: int = 0, max_rows: int = 2000
) -> dict[str, float]:
    """Mean |score change| when each feature alone is shuffled among the rows (a sample of at most
    `max_rows`). One prediction for all features (the shuffled copies stacked): the per-call cost
    of a pipeline is paid once. Deterministic for a seed."""
    import numpy as np
    import pandas as pd

    rows = frame if len(frame) <= max_rows else frame.sample(n=max_rows, random_state=seed)
    rows = rows.reset_index(drop=True)
    n, rng = len(rows), np.random.default_rng(seed)
    copies = []
    for name in features:
        shuffled = rows.copy()
        shuffled[name] = rows[name].to_numpy()[rng.permutation(n)]
        copies.append(shuffled)
    scores = np.asarray(predict(pd.concat([rows, *copies], ignore_index=True)), dtype=float)
    base = scores[:n]
    return {
        name: float(np.mean(np.abs(scores[(i + 1) * n : (i + 2) * n] - base)))
        for i, name in enumerate(features)
    }


def daily_shares(
    predict: Predict, frame: pd.DataFrame, days: Any, features: Sequence[str], min_rows: int, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Each day's attribution shares (days with `min_rows` rows or more), shuffled within the day:
    a monitored night is one day."""
    import numpy as np

    days = np.asarray(days)
    out: dict[str, dict[str, float]] = {}
    for day in sorted(set(days.tolist())):
        mask = days == day
        if mask.sum() >= min_rows:
            out[str(day)] = shares(sensitivity(predict, frame[mask], features, seed))
    return out


def reference(daily: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """What a night is compared with: the mean of the window's daily shares, and the largest shift
    one day of the window had from that mean (the yardstick: the window's own day-to-day
    variation, as for feature drift)."""
    import numpy as np

    if not daily:
        return {}
    names = sorted({k for d in daily.values() for k in d})
    mean = {k: float(np.mean([d.get(k, 0.0) for d in daily.values()])) for k in names}
    return {"shares": mean, "day_max_shift": max(shift(mean, d) for d in daily.values()), "days": len(daily)}


def shares(attribution: Mapping[str, float]) -> dict[str, float]:
    """Attributions normalised to sum to 1 (all zero: all zero)."""
    total = sum(max(v, 0.0) for v in attribution.values())
    if total <= 0:
        return {k: 0.0 for k in attribution}
    return {k: max(v, 0.0) / total for k, v in attribution.items()}


def top(share: Mapping[str, float], k: int) -> list[str]:
    """The k features with the largest shares (ties by name)."""
    return [name for name, _ in sorted(share.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def shift(reference: Mapping[str, float], night: Mapping[str, float]) -> float:
    """Total-variation distance between two share vectors over the features of the reference."""
    ref, cur = shares({k: reference[k] for k in reference}), shares({k: night.get(k, 0.0) for k in reference})
    return 0.5 * sum(abs(ref[k] - cur[k]) for k in ref)
