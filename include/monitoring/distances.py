"""Distances between a reference sample and tonight's: pure statistics (numpy, scipy; no I/O).

For numbers the Wasserstein distance in reference standard deviations decides, for categories
the Jensen-Shannon distance (both scipy); PSI is reported beside. `daily_yardstick` measures how
far a single day of the training window strays from the whole of it: the scale a night's
distance is judged on (one day is a clustered sample, benchmarks/drift_calibration.py).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from include.monitoring.policy import MonitoringPolicy

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd


def clean_numbers(values: Any) -> np.ndarray:
    import numpy as np
    import pandas as pd

    arr = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
    return arr[~np.isnan(arr)]


def _proportions(counts: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    import numpy as np

    p = counts / max(counts.sum(), 1)
    p = np.clip(p, eps, None)
    return p / p.sum()


def psi(reference: Any, current: Any, bins: int = 10) -> float:
    """Population stability index of `current` against `reference` (numbers; NaN dropped).

    Continuous values: bins at the reference's quantiles (equal reference mass). Values with at
    most `bins` distinct reference values (flags, counts): one bin per value. Empty bins count as
    a tiny share (1e-4) so that the log stays finite."""
    import numpy as np

    ref, cur = clean_numbers(reference), clean_numbers(current)
    if not len(ref) or not len(cur):
        return math.nan
    distinct = np.unique(ref)
    if len(distinct) <= bins:
        values = np.union1d(distinct, np.unique(cur))
        r = np.array([(ref == v).sum() for v in values], dtype=float)
        c = np.array([(cur == v).sum() for v in values], dtype=float)
    else:
        edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        r = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1).astype(float)
        c = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1).astype(float)
    p, q = _proportions(r), _proportions(c)
    return float(np.sum((q - p) * np.log(q / p)))


def js_distance(reference: Any, current: Any) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between two samples of categories."""
    import numpy as np
    import pandas as pd
    from scipy.spatial.distance import jensenshannon

    ref = pd.Series(reference).dropna().astype(str)
    cur = pd.Series(current).dropna().astype(str)
    if ref.empty or cur.empty:
        return math.nan
    values = sorted(set(ref) | set(cur))
    r = ref.value_counts().reindex(values, fill_value=0).to_numpy(dtype=float)
    c = cur.value_counts().reindex(values, fill_value=0).to_numpy(dtype=float)
    return float(jensenshannon(r / r.sum(), c / c.sum(), base=2)) if np.any(r) and np.any(c) else math.nan


def distance(reference: Any, current: Any, kind: str) -> float:
    """The drift distance that decides: for numbers the Wasserstein distance (scipy) in units of
    the reference's standard deviation, for categories the Jensen-Shannon distance (scipy).

    Unlike PSI and KS, it keeps growing with how far the values moved: one cold June day and a
    December day both fill a single PSI bin (PSI saturates near 8), but lie 1 and 4 standard
    deviations away."""
    import numpy as np
    from scipy.stats import wasserstein_distance

    if kind == "categorical":
        return js_distance(reference, current)
    ref, cur = clean_numbers(reference), clean_numbers(current)
    if not len(ref) or not len(cur):
        return math.nan
    scale = float(np.std(ref)) or 1.0
    return float(wasserstein_distance(ref, cur)) / scale


def kind_of(column: str, categorical: tuple[str, ...] | list[str]) -> str:
    return "categorical" if column in categorical else "numeric"


def daily_yardstick(
    reference: pd.DataFrame,
    days: Any,
    columns: list[str],
    categorical: tuple[str, ...] | list[str],
    policy: MonitoringPolicy,
    whole_rows: int = 10_000,
) -> dict[str, float]:
    """For each column, the largest distance between one day of the reference and the whole of it:
    how far an ordinary day of the training window strays. Computed once per model version.

    The whole side is a fixed sample of `whole_rows` (a 90-day reference compared 90 times in
    full took ~40 s; the sample changes the distances by about 1 %)."""
    import pandas as pd

    days = pd.Series(days, index=reference.index).astype(str)
    whole = reference.sample(n=min(whole_rows, len(reference)), random_state=0)
    groups = [idx for _, idx in days.groupby(days).groups.items() if len(idx) >= policy.min_day_rows]
    out = {}
    for column in columns:
        kind = kind_of(column, categorical)
        values = [distance(whole[column], reference.loc[idx, column], kind) for idx in groups]
        values = [v for v in values if not math.isnan(v)]
        out[column] = max(values, default=0.0)
    return out
