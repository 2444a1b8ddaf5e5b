"""Batch scoring: the next day's scheduled flights scored with the champion, every prediction logged.

The schedules of interval [start, end) are the flights published then, i.e. departing during the
following day (schedules are published a day ahead). Each flight's features are taken as of its
prediction time (departure - MLOPS_PREDICTION_LEAD_HOURS), but never later than the end of the
interval: a batch job a day ahead cannot know later values. The online service reads the
latest values too, so both paths serve alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, TypedDict

import numpy as np

from include.core.settings import Settings
from include.features.engineering import KNOWN_AT_OFFSET
from include.features.partitions import intervals_to_process, read_validated
from include.features.store import FEATURE_SERVICE, service_views
from include.lake.partitions import interval_key
from include.registry.fast_model import score_frame
from include.serving import prediction_log
from include.serving.champion import LoadedModel
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
    steps: dict[str, float]  # seconds by step: read, features, score, log rows, log write
    shadow_version: str | None = None  # the shadow that scored the same flights (rows `shadow`)

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
    shadow: LoadedModel | None = None,
) -> BatchScore:
    """Score the flights published in [start, end) and replace that interval's batch predictions.
    With a `shadow`, the same frame is scored by it too and logged as `shadow` rows (never served)."""
    started = time.perf_counter()
    steps: dict[str, float] = {}
    mark = started

    def step(name: str) -> None:
        nonlocal mark
        now = time.perf_counter()
        steps[name] = round(now - mark, 3)
        mark = now

    key = interval_key(start, end)
    schedules = read_validated(settings.lake_root, FLIGHT_SCHEDULES, start, end)
    schedules = schedules.drop_duplicates("flight_id").sort_values("flight_id").reset_index(drop=True)
    step("read_schedules")
    rows: list[dict[str, Any]] = []
    shadow_rows: list[dict[str, Any]] = []
    scores = np.array([])
    if len(schedules):
        views = service_views(store, FEATURE_SERVICE)
        as_of = as_of_times(
            schedules["scheduled_departure"], settings.prediction_lead_hours, end - KNOWN_AT_OFFSET
        )
        frame = historical_frame(store, FEATURE_SERVICE, views, schedules[list(REQUEST_COLUMNS)], as_of)
        step("offline_features")
        scores = score_frame(model, frame, columns)
        step("score")
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
        step("log_rows")
        if shadow is not None:
            shadow_rows = prediction_log.records(
                frame,
                shadow.columns,
                score_frame(shadow.model, frame, shadow.columns),
                source="shadow",
                model_name=settings.model_name,
                model_version=shadow.version,
                threshold=settings.decision_threshold,
                batch_key=key,
                request_id=request_id,
                features_as_of=as_of,
            )
            step("shadow")
    eng = prediction_log.engine(settings.prediction_log_url)
    try:
        prediction_log.replace_batch(eng, key, rows, shadow_rows)
    finally:
        eng.dispose()
    step("log_write")
    return BatchScore(
        interval=key,
        flights=len(rows),
        model_version=str(model_version),
        mean_score=float(scores.mean()) if len(scores) else 0.0,
        flagged=int((scores >= settings.decision_threshold).sum()),
        seconds=time.perf_counter() - started,
        steps=steps,
        shadow_version=shadow.version if shadow is not None and shadow_rows else None,
    )


class PredictionsExtra(TypedDict):
    """The extra of a `flight_predictions` asset event."""

    model_version: str
    intervals: list[str]
    flights: int


def intervals_to_score(
    event_extras: Iterable[Mapping[str, Any]], interval_start: str | None, days: int
) -> list[tuple[datetime, datetime]]:
    """The intervals a score_flights run scores, oldest first: those the triggering
    flight_features events list (materialize_features verified them online), or, for a manual
    run, `days` daily intervals from the date `interval_start`."""
    listed = [
        {"interval_start": s, "interval_end": e}
        for extra in event_extras
        for s, e in extra.get("intervals", [])
    ]
    intervals = intervals_to_process(listed, interval_start, days)
    if not intervals:
        raise ValueError("nothing to score: no triggering flight_features event and no Params interval_start")
    return intervals


def score_intervals(
    settings: Settings,
    store: Any,
    champion: LoadedModel,
    intervals: list[tuple[datetime, datetime]],
    request_id: str | None,
    log: logging.Logger,
    shadow: LoadedModel | None = None,
) -> list[BatchScore]:
    """The score_next_day step: each interval scored with the champion (and the shadow beside it,
    when there is one), in order, and logged."""
    scores = []
    for start, end in intervals:
        score = score_interval(
            settings,
            store,
            champion.model,
            champion.version,
            champion.columns,
            start,
            end,
            request_id,
            shadow,
        )
        log.info("scored %s: %s", score.interval, score.as_dict())
        scores.append(score)
    return scores


def predictions_extra(model_version: str, scores: list[BatchScore]) -> PredictionsExtra:
    return {
        "model_version": model_version,
        "intervals": [s.interval for s in scores],
        "flights": sum(s.flights for s in scores),
    }
