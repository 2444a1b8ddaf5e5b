"""The model's input frame at prediction time, built the same way for batch and online scoring.

Training rows go through `fill_missing` and `calendar_features` (include/features/training_set.py);
serving rows go through the same two functions, so a model sees identical columns in both places.
The only difference is where Feast's values come from: the offline store as of a time (batch) or
the online store (the latest values, online).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from include.features.engineering import EVENT_TIMESTAMP, calendar_features
from include.features.training_set import ENTITY_KEYS, UNKNOWN_KEY, fill_missing

REQUEST_COLUMNS = ("flight_id", *ENTITY_KEYS, "scheduled_departure")


def model_frame(rows: pd.DataFrame, features: pd.DataFrame, views: dict[str, list[str]]) -> pd.DataFrame:
    """Request rows + Feast feature values (same order) -> the model's input columns."""
    frame = pd.concat([rows.reset_index(drop=True), features.reset_index(drop=True)], axis=1)
    for names in views.values():
        for name in names:
            if name not in frame.columns:
                frame[name] = float("nan")
    frame, _ = fill_missing(frame, views)
    calendar = calendar_features(frame["scheduled_departure"])
    return pd.concat([frame, calendar], axis=1)


def entity_keys(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows.copy()
    out["tailnum"] = out["tailnum"].astype("string").fillna(UNKNOWN_KEY).astype(object)
    return out


def online_frame(
    store: Any,
    service_name: str,
    views: dict[str, list[str]],
    rows: pd.DataFrame,
    ttls: dict[str, timedelta],
    now: datetime,
) -> pd.DataFrame:
    """Model inputs for `rows` from Feast's online store: the latest values within their view's
    ttl at `now` (`drop_stale`), as the offline join would give them as of `now`."""
    rows = entity_keys(rows)
    entity_rows = rows[list(ENTITY_KEYS)].to_dict("records")
    service = store.get_feature_service(service_name)
    found = store.get_online_features(features=service, entity_rows=entity_rows)
    values, _ = drop_stale(found.to_dict(include_event_timestamps=True), views, ttls, now)
    names = [n for ns in views.values() for n in ns]
    features = pd.DataFrame({n: values.get(n, [None] * len(rows)) for n in names}, dtype="float64")
    return model_frame(rows, features, views)


def historical_frame(
    store: Any, service_name: str, views: dict[str, list[str]], rows: pd.DataFrame, as_of: pd.Series
) -> pd.DataFrame:
    """Model inputs for `rows` from Feast's offline store, each row's features as of `as_of`."""
    rows = entity_keys(rows).reset_index(drop=True)
    entity_df = rows[["flight_id", *ENTITY_KEYS]].copy()
    entity_df[EVENT_TIMESTAMP] = pd.to_datetime(as_of.to_numpy(), utc=True)
    historical = store.get_historical_features(
        entity_df=entity_df, features=store.get_feature_service(service_name)
    ).to_df()
    names = [n for ns in views.values() for n in ns if n in historical.columns]
    merged = rows[["flight_id"]].merge(historical[["flight_id", *names]], on="flight_id", how="left")
    if len(merged) != len(rows):
        raise RuntimeError(f"offline feature join returned {len(merged)} rows for {len(rows)} flights")
    return model_frame(rows, merged[names], views)


def as_of_times(scheduled_departure: pd.Series, lead_hours: float, known_until: datetime) -> pd.Series:
    """Features as of the prediction time, but never later than what is known at scoring time."""
    prediction = pd.to_datetime(scheduled_departure, utc=True) - pd.Timedelta(hours=lead_hours)
    return prediction.clip(upper=pd.Timestamp(known_until))


TIMESTAMP_SUFFIX = "__ts"  # Feast's name for a feature's event time (seconds) in to_dict()


def drop_stale(
    values: dict[str, list], views: dict[str, list[str]], ttls: dict[str, timedelta], now: datetime
) -> tuple[dict[str, list], int]:
    """Online values with every feature older than its view's ttl set to None (then missing, with
    its `<view>_missing` indicator), and how many (view, row) pairs fell back that way.

    Feast's online store returns the latest row whatever its age, while the point-in-time join of
    training and batch scoring keeps a row only within the view's ttl before the time asked for:
    a week-old weather row would be served as current online and as missing offline. This is the
    offline rule at `now`; a view without a ttl (None or 0) never goes stale, as in Feast."""
    out = {k: list(v) for k, v in values.items() if not k.endswith(TIMESTAMP_SUFFIX)}
    fallbacks = 0
    for view, names in views.items():
        ttl = ttls.get(view)
        if not ttl:
            continue
        oldest = (now - ttl).timestamp()
        rows = len(out[names[0]]) if names and names[0] in out else 0
        for i in range(rows):
            stamps = [values.get(n + TIMESTAMP_SUFFIX, [0] * rows)[i] for n in names]
            present = [out[n][i] is not None for n in names if n in out]
            if any(present) and all(ts < oldest for ts in stamps):
                for n in names:
                    if n in out:
                        out[n][i] = None
                fallbacks += 1
    return out, fallbacks


def _value(values: dict[str, list], name: str) -> float | None:
    found = values.get(name)
    v = found[0] if found else None
    return None if v is None or v != v else float(v)  # v != v: NaN


def single_row_inputs(
    row: dict[str, Any], values: dict[str, list], views: dict[str, list[str]]
) -> dict[str, Any]:
    """The model's inputs for ONE flight, without pandas: what `model_frame` computes for one row
    (same fill rule, same indicators, same calendar), at a fraction of the cost (online path)."""
    out: dict[str, Any] = {}
    for view, names in views.items():
        got = [_value(values, n) for n in names]
        for name, v in zip(names, got, strict=True):
            out[name] = 0.0 if v is None else v
        out[f"{view}_missing"] = int(all(v is None for v in got))
    departure = pd.Timestamp(row["scheduled_departure"])
    departure = departure.tz_localize("UTC") if departure.tzinfo is None else departure.tz_convert("UTC")
    out.update(dep_hour=departure.hour, dep_weekday=departure.weekday(), dep_month=departure.month)
    out["carrier"], out["origin"] = row["carrier"], row["origin"]
    return out


def entity_of(row: dict[str, Any]) -> dict[str, str]:
    """A flight's Feast entity keys (a missing tail number is the training set's UNKNOWN_KEY)."""
    tailnum = row.get("tailnum")
    return {
        "tailnum": UNKNOWN_KEY if tailnum is None or tailnum != tailnum else str(tailnum),
        "carrier": row["carrier"],
        "origin": row["origin"],
        "dest": row["dest"],
    }


def online_values(
    store: Any,
    service: Any,
    row: dict[str, Any],
    views: dict[str, list[str]],
    ttls: dict[str, timedelta],
    now: datetime,
) -> tuple[dict[str, list], int]:
    """Feast online values of one flight's entities (column name -> [value]), stale ones dropped
    (`drop_stale`), and the number of views that fell back to missing for being stale."""
    found = store.get_online_features(features=service, entity_rows=[entity_of(row)])
    return drop_stale(found.to_dict(include_event_timestamps=True), views, ttls, now)
