"""Service health, storage growth and task durations: the nightly checks of how the system is
doing, beside how the model is doing. Pure (no I/O); health_steps.py reads and records.

- `service_health`: the online service's `/metrics` (Prometheus text) scraped each night; the
  counters since the previous scrape (a restart resets them: then the counters as they are) give
  the night's requests, the share answered with a 5xx, feature-read failures and the /predict
  latency p50/p99 (from the histogram's buckets: an upper bound). Breached when the error share
  or p99 is over its limit; when the service cannot be reached (it is down: that is the finding).
- `storage`: the bytes of the lake, the prediction log and the monitoring database each night;
  breached when tonight's growth is more than `storage_growth_factor` x the median nightly growth
  of the nights before (and more than `storage_min_growth_mb`): a runaway log or a partition
  written many times over.
- `task_durations`: each DAG's run time (first task start to last task end) over the last day
  against the median of its runs in the week before; breached when a DAG ran more than
  `duration_factor` x its median (and longer than `duration_min_s`).
"""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from include.monitoring.policy import SERVICE_HEALTH, STORAGE, TASK_DURATIONS, MonitoringPolicy
from include.monitoring.statistics import CheckResult

PREDICT = "/predict"


@dataclass(frozen=True)
class ServiceSnapshot:
    """The service's counters at one scrape (cumulative since the service started)."""

    requests: float = 0.0
    errors: float = 0.0  # 5xx answers
    predict_requests: float = 0.0
    feature_read_failures: float = 0.0
    buckets: dict[str, float] = field(default_factory=dict)  # /predict latency: le (s) -> count
    model_version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ServiceSnapshot:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def parse_metrics(text: str) -> ServiceSnapshot:
    """The counters of the service's /metrics exposition (include/serving/metrics.py)."""
    from prometheus_client.parser import text_string_to_metric_families

    requests = errors = predict = failures = 0.0
    buckets: dict[str, float] = {}
    version = None
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "mlops_serving_requests_total":
                requests += s.value
                predict += s.value if s.labels.get("route") == PREDICT else 0.0
                errors += s.value if str(s.labels.get("status", "")).startswith("5") else 0.0
            elif s.name == "mlops_serving_request_seconds_bucket" and s.labels.get("route") == PREDICT:
                buckets[s.labels["le"]] = buckets.get(s.labels["le"], 0.0) + s.value
            elif s.name == "mlops_serving_feature_read_failures_total":
                failures += s.value
            elif s.name == "mlops_serving_model_info":
                version = s.labels.get("version") or None
    return ServiceSnapshot(requests, errors, predict, failures, buckets, version)


def since(previous: ServiceSnapshot | None, current: ServiceSnapshot) -> ServiceSnapshot:
    """The counters' growth since the previous scrape; the counters themselves after a restart
    (any counter lower than before) or without a previous scrape."""
    if previous is None or current.requests < previous.requests:
        return current
    return ServiceSnapshot(
        requests=current.requests - previous.requests,
        errors=max(current.errors - previous.errors, 0.0),
        predict_requests=max(current.predict_requests - previous.predict_requests, 0.0),
        feature_read_failures=max(current.feature_read_failures - previous.feature_read_failures, 0.0),
        buckets={k: max(v - previous.buckets.get(k, 0.0), 0.0) for k, v in current.buckets.items()},
        model_version=current.model_version,
    )


def quantile_ms(buckets: Mapping[str, float], q: float) -> float | None:
    """The upper bound (ms) of the histogram bucket holding the q-quantile; None without
    observations; inf when it lies beyond the last finite bound."""
    ordered = sorted(((float(le), count) for le, count in buckets.items()), key=lambda kv: kv[0])
    total = ordered[-1][1] if ordered else 0.0
    if total <= 0:
        return None
    for bound, count in ordered:
        if count >= q * total:
            return bound * 1000.0
    return float("inf")


def service_check(
    night: ServiceSnapshot | None, unreachable: str | None, policy: MonitoringPolicy
) -> CheckResult:
    """The night's errors and latency; an unreachable service is a breach with its reason."""
    if unreachable is not None:
        return CheckResult(
            SERVICE_HEALTH, True, None, None, f"the online service did not answer /metrics: {unreachable}"
        )
    assert night is not None
    p50, p99 = quantile_ms(night.buckets, 0.5), quantile_ms(night.buckets, 0.99)
    metrics = {
        "requests": night.requests,
        "predict_requests": night.predict_requests,
        "errors": night.errors,
        "feature_read_failures": night.feature_read_failures,
    }
    metrics |= {k: v for k, v in (("p50_ms", p50), ("p99_ms", p99)) if v is not None and v != float("inf")}
    if night.requests < policy.service_min_requests:
        return CheckResult(
            SERVICE_HEALTH,
            None,
            night.requests,
            float(policy.service_min_requests),
            f"{night.requests:.0f} requests since the last scrape (fewer than "
            f"{policy.service_min_requests}: no verdict)",
            metrics,
        )
    share = night.errors / night.requests
    metrics["error_share"] = share
    problems = []
    if share > policy.service_error_share:
        problems.append(f"error share {share:.2%} > {policy.service_error_share:.2%}")
    if p99 is not None and p99 > policy.service_p99_ms:
        problems.append(f"/predict p99 <= {p99:.0f} ms > {policy.service_p99_ms:.0f} ms")
    p99_text = "-" if p99 is None else f"<= {p99:.1f} ms"
    detail = (
        f"{night.requests:.0f} requests, {night.errors:.0f} errors ({share:.2%}), /predict p99 {p99_text}, "
        f"{night.feature_read_failures:.0f} feature-read failures"
    )
    return CheckResult(
        SERVICE_HEALTH,
        bool(problems),
        share,
        policy.service_error_share,
        ("; ".join(problems) + " - " if problems else "") + detail,
        metrics,
    )


def storage_check(
    tonight: Mapping[str, float], before: Sequence[float], policy: MonitoringPolicy
) -> CheckResult:
    """Tonight's bytes per store, and tonight's growth against the median nightly growth of the
    nights before (`before`: their totals, oldest first)."""
    total = sum(tonight.values())
    metrics = {f"bytes.{k}": v for k, v in tonight.items()} | {"bytes.total": total}
    totals = [*before, total]
    parts = ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in sorted(tonight.items()))
    if len(totals) < 3:
        return CheckResult(
            STORAGE,
            None,
            total / 1e6,
            None,
            f"{total / 1e6:.1f} MB in all ({parts}); growth is judged from the third night on",
            metrics,
        )
    growth = [b - a for a, b in itertools.pairwise(totals)]
    tonight_growth, usual = growth[-1], statistics.median(growth[:-1])
    metrics["growth_bytes"] = tonight_growth
    limit = max(policy.storage_growth_factor * max(usual, 0.0), policy.storage_min_growth_mb * 1e6)
    breached = tonight_growth > limit
    detail = (
        f"grew {tonight_growth / 1e6:+.1f} MB tonight ({'>' if breached else '<='} {limit / 1e6:.1f} MB: "
        f"{policy.storage_growth_factor:g} x the usual {usual / 1e6:.1f} MB); {parts}"
    )
    return CheckResult(STORAGE, breached, tonight_growth / 1e6, limit / 1e6, detail, metrics)


def duration_check(
    tonight: Mapping[str, float], before: Mapping[str, Sequence[float]], policy: MonitoringPolicy
) -> CheckResult:
    """Each DAG's longest run tonight (seconds) against the median of its runs before."""
    if not tonight:
        return CheckResult(TASK_DURATIONS, None, None, None, "no DAG run finished since the last night")
    metrics = {f"seconds.{dag}": s for dag, s in tonight.items()}
    slow: dict[str, tuple[float, float]] = {}
    ratios: dict[str, float] = {}
    for dag, seconds in tonight.items():
        runs = list(before.get(dag) or [])
        if len(runs) < policy.duration_min_runs:
            continue
        usual = statistics.median(runs)
        ratios[dag] = seconds / usual if usual > 0 else float("inf")
        if seconds > max(policy.duration_factor * usual, policy.duration_min_s):
            slow[dag] = (seconds, usual)
    if not ratios:
        return CheckResult(
            TASK_DURATIONS,
            None,
            None,
            policy.duration_factor,
            f"{len(tonight)} DAGs ran; fewer than {policy.duration_min_runs} earlier runs to compare with",
            metrics,
        )
    worst = max(ratios, key=lambda d: ratios[d])
    detail = (
        "slower than usual: "
        + ", ".join(f"{d} {s:.0f} s (usual {u:.0f} s)" for d, (s, u) in sorted(slow.items()))
        if slow
        else f"{len(ratios)} DAGs within {policy.duration_factor:g} x their usual run time; "
        f"slowest relative: {worst} {ratios[worst]:.1f} x"
    )
    return CheckResult(TASK_DURATIONS, bool(slow), ratios[worst], policy.duration_factor, detail, metrics)
