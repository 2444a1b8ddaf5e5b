"""The steps of materialize_features that are more than a call: verifying what went online."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from include.core.assets import FlightFeaturesEvent
from include.core.settings import Settings
from include.features.store import FEATURE_SERVICE, verify_online


def verify_online_reads(
    store: Any, settings: Settings, intervals: list[list[str]], materialized: list[dict[str, Any]]
) -> FlightFeaturesEvent:
    """Online reads for a sample of each interval's keys equal the latest offline rows (raises
    OnlineStoreMismatchError otherwise); returns the flight_features event."""
    log = logging.getLogger("airflow.task")
    checked = {
        s: verify_online(store, settings, datetime.fromisoformat(s), datetime.fromisoformat(e), 100, log)
        for s, e in intervals
    }
    return {
        "feature_service": FEATURE_SERVICE,
        "intervals": intervals,
        "latest_interval_end": intervals[-1][1],
        "materialized_until": max(m["window_end"] for m in materialized),
        "rows_offered": sum(m["rows_offered"] for m in materialized),
        "keys_verified": sum(sum(c.values()) for c in checked.values()),
    }
