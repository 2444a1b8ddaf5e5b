"""The smoke test of a version before it serves, and the serving path it proves.

run_smoke_test() loads the version from the registry (its own load: it needs no passed smoke test
yet), compiles it for the fast path and checks parity on the version's holdout (fast_model.parity),
records which form serves (`serving.*` tags, the compiled bytes with the run), then scores a fixed
sample with that form: every score a probability, a single flight within
MLOPS_SMOKE_MAX_LATENCY_MS. Its `smoke_test` tag is what the loader requires of a serving version.
Deployment (deploy.py) and rollback call it before they move `champion`.
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from typing import Any, TypedDict

import pandas as pd

from include.core.settings import Settings
from include.registry import fast_model, tracking

log = logging.getLogger("airflow.task")
SMOKE_ROWS = 50


class DeploymentError(RuntimeError):
    """A deployment or rollback did not complete; the message says what `champion` is now."""


class SmokeResult(TypedDict):
    """The smoke test of a version on a fixed sample (recorded on the version as `smoke_test`)."""

    passed: bool
    problems: list[str]
    rows: int
    score_min: float
    score_max: float
    median_ms: float
    slowest_ms: float


def smoke_test(model: Any, sample: pd.DataFrame, columns: list[str], max_latency_ms: float) -> SmokeResult:
    """Score `sample` with the form that will serve (fast or pipeline): every score a
    probability, a single-flight call within bounds (one thread, as the service runs).

    The median of 20 single-flight calls is compared, not the slowest: one call can stall for a
    second on a busy 2-core machine, which says nothing about the model."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _smoke_test(model, sample, columns, max_latency_ms)


def _smoke_test(model: Any, sample: pd.DataFrame, columns: list[str], max_latency_ms: float) -> SmokeResult:
    scores = fast_model.score_frame(model, sample, columns)
    problems = []
    if len(scores) != len(sample):
        problems.append(f"{len(scores)} scores for {len(sample)} rows")
    bad = [float(s) for s in scores if not (math.isfinite(float(s)) and 0.0 <= float(s) <= 1.0)]
    if bad:
        problems.append(f"{len(bad)} scores outside [0, 1] (e.g. {bad[:3]})")
    flights = sample[columns].head(20).to_dict("records")
    if flights:
        fast_model.score_one(model, flights[0], columns)  # warm-up
    times = []
    for features in flights:
        started = time.perf_counter()
        fast_model.score_one(model, features, columns)
        times.append((time.perf_counter() - started) * 1000)
    typical = statistics.median(times) if times else 0.0
    if typical > max_latency_ms:
        problems.append(f"single-flight prediction takes {typical:.1f} ms (median) > {max_latency_ms:.1f} ms")
    return {
        "passed": not problems,
        "problems": problems,
        "rows": len(sample),
        "score_min": float(scores.min()),
        "score_max": float(scores.max()),
        "median_ms": typical,
        "slowest_ms": max(times) if times else 0.0,
    }


def record_serving_path(
    settings: Settings, version: str, fast: fast_model.FastModel | None, decision: fast_model.Parity
) -> None:
    """Store the compiled form with the version's run (when it passed parity) and record the
    decision as `serving.*` tags: the compiled bytes and their sha256 first, the path last, so a
    loader never sees `fast` without the bytes it names."""
    import tempfile
    from pathlib import Path

    c = tracking.client(settings)
    with tracking.registry_call(f"record the serving path of version {version}"):
        mv = c.get_model_version(settings.model_name, version)
        tags = {
            "serving.fast_kind": decision["kind"] or "none",
            "serving.parity_rows": str(decision["rows"]),
            "serving.parity_max_abs_diff": ""
            if decision["max_abs_diff"] is None
            else f"{decision['max_abs_diff']:.3g}",
            "serving.reason": decision["reason"],
        }
        if fast is not None:
            data = fast_model.dumps(fast)
            with tempfile.TemporaryDirectory(prefix="fast-model-") as tmp:
                path = Path(tmp) / fast_model.FILE_NAME
                path.write_bytes(data)
                c.log_artifact(mv.run_id, str(path), tracking.FAST_ARTIFACT_DIR)
            tags[tracking.FAST_SHA_TAG] = fast_model.sha256(data)
        tags[tracking.SERVING_PATH_TAG] = decision["path"]
        for key, value in tags.items():
            c.set_model_version_tag(settings.model_name, version, key, value)


def run_smoke_test(settings: Settings, version: str, sample: pd.DataFrame) -> SmokeResult:
    """The version's smoke test, from the registry (its own load: it needs no passed smoke test
    yet), recorded as its `smoke_test` tag; DeploymentError when it fails (champion unchanged).

    `sample` is the version's holdout: its compiled form serves only if it scores those flights
    like the pipeline (fast_model.parity); the decision is recorded either way, and the smoke test
    runs on the form that will serve."""
    model = tracking.load_model(settings, version, candidate=True)
    columns = tracking.model_input_columns(settings, version)
    fast, decision = fast_model.parity(model, columns, sample)
    record_serving_path(settings, version, fast, decision)
    log.info(
        "serving path of version %s: %s (%s)", version, fast.kind if fast else "sklearn", decision["reason"]
    )
    smoke = smoke_test(fast or model, sample.head(SMOKE_ROWS), columns, settings.smoke_max_latency_ms)
    with tracking.registry_call(f"record the smoke test of version {version}"):
        tracking.client(settings).set_model_version_tag(
            settings.model_name,
            version,
            tracking.SMOKE_TAG,
            tracking.SMOKE_PASSED if smoke["passed"] else "failed",
        )
    if not smoke["passed"]:
        current = tracking.champion(settings)
        raise DeploymentError(
            f"smoke test of {settings.model_name} version {version} failed: {'; '.join(smoke['problems'])}. "
            f"champion unchanged ({current.version if current else 'none'}). "
            "README 'On call' > DeploymentError."
        )
    log.info(
        "smoke test of version %s passed: %d rows, scores %.3f..%.3f, single flight %.1f ms (median)",
        version,
        smoke["rows"],
        smoke["score_min"],
        smoke["score_max"],
        smoke["median_ms"],
    )
    return smoke
