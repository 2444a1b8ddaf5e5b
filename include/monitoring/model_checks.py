"""The labelled-day checks that need the serving model itself: attribution drift and fairness.

Training stores what a version is compared with in its monitoring reference's meta
(`include/training/reference.behaviour_reference`); `day_checks` (monitor_model) loads the version
through the registry's trusted loader and measures one labelled day against it:
- attribution drift: the night's attribution shares (include/training/attribution.py) further
  from the training window's mean than the farthest single window day was (x `attribution_margin`);
- fairness: a gap between the best and worst slice (include/training/fairness.py) wider than the
  reference's by more than its metric's tolerance (`fairness_*_widening`).
Thresholds: MonitoringPolicy, calibrated on 2013 by benchmarks/attribution_calibration.py. A
version trained before these references existed is 'not evaluated', never 'ok'.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from include.core.settings import Settings
from include.monitoring.policy import ATTRIBUTION, FAIRNESS, MonitoringPolicy
from include.monitoring.statistics import CheckResult
from include.training import attribution
from include.training.fairness import SliceGap, slice_gaps
from include.training.reference import ATTRIBUTION_KEY, FAIRNESS_KEY, predict_with

if TYPE_CHECKING:
    import pandas as pd


def tolerance(metric: str, policy: MonitoringPolicy) -> float:
    return {
        "flag_rate": policy.fairness_flag_rate_widening,
        "recall": policy.fairness_recall_widening,
        "calibration": policy.fairness_calibration_widening,
    }[metric]


def fairness_check(
    night: Mapping[str, SliceGap], reference: Mapping[str, float] | None, policy: MonitoringPolicy
) -> CheckResult:
    """Breached when a night's gap is wider than the reference's same gap by more than the
    metric's tolerance; not evaluated without a reference (a version trained before) or slices."""
    if reference is None:
        return CheckResult(FAIRNESS, None, None, None, "no fairness reference (version trained before it)")
    compared = {k: g for k, g in night.items() if k in reference}
    if not compared:
        return CheckResult(
            FAIRNESS, None, None, None, f"no slice pair with {policy.fairness_min_rows}+ flights"
        )
    widening = {k: g.gap - reference[k] for k, g in compared.items()}
    excess = {k: w - tolerance(compared[k].metric, policy) for k, w in widening.items()}
    worst = max(excess, key=lambda k: excess[k])
    g = compared[worst]
    wide = sorted(k for k, e in excess.items() if e > 0)
    detail = (
        f"{g.key} gap {g.gap:.3f} ({g.highest} vs {g.lowest}) vs reference {reference[worst]:.3f}: "
        f"widened {widening[worst]:+.3f} (tolerance {tolerance(g.metric, policy):.3f})"
    )
    if wide:
        detail = "widened: " + ", ".join(wide) + "; worst " + detail
    return CheckResult(
        FAIRNESS,
        bool(wide),
        widening[worst],
        tolerance(g.metric, policy),
        detail,
        {
            **{f"gap.{k}": v.gap for k, v in compared.items()},
            **{f"widening.{k}": w for k, w in widening.items()},
        },
    )


def attribution_check(
    reference: Mapping[str, Any] | None, night: Mapping[str, float], policy: MonitoringPolicy
) -> CheckResult:
    """Breached when the night's attribution shares moved further from the window's mean than
    `attribution_margin` x the largest shift of one window day (and `attribution_min_shift`);
    not evaluated without a reference (a version trained before it)."""
    if not reference or not reference.get("shares"):
        return CheckResult(
            ATTRIBUTION, None, None, None, "no attribution reference (version trained before it)"
        )
    mean = dict(reference["shares"])
    ref, cur = attribution.shares(mean), attribution.shares({k: night.get(k, 0.0) for k in mean})
    value = attribution.shift(mean, night)
    threshold = max(
        policy.attribution_margin * float(reference["day_max_shift"]), policy.attribution_min_shift
    )
    k = policy.attribution_top_k
    before, after = attribution.top(ref, k), attribution.top(cur, k)
    breached = value > threshold
    detail = (
        f"shift {value:.3f} {'>' if breached else '<='} {threshold:.3f} "
        f"({policy.attribution_margin:g} x the largest of {reference.get('days', '?')} window days); "
        f"top {k} at training: {', '.join(f'{n} {ref[n]:.0%}' for n in before)}; "
        f"tonight: {', '.join(f'{n} {cur[n]:.0%}' for n in after)}"
    )
    metrics = {f"share.{n}": cur[n] for n in sorted(set(before) | set(after))}
    metrics["top_k_kept"] = float(len(set(before) & set(after)))
    return CheckResult(ATTRIBUTION, breached, value, threshold, detail, metrics)


def measure_day(
    model: Any, columns: list[str], labelled: pd.DataFrame, threshold: float, policy: MonitoringPolicy
) -> tuple[dict[str, float], dict[str, SliceGap]]:
    """One labelled day: each feature's attribution, and the slice gaps of the scores served."""
    predict = partial(predict_with, model, columns)
    features = [c for c in columns if c not in attribution.CONSTANT_WITHIN_A_DAY]
    night = attribution.sensitivity(predict, labelled[columns], features)
    gaps = slice_gaps(
        labelled,
        labelled["late"].to_numpy(),
        labelled["score"].to_numpy(),
        threshold,
        policy.fairness_min_rows,
        policy.fairness_min_late,
    )
    return night, gaps


def judge(
    meta: dict[str, Any],
    night: dict[str, float],
    gaps: dict[str, SliceGap],
    policy: MonitoringPolicy,
) -> list[CheckResult]:
    """The two checks of a labelled day against the version's reference meta."""
    reference_gaps = (meta.get(FAIRNESS_KEY) or {}).get("daily")
    return [
        attribution_check(meta.get(ATTRIBUTION_KEY), night, policy),
        fairness_check(gaps, reference_gaps, policy),
    ]


_MODELS: dict[tuple[str, str], tuple[Any, list[str]]] = {}


def day_checks(
    settings: Settings, version: str, meta: dict[str, Any], labelled: pd.DataFrame, policy: MonitoringPolicy
) -> list[CheckResult]:
    """Attribution drift and fairness of one labelled day for the version that served it. The
    model comes from the registry (trusted loader: a version that passed its gate and smoke test);
    a registry outage raises."""
    from include.registry import tracking

    if ATTRIBUTION_KEY not in meta and FAIRNESS_KEY not in meta:
        return judge(meta, {}, {}, policy)
    key = (settings.model_name, str(version))
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = (
            tracking.load_model(settings, version),
            tracking.model_input_columns(settings, version),
        )
    model, columns = _MODELS[key]
    night, gaps = measure_day(model, columns, labelled, settings.decision_threshold, policy)
    return judge(meta, night, gaps, policy)
