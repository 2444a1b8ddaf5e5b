"""Benchmark of the ingestion path: prints figures and writes benchmarks/results/ingest.json.

- extraction of one daily interval per table from the demo source (SQLite), median of N days;
- DAG parse time (DagBag over dags/), median of 5 parses.

Usage: PYTHONPATH=. python benchmarks/bench_ingest.py [--days 7]
Needs the demo source (`make source`). Not a test: figures vary with the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from include.core.clock import utc_now
from include.core.settings import PROJECT_DIR, get_settings
from include.source.dataset import SOURCE_TABLES
from include.source.demo.build import read_replay_info
from include.source.extract import extract_to_lake


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=7)
    args = parser.parse_args(argv)
    settings = get_settings()
    if not settings.source_db_path.is_file():
        print("no demo source: run `make source` first", file=sys.stderr)
        return 1
    engine = sa.create_engine(f"sqlite:///{settings.source_db_path}")
    info = read_replay_info(engine)
    now = utc_now(settings.clock_now)
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    per_table: dict[str, list[float]] = {t.name: [] for t in SOURCE_TABLES}
    rows: dict[str, list[int]] = {t.name: [] for t in SOURCE_TABLES}
    day_seconds, day_rows = [], []
    with tempfile.TemporaryDirectory() as lake:
        for n in range(1, args.days + 1):
            start, end = today - timedelta(days=n), today - timedelta(days=n - 1)
            total_t, total_r = 0.0, 0
            for table in SOURCE_TABLES:
                t0 = time.perf_counter()
                part = extract_to_lake(engine, table, start, end, now, Path(lake))
                dt = time.perf_counter() - t0
                per_table[table.name].append(dt)
                rows[table.name].append(part.rows)
                total_t += dt
                total_r += part.rows
            day_seconds.append(total_t)
            day_rows.append(total_r)

    # A throwaway Airflow home unless one is configured (`. .airflow/env.sh`).
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="bench-airflow-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    from airflow.dag_processing.dagbag import DagBag

    parse = []
    for _ in range(5):
        t0 = time.perf_counter()
        bag = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
        parse.append(time.perf_counter() - t0)
        assert not bag.import_errors

    results = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "scale_factor": info["scale_factor"] if info else None,
        "days": args.days,
        "per_table_median_s": {k: round(statistics.median(v), 4) for k, v in per_table.items()},
        "per_table_median_rows": {k: statistics.median(v) for k, v in rows.items()},
        "day_median_s": round(statistics.median(day_seconds), 3),
        "day_median_rows": statistics.median(day_rows),
        "rows_per_s": round(statistics.median(r / s for r, s in zip(day_rows, day_seconds, strict=True))),
        "dagbag_parse_median_s": round(statistics.median(parse), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    out = PROJECT_DIR / "benchmarks" / "results" / "ingest.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    for key, value in results.items():
        print(f"{key:24} {value}")
    print(f"written to {out.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
