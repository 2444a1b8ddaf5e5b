"""Fairness across slices: is one group of flights served worse than the others? Pure (no I/O).

For each slice dimension (carrier, origin, departure-hour band) and each metric, the *gap* is the
best slice's value minus the worst slice's, over the slices with enough flights:
- `flag_rate`: the share of flights flagged late (score >= the decision threshold);
- `recall`: the share of late flights that were flagged (slices with enough late flights only);
- `calibration`: mean score - late share, signed (one slice over-warned, another under-warned).

Training keeps the holdout's gaps in the monitoring reference (`daily_gaps`: the mean of the
holdout's daily gaps, since a monitored night is one day) and the gate compares a candidate's
widest gap with the champion's on the same holdout (`worst_gap`); monitoring's fairness check
(include/monitoring/model_checks.py) compares a labelled night's gaps with the reference's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

DIMENSIONS = ("carrier", "origin", "dep_hour_band")
METRICS = ("flag_rate", "recall", "calibration")
HOUR_BANDS = ((0, 10, "00-09h"), (10, 14, "10-13h"), (14, 18, "14-17h"), (18, 24, "18-23h"))
"""Departure-hour bands of roughly equal traffic (early bank, midday, afternoon, evening)."""
MIN_ROWS = 100
"""A slice (a carrier, an origin, an hour band) enters a day's gaps with this many flights ...
(one day has ~900 flights; at 50 a small carrier's recall swung by 0.9 between ordinary days)"""
MIN_LATE = 25
"""... and its recall with this many late flights."""


@dataclass(frozen=True)
class SliceGap:
    """One metric's gap along one dimension: best - worst slice, and which slices they are."""

    dimension: str
    metric: str
    gap: float
    highest: str
    lowest: str
    slices: int

    @property
    def key(self) -> str:
        return f"{self.metric}.{self.dimension}"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hour_band(hours: Any) -> np.ndarray:
    """The departure-hour band of each hour (0-23)."""
    import numpy as np

    h = np.asarray(hours, dtype=float)
    out = np.full(h.shape, "unknown", dtype=object)
    for low, high, name in HOUR_BANDS:
        out[(h >= low) & (h < high)] = name
    return out


def slice_values(frame: pd.DataFrame, dimension: str) -> np.ndarray:
    """Each flight's slice along `dimension` (the hour band derived from `dep_hour`)."""
    import numpy as np

    if dimension == "dep_hour_band":
        return hour_band(frame["dep_hour"])
    return np.asarray(frame[dimension].astype(str))


def slice_gaps(
    frame: pd.DataFrame, y: Any, p: Any, threshold: float, min_rows: int, min_late: int
) -> dict[str, SliceGap]:
    """Every metric's gap along every dimension (keys `metric.dimension`); a metric with fewer
    than two slices big enough is left out (no gap to speak of)."""
    import numpy as np

    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    flagged = p >= threshold
    out: dict[str, SliceGap] = {}
    for dimension in DIMENSIONS:
        if ("dep_hour" if dimension == "dep_hour_band" else dimension) not in frame.columns:
            continue  # a model without that input: no slices along it
        values = slice_values(frame, dimension)
        per_metric: dict[str, dict[str, float]] = {m: {} for m in METRICS}
        for value in sorted(set(values.tolist())):
            mask = values == value
            if mask.sum() < min_rows:
                continue
            per_metric["flag_rate"][value] = float(flagged[mask].mean())
            per_metric["calibration"][value] = float(p[mask].mean() - y[mask].mean())
            late = mask & (y == 1)
            if late.sum() >= min_late:
                per_metric["recall"][value] = float(flagged[late].mean())
        for metric, by_slice in per_metric.items():
            if len(by_slice) < 2:
                continue
            highest = max(by_slice, key=lambda k: by_slice[k])
            lowest = min(by_slice, key=lambda k: by_slice[k])
            gap = SliceGap(
                dimension, metric, by_slice[highest] - by_slice[lowest], highest, lowest, len(by_slice)
            )
            out[gap.key] = gap
    return out


def daily_gaps(
    frame: pd.DataFrame, days: Any, y: Any, p: Any, threshold: float, min_rows: int, min_late: int
) -> dict[str, float]:
    """The mean over days of each gap (a day is what a monitored night is compared with)."""
    import numpy as np

    days, y, p = np.asarray(days), np.asarray(y), np.asarray(p)
    found: dict[str, list[float]] = {}
    for day in sorted(set(days.tolist())):
        mask = days == day
        part = frame[mask].reset_index(drop=True)
        for key, g in slice_gaps(part, y[mask], p[mask], threshold, min_rows, min_late).items():
            found.setdefault(key, []).append(g.gap)
    return {k: float(np.mean(v)) for k, v in sorted(found.items())}


def worst_gap(gaps: Mapping[str, SliceGap | float]) -> tuple[str, float]:
    """The widest gap of all (its key and value); ("", 0.0) when there is none."""
    values = {k: (g.gap if isinstance(g, SliceGap) else float(g)) for k, g in gaps.items()}
    if not values:
        return "", 0.0
    key = max(values, key=lambda k: values[k])
    return key, values[key]
