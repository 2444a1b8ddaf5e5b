"""Batch scoring: the next day's scheduled flights scored with the champion, every prediction logged.

The schedules of interval [start, end) are the flights published then, i.e. departing during the
following day (schedules are published a day ahead). Each flight's features are taken as of its
prediction time (departure - MLOPS_PREDICTION_LEAD_HOURS), but never later than the end of the
interval: a batch job a day ahead cannot know later values. The online service reads the
latest values too, so both paths serve alike.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import numpy as np

from include.core.settings import Settings
from include.features.engineering import KNOWN_AT_OFFSET
from include.features.partitions import read_validated
from include.features.store import FEATURE_SERVICE, service_views
from include.lake.partitions import interval_key
from include.serving import prediction_log
from include.serving.inputs import REQUEST_COLUMNS, as_of_times, historical_frame
from include.source.dataset import FLIGHT_SCHEDULES


@dataclass(frozen=True)
class BatchScore:
    interval: str
    flights: int
    model_version: str
    mean_score: float
    flagged: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows_per_s": round(self.flights / self.seconds, 1) if self.seconds else None}


def score_interval(
    settings: Settings,
    store: Any,
    model: Any,
    model_version: str,
    columns: list[str],
    start: datetime,
    end: datetime,
    request_id: str | None = None,
) -> BatchScore:
    """Score the flights published in [start, end) and replace that interval's batch predictions."""
    started = time.perf_counter()
    key = interval_key(start, end)
    schedules = read_validated(settings.lake_root, FLIGHT_SCHEDULES, start, end)
    schedules = schedules.drop_duplicates("flight_id").sort_values("flight_id").reset_index(drop=True)
    rows: list[dict[str, Any]] = []
    scores = np.array([])
    if len(schedules):
        views = service_views(store, FEATURE_SERVICE)
        as_of = as_of_times(
            schedules["scheduled_departure"], settings.prediction_lead_hours, end - KNOWN_AT_OFFSET
        )
        frame = historical_frame(store, FEATURE_SERVICE, views, schedules[list(REQUEST_COLUMNS)], as_of)
        scores = model.predict_proba(frame[columns])[:, 1]
        rows = prediction_log.records(
            frame,
            columns,
            scores,
            source="batch",
            model_name=settings.model_name,
            model_version=model_version,
            threshold=settings.decision_threshold,
            batch_key=key,
            request_id=request_id,
            features_as_of=as_of,
        )
    eng = prediction_log.engine(settings.prediction_log_url)
    try:
        prediction_log.replace_batch(eng, key, rows)
    finally:
        eng.dispose()
    return BatchScore(
        interval=key,
        flights=len(rows),
        model_version=str(model_version),
        mean_score=float(scores.mean()) if len(scores) else 0.0,
        flagged=int((scores >= settings.decision_threshold).sum()),
        seconds=time.perf_counter() - started,
    )
