"""`make run`'s last step: a champion in MLflow, the next day's flights scored, /predict answering.

Usage: python scripts/demo_model.py [--days 14] [--timeout 1200]

Waits for the MLflow server and the online service, triggers train_model once when no version
has the alias `champion` (and enough days exist to train on), then score_flights for the latest
interval, and finally asks the service for a prediction of a flight of the next day and prints it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from include.core.runtime_env import ADMIN_USER, admin_password, api_url
from scripts.airflow_api import AirflowAPI

MIN_DAYS = 7  # fewer ingested days leave too little to train and hold out


def http_json(url: str, body: dict | None = None, timeout: float = 10) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST" if body is not None else "GET")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read().decode() or "{}")


def wait_up(name: str, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} did not answer at {url} within {timeout:.0f} s") from None
            time.sleep(2)


def run_and_wait(api: AirflowAPI, dag_id: str, run_id: str, conf: dict, timeout: float) -> str:
    """Trigger `dag_id` once (a fixed run id makes a rerun of make run reuse it) and wait."""
    try:
        api.post(f"/api/v2/dags/{dag_id}/dagRuns", {"dag_run_id": run_id, "logical_date": None, "conf": conf})
    except urllib.error.HTTPError as exc:
        if exc.code != 409:  # 409: this run exists already (make run ran before)
            raise
    return wait_run(api, dag_id, run_id, timeout)


def wait_run(api: AirflowAPI, dag_id: str, run_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        state = api.get(f"/api/v2/dags/{dag_id}/dagRuns/{quote(run_id, safe='')}")["state"]
        if state in ("success", "failed"):
            return state
        if time.monotonic() > deadline:
            return f"still {state} after {timeout:.0f} s"
        print(f"  {dag_id}: {state}", flush=True)
        time.sleep(10)


def wait_active_training(api: AirflowAPI, timeout: float) -> None:
    """Let train_model runs already queued or running finish first (e.g. the weekly run the
    scheduler starts when it comes up on a Monday), so a demo step never races them."""
    for run in [r for r in api.dag_runs("train_model") if r["state"] in ("queued", "running")]:
        print(f"==> waiting for train_model run {run['dag_run_id']}")
        wait_run(api, "train_model", run["dag_run_id"], timeout)


def runs_since(api: AirflowAPI, dag_id: str, since: datetime) -> list[dict]:
    """Runs of `dag_id` created at or after `since` (asset-triggered ones included)."""
    runs = api.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=50&order_by=-run_after")["dag_runs"]
    return [r for r in runs if datetime.fromisoformat(r["run_after"]) >= since]


def wait_triggered(api: AirflowAPI, dag_id: str, since: datetime, timeout: float) -> list[dict]:
    """Wait until the scheduler has started `dag_id` (on an asset) after `since` and its runs ended."""
    deadline = time.monotonic() + timeout
    while True:
        runs = runs_since(api, dag_id, since)
        if runs and all(r["state"] in ("success", "failed") for r in runs):
            return runs
        if time.monotonic() > deadline:
            return runs
        print(f"  {dag_id}: {', '.join(r['state'] for r in runs) or 'waiting for the scheduler'}", flush=True)
        time.sleep(10)


def print_monitoring(settings: Any) -> None:
    """The latest monitoring report and the last night's checks, from the monitoring tables."""
    from include.lake import storage
    from include.monitoring.tables import checks_history

    found = [r for r in storage.ls(settings.monitoring_reports_root) if r.endswith(".html")]
    reports = sorted(found, key=storage.modified)
    history = checks_history(settings)
    if history.empty:
        print("  no monitoring results yet")
        return
    last = history[history["day"] == history["day"].max()]
    for row in last.itertuples():
        status = {1: "BREACHED", 0: "ok"}.get(row.breached, "not evaluated")
        print(f"  {row.day} {row.check:<18} {status:<14} {row.detail[:110]}")
    if reports:
        print(f"  report: {reports[-1]}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--timeout", type=float, default=1200)
    args = parser.parse_args(argv)

    from include.core.settings import get_settings
    from include.registry import tracking
    from include.registry.deploy import probe_from_lake

    settings = get_settings()
    wait_up("MLflow", f"{settings.mlflow_tracking_uri}/health", 180)
    wait_up("the online service", f"{settings.serving_url}/health", 180)
    api = AirflowAPI(api_url(), ADMIN_USER, admin_password())
    today = datetime.now(UTC).date()

    wait_active_training(api, args.timeout)
    champion = tracking.champion(settings)
    if champion is None:
        if args.days < MIN_DAYS:
            print(f"  {args.days} days ingested (< {MIN_DAYS}): train_model not triggered")
            return 0
        print("==> training the first model (train_model: candidates, MLflow, gate, deployment)")
        state = run_and_wait(
            api,
            "train_model",
            f"make_run__first_model__{today}",
            {"reason": "make run: first model", "window_days": args.days},
            args.timeout,
        )
        champion = tracking.champion(settings)
        if champion is None:
            challenger = tracking.challenger(settings)
            reasons = challenger.tags.get("gate.reasons", "") if challenger else "no candidate registered"
            print(f"train_model {state}; no champion. Gate: {reasons}. See the run's logs.", file=sys.stderr)
            return 1

    latest = today - timedelta(days=1)
    print(f"==> scoring the flights published on {latest} (score_flights)")
    started = datetime.now(UTC)
    score_run = f"make_run__score__{latest}__v{champion.version}"
    state = run_and_wait(api, "score_flights", score_run, {"interval_start": str(latest), "days": 1}, 600)
    if state != "success":
        print(f"score_flights {state}: see its logs in the Airflow UI", file=sys.stderr)
        return 1

    print("==> monitoring the scored day (monitor_model runs on flight_predictions)")
    scored = api.get(f"/api/v2/dags/score_flights/dagRuns/{quote(score_run, safe='')}")
    if datetime.fromisoformat(scored["run_after"]) >= started:  # new scores: the scheduler monitors them
        wait_triggered(api, "monitor_model", started, 600)
    print_monitoring(settings)

    request = {"flight_id": probe_from_lake(settings)["flight_id"]}  # a flight departing the next day
    answer = http_json(f"{settings.serving_url}/predict", request)
    tags = champion.tags
    print(
        f"  champion: {settings.model_name} version {champion.version} "
        f"(gate: {tags.get('gate.decision', '?')}; {tags.get('gate.reasons', '')})"
    )
    print(f"  POST {settings.serving_url}/predict {json.dumps(request)}\n    -> {json.dumps(answer)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
