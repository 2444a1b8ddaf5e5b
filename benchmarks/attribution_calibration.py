"""Calibration of monitor_model's attribution-drift and fairness thresholds on real 2013 days, the
way benchmarks/drift_calibration.py calibrated the drift thresholds (same days, same groups,
same production path): which thresholds keep ordinary days quiet and still fire in December
2013's snow storms?

Groups of days (as in drift_calibration.py):
- stable_rolling: each day of 2013-10-02 .. 2013-10-31 against a model trained on the 28 days
  right before it (the best case for false alarms);
- stable_fixed: the same days against one model trained on 2013-09-04 .. 2013-10-01 (up to 30
  days old: the worst case, train_model retrains weekly);
- december: each day of 2013-12-01 .. 2013-12-14 against a model trained on November.

For each model: DEFAULT_GRID's shallow gradient boosting fitted with one thread on its window
with a 3-day holdout, and its behaviour reference as train_model logs it
(`training.reference.behaviour_reference`: the holdout's mean daily attributions and slice
gaps). For each day: the day's flights scored by `scoring.score_interval` into the prediction
log, joined with their labels (`monitoring.reads.labelled_frame`), measured by
`monitoring.model_checks.measure_day` (attribution shares, slice gaps); then the shift and the
gap widenings against the reference.

Every rule is replayed over a grid: attribution shift > x; per metric, widening > x. A check
breaches on a day and alerts when it breached `consecutive_nights` (2) days in a row. Printed per
group: the distributions, the breaching and alerting days under the defaults, and per rule the
suggestion: the setting that never breached on a stable day (else never alerted there) with the
most December alerts (drift_calibration.quiet_and_sensitive).

Deterministic (fixed data, seeds, sampling). Writes benchmarks/results/attribution_calibration.json.
Usage: PYTHONPATH=. python benchmarks/attribution_calibration.py
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime, timedelta
from typing import Any

from benchmarks.bench_monitoring import build_lake, night, score_night, training_frame, use_temporary_data_dir
from benchmarks.drift_calibration import (
    DECEMBER_DAYS,
    DECEMBER_FIRST,
    DECEMBER_REFERENCE,
    FIRST_DAY,
    GROUPS,
    LAST_DAY,
    SPEC,
    STABLE_DAYS,
    STABLE_FIRST,
    STABLE_FIXED_REFERENCE,
    WINDOW_DAYS,
    dist,
    quiet_and_sensitive,
    sweep,
    tally,
    window,
)

HOLDOUT_DAYS = 3
MARGIN_GRID = (0.8, 0.9, 1.0, 1.1, 1.2, 1.5)
WIDENING_GRID = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
METRICS = ("flag_rate", "recall", "calibration")
SLICE_SIZES = ((50, 15), (100, 25), (150, 30), (200, 40))
"""(min flights, min late flights) of a slice: smaller slices are noisier."""


def fit_model(frame: Any, feature_columns: list[str], threshold: float) -> dict[str, Any]:
    """One candidate as train_candidate fits it, and its behaviour reference."""
    from threadpoolctl import threadpool_limits

    from include.training import candidates as training
    from include.training import fairness
    from include.training.reference import behaviour_reference

    split = training.time_split(frame, "scheduled_departure", HOLDOUT_DAYS)
    columns = training.input_columns(feature_columns)
    with threadpool_limits(limits=1):
        model, fit_s = training.fit(SPEC, split.train, feature_columns)
        p = training.scores(model, split.holdout, columns)
        t0 = time.perf_counter()
        behaviour = behaviour_reference(model, columns, split.train, split.holdout, p, threshold)
        reference_s = time.perf_counter() - t0
        days = split.holdout["scheduled_departure"].dt.strftime("%Y-%m-%d").to_numpy()
        y = split.holdout["late"].to_numpy()
        gaps_by_size = {
            f"{rows}/{late}": fairness.daily_gaps(split.holdout, days, y, p, threshold, rows, late)
            for rows, late in SLICE_SIZES
        }
    return {
        "model": model,
        "columns": columns,
        "holdout": split.holdout,
        "meta": behaviour,
        "fit_s": fit_s,
        "reference_s": reference_s,
        "gaps_by_size": gaps_by_size,
    }


class _Model:
    """What score_night expects of a reference (model and columns)."""

    def __init__(self, fitted: dict[str, Any]) -> None:
        self.model, self.columns = fitted["model"], fitted["columns"]


def evaluate_day(
    settings: Any, store: Any, fitted: dict[str, Any], day: datetime, policy: Any
) -> dict[str, Any]:
    """score_flights, then the day's labelled flights measured as monitor_model measures them."""
    from threadpoolctl import threadpool_limits

    from include.lake.partitions import interval_key
    from include.monitoring import model_checks
    from include.monitoring.reads import labelled_frame, served_frame
    from include.training import attribution
    from include.training.reference import ATTRIBUTION_KEY, FAIRNESS_KEY

    score_night(settings, store, _Model(fitted), "calibration", day)
    served = served_frame(settings, interval_key(*night(day)))
    labelled = labelled_frame(settings, served, day.date(), policy)
    t0 = time.perf_counter()
    with threadpool_limits(limits=1):
        shares, gaps = model_checks.measure_day(
            fitted["model"], fitted["columns"], labelled, settings.decision_threshold, policy
        )
    measure_s = time.perf_counter() - t0
    reference = fitted["meta"][ATTRIBUTION_KEY]
    ref_gaps = fitted["meta"][FAIRNESS_KEY]["daily"]
    ref_shares, night_shares = attribution.shares(reference["shares"]), attribution.shares(shares)
    from include.training import fairness

    y, p = labelled["late"].to_numpy(), labelled["score"].to_numpy()
    widening_by_size = {}
    for rows, late in SLICE_SIZES:
        ref = fitted["gaps_by_size"][f"{rows}/{late}"]
        found = fairness.slice_gaps(labelled, y, p, settings.decision_threshold, rows, late)
        widening_by_size[f"{rows}/{late}"] = {k: g.gap - ref[k] for k, g in found.items() if k in ref}
    return {
        "day": day.date().isoformat(),
        "flights": len(labelled),
        "late_share": float(labelled["late"].mean()),
        "measure_s": measure_s,
        "shift": attribution.shift(reference["shares"], shares),
        "day_max_shift": reference["day_max_shift"],
        "shift_over_day_max": attribution.shift(reference["shares"], shares) / reference["day_max_shift"],
        "shares": night_shares,
        "top_reference": attribution.top(ref_shares, 5),
        "top_night": attribution.top(night_shares, 5),
        "widening": {k: g.gap - ref_gaps[k] for k, g in gaps.items() if k in ref_gaps},
        "gaps": {k: g.gap for k, g in gaps.items()},
        "widening_by_size": widening_by_size,
    }


def gate_pairs(rolling: list[dict[str, Any]], threshold: float, age_days: int = 7) -> list[dict[str, Any]]:
    """What the gate's fairness check sees on ordinary retrains: each rolling model as the
    candidate against the one trained `age_days` earlier as the champion (train_model retrains
    weekly), both scored on the candidate's holdout; their widest slice gaps as the gate measures
    them (gate_steps.widest_gap)."""
    from threadpoolctl import threadpool_limits

    from include.training import candidates as training
    from include.training.gate_steps import widest_gap

    out = []
    for k in range(age_days, len(rolling)):
        cand, champ = rolling[k], rolling[k - age_days]
        holdout = cand["holdout"]
        with threadpool_limits(limits=1):
            pc = training.scores(cand["model"], holdout, cand["columns"])
            pp = training.scores(champ["model"], holdout, champ["columns"])
        c, p = widest_gap(holdout, pc, threshold), widest_gap(holdout, pp, threshold)
        if c is None or p is None:
            continue
        out.append({"pair": k, "candidate": c, "champion": p, "widening": c[1] - p[1]})
    return out


def widest(day: dict[str, Any], metric: str) -> float | None:
    values = [w for k, w in day["widening"].items() if k.startswith(metric + ".")]
    return max(values) if values else None


def measure(
    settings: Any, store: Any, policy: Any
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any], list[dict[str, Any]]]:
    ts = training_frame(settings, store, STABLE_FIXED_REFERENCE[0], DECEMBER_FIRST + timedelta(DECEMBER_DAYS))
    models: dict[str, Any] = {}

    def fit(name: str, start: datetime, end: datetime) -> dict[str, Any]:
        fitted = fit_model(window(ts.frame, start, end), ts.feature_columns, settings.decision_threshold)
        models[name] = {"fit_s": round(fitted["fit_s"], 2), "reference_s": round(fitted["reference_s"], 2)}
        return fitted

    days: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUPS}
    fixed = fit("stable-fixed", *STABLE_FIXED_REFERENCE)
    rolled = []
    for i in range(STABLE_DAYS):
        day = STABLE_FIRST + timedelta(days=i)
        rolling = fit(f"rolling-{day.date()}", day - timedelta(days=WINDOW_DAYS), day)
        rolled.append(rolling)
        days["stable_rolling"].append(evaluate_day(settings, store, rolling, day, policy))
        days["stable_fixed"].append(evaluate_day(settings, store, fixed, day, policy))
        print(f"  {day.date()} measured", flush=True)
    november = fit("november", *DECEMBER_REFERENCE)
    for i in range(DECEMBER_DAYS):
        day = DECEMBER_FIRST + timedelta(days=i)
        days["december"].append(evaluate_day(settings, store, november, day, policy))
    return days, models, gate_pairs(rolled, settings.decision_threshold)


def grids(days: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def shift_flag(d: dict[str, Any], st: dict[str, Any]) -> bool:
        return bool(d["shift"] > max(st["attribution_margin"] * d["day_max_shift"], 0.1))

    out: dict[str, Any] = {
        "attribution": sweep(days, [{"attribution_margin": x} for x in MARGIN_GRID], shift_flag)
    }
    for metric in METRICS:

        def flag(d: dict[str, Any], st: dict[str, Any], metric: str = metric) -> bool | None:
            w = widest(d, metric)
            return None if w is None else bool(w > st[f"fairness_{metric}_widening"])

        out[metric] = sweep(days, [{f"fairness_{metric}_widening": x} for x in WIDENING_GRID], flag)
    return out


def main() -> int:
    began = time.perf_counter()
    use_temporary_data_dir("attribution-calibration-")

    from include.monitoring import model_checks
    from include.monitoring.policy import MonitoringPolicy

    policy = MonitoringPolicy()
    settings, store, lake = build_lake(FIRST_DAY, LAST_DAY)
    print(f"lake: {lake}", flush=True)
    days, models, pairs = measure(settings, store, policy)
    rules = grids(days)
    defaults = {
        "attribution_margin": policy.attribution_margin,
        **{f"fairness_{m}_widening": model_checks.tolerance(m, policy) for m in METRICS},
    }
    summary: dict[str, Any] = {}
    for g in GROUPS:
        summary[g] = {
            "days": len(days[g]),
            "late_share": dist([d["late_share"] for d in days[g]]),
            "shift": dist([d["shift"] for d in days[g]]),
            "shift_over_day_max": dist([d["shift_over_day_max"] for d in days[g]]),
            **{f"widest_{m}_widening": dist([widest(d, m) for d in days[g]]) for m in METRICS},
            "default_policy": {
                "attribution": tally(
                    [
                        d["shift"]
                        > max(policy.attribution_margin * d["day_max_shift"], policy.attribution_min_shift)
                        for d in days[g]
                    ],
                    2,
                ),
                **{
                    m: tally(
                        [
                            None if (w := widest(d, m)) is None else w > model_checks.tolerance(m, policy)
                            for d in days[g]
                        ],
                        2,
                    )
                    for m in METRICS
                },
            },
            "fairness_any_metric": tally(
                [
                    any(w > model_checks.tolerance(k.split(".")[0], policy) for k, w in d["widening"].items())
                    for d in days[g]
                ],
                2,
            ),
            "top_features_first_day": {
                "reference": days[g][0]["top_reference"],
                "night": days[g][0]["top_night"],
            },
        }
    suggestions = {
        rule: (quiet_and_sensitive(rows, defaults)[:1] or [None])[0] for rule, rows in rules.items()
    }
    widenings = [p["widening"] for p in pairs]
    gate = {
        "pairs": len(pairs),
        "widening": dist(widenings),
        "refused_at": {
            str(t): sum(1 for w in widenings if w > t) for t in (0.02, 0.05, 0.08, 0.1, 0.15, 0.2)
        },
        "widest_gaps": [p["candidate"][0] for p in pairs],
    }
    result = {
        "date": datetime.now().strftime("%Y-%m-%d"),
        "gate": gate,
        "lake": lake,
        "models": models,
        "summary": summary,
        "suggestions": suggestions,
        "grids": rules,
        "days": days,
        "total_s": round(time.perf_counter() - began, 1),
    }
    print(json.dumps({"summary": summary, "suggestions": suggestions, "gate": gate}, indent=1, default=str))
    from include.core.settings import PROJECT_DIR

    out = PROJECT_DIR / "benchmarks" / "results" / "attribution_calibration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(f"written: {out} ({result['total_s']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
