"""Benchmark of the on-call page: load time of "Model health" against the running `make run`.

The page is served by the Airflow API server (plugins/model_health_plugin.py) and reads the
recorded state: MLflow (the server of make run), the monitoring tables, the lake's quarantine
records, the online service's /health. Measured from outside, as a browser would: the HTML page
and its JSON API, each loaded `--loads` times (default 20) with an authenticated Bearer token,
after one first load (which pays the one-time imports of the API server process: MLflow's client,
SQLAlchemy models). Reports the median, min and max, plus the snapshot's own read time
(`elapsed_ms` of the JSON) so the server's share is visible.

Needs `make run` (the page shows live data only there). Prints the figures and writes
benchmarks/results/model_health.json.
Usage: PYTHONPATH=. python benchmarks/bench_model_health.py [--loads 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from datetime import UTC, datetime

from include.core.runtime_env import ADMIN_USER, admin_password, api_url
from include.core.settings import PROJECT_DIR
from scripts.airflow_api import AirflowAPI

RESULTS = PROJECT_DIR / "benchmarks" / "results" / "model_health.json"


def load(url: str, token: str) -> tuple[float, bytes]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=60) as resp:
        body = resp.read()
    return (time.perf_counter() - started) * 1000, body


def summary(times: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=20)
    args = parser.parse_args()
    base = api_url()
    api = AirflowAPI(base, ADMIN_USER, admin_password())
    if not api.healthy():
        print(f"no Airflow at {base}: start it with `make run`", file=sys.stderr)
        return 1
    token = api.token()
    first_ms, _ = load(f"{base}/model-health/", token)
    page = [load(f"{base}/model-health/", token)[0] for _ in range(args.loads)]
    api_times, reads = [], []
    for _ in range(args.loads):
        ms, body = load(f"{base}/model-health/api/health", token)
        api_times.append(ms)
        reads.append(json.loads(body)["elapsed_ms"])
    snap = json.loads(body)
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loads": args.loads,
        "first_load_ms": round(first_ms, 1),
        "page": summary(page),
        "api": summary(api_times),
        "server_read": summary(reads),
        "champion": (snap.get("champion") or {}).get("version"),
        "nights_shown": len(snap["monitoring"].get("days", [])),
        "candidates_shown": len(snap.get("candidates", [])),
    }
    print(
        f"model health page: median {result['page']['median_ms']} ms "
        f"[{result['page']['min_ms']}-{result['page']['max_ms']}] over {args.loads} loads "
        f"(first load {result['first_load_ms']} ms); API median {result['api']['median_ms']} ms; "
        f"server-side read median {result['server_read']['median_ms']} ms; "
        f"champion v{result['champion']}, {result['nights_shown']} nights, "
        f"{result['candidates_shown']} versions"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2))
    print(f"written to {RESULTS.relative_to(PROJECT_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
