"""The page's read of the online service: its own /health, and whether it serves the champion.

Why a short timeout: a hung service must not hang the page that on call opens to find out that
it hangs; unreachable is an answer the page shows.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

from include.core.settings import Settings
from include.core.urls import redact_url
from include.oncall.sections import ServingSection

SERVING_TIMEOUT_S = 0.5


def serving(settings: Settings, champion_version: str | None) -> ServingSection:
    """The online service's own /health, with a short timeout (a hung service must not hang the page)."""
    url = f"{settings.serving_url}/health"
    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=SERVING_TIMEOUT_S) as resp:
            body = json.loads(resp.read().decode() or "{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        error = redact_url(str(reason))[:200]
        return {"reachable": False, "url": redact_url(settings.serving_url), "error": error}
    served = body.get("model_version")
    served = None if served is None else str(served)
    return {
        "reachable": True,
        "url": redact_url(settings.serving_url),
        "status": body.get("status"),
        "version": served,
        "matches_champion": served is not None and served == champion_version,
        "latency_ms": round((time.perf_counter() - started) * 1000, 1),
        "error": redact_url(body["error"]) if body.get("error") else None,
        "predictions_logged": body.get("predictions_logged"),
        "prediction_log_errors": body.get("prediction_log_errors"),
    }
