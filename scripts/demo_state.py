"""Wait until a running Airflow reaches the demo state: the last N days ingested and their
features materialized into the online store.

Usage: python scripts/demo_state.py [--days 14] [--timeout 600]

scripts/run.sh queues the runs (a bounded backfill, created before the scheduler starts);
this waits for the DAGs to be parsed (fails on import errors), makes sure they are unpaused,
and waits until every interval of the window has succeeded, then until materialize_features
(triggered by the validated assets) has covered every one of them, printing progress.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime, timedelta

from include.core.runtime_env import ADMIN_USER, admin_password, api_url
from scripts.airflow_api import AirflowAPI

DAG_ID = "ingest_flights"
FEATURES_DAG_ID = "materialize_features"


def wanted_intervals(today: date, days: int) -> list[date]:
    """Start days of the last `days` complete daily intervals before `today` (oldest first)."""
    return [today - timedelta(days=n) for n in range(days, 0, -1)]


def interval_states(runs: list[dict]) -> dict[date, str]:
    """Best state per interval start day (success wins over any failed attempt)."""
    rank = {"success": 3, "running": 2, "queued": 1}
    states: dict[date, str] = {}
    for run in runs:
        start = run.get("data_interval_start")
        if not start:
            continue
        day = datetime.fromisoformat(start.replace("Z", "+00:00")).date()
        if rank.get(run["state"], 0) >= rank.get(states.get(day, ""), 0):
            states[day] = run["state"]
    return states


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)

    api = AirflowAPI(api_url(), ADMIN_USER, admin_password())
    api.wait_healthy(timeout=240)
    deadline = time.monotonic() + 180
    while not api.dag_exists(DAG_ID):
        errors = api.import_errors()
        if errors:
            for err in errors:
                print(f"IMPORT ERROR in {err.get('filename')}:\n{err.get('stack_trace')}", file=sys.stderr)
            return 1
        if time.monotonic() > deadline:
            print(f"DAG {DAG_ID} not parsed after 180 s; see .airflow/logs", file=sys.stderr)
            return 1
        time.sleep(3)
    if api.get(f"/api/v2/dags/{DAG_ID}").get("is_paused"):
        api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": False})

    today = datetime.now(UTC).date()
    wanted = wanted_intervals(today, args.days)
    started = time.monotonic()
    while True:
        states = interval_states(api.dag_runs(DAG_ID))
        done = [d for d in wanted if states.get(d) == "success"]
        failed = [d for d in wanted if states.get(d) == "failed"]
        print(f"  {DAG_ID}: {len(done)}/{len(wanted)} intervals succeeded", flush=True)
        if len(done) == len(wanted):
            return wait_for_features(api, wanted, args.timeout)
        if failed and not any(states.get(d) in ("running", "queued") for d in wanted):
            print(f"{DAG_ID} failed for {failed}: open the Airflow UI for the task logs", file=sys.stderr)
            return 1
        absent = [d for d in wanted if d not in states]
        if absent and not any(s in ("running", "queued") for s in states.values()):
            print(
                f"no runs exist for {absent[0]} .. {absent[-1]}: `make stop && make run` queues them",
                file=sys.stderr,
            )
            return 1
        if time.monotonic() - started > args.timeout:
            print(f"timed out after {args.timeout:.0f} s waiting for {DAG_ID}", file=sys.stderr)
            return 1
        time.sleep(5)


def materialized_days(api: AirflowAPI, runs: list[dict]) -> set[date]:
    """Start days of the intervals that successful materialize_features runs verified online."""
    days: set[date] = set()
    for run in runs:
        if run["state"] != "success":
            continue
        path = (
            f"/api/v2/dags/{FEATURES_DAG_ID}/dagRuns/{run['dag_run_id']}"
            "/taskInstances/verify_online_reads/xcomEntries/return_value?deserialize=true"
        )
        value = api.get(path).get("value") or {}
        for start, _ in value.get("intervals", []):
            days.add(datetime.fromisoformat(start).date())
    return days


STALL_S = 30.0
"""How long materialize_features may sit idle with days missing before a catch-up run is started."""


def wait_for_features(api: AirflowAPI, wanted: list[date], timeout: float) -> int:
    """Until every wanted day is online. An asset event that lands while Airflow creates a run can
    end up in no run (materialize_features' docs); every run catches up on what the lake says is
    not done, but the last day has no later event to start one: after STALL_S idle with days
    missing, one catch-up run is started (a manual run: it processes the stale days)."""
    started = time.monotonic()
    idle_since: float | None = None
    nudged = 0
    while True:
        runs = api.dag_runs(FEATURES_DAG_ID)
        covered = materialized_days(api, runs)
        done = [d for d in wanted if d in covered]
        busy = any(r["state"] in ("running", "queued") for r in runs)
        print(f"  {FEATURES_DAG_ID}: {len(done)}/{len(wanted)} intervals online", flush=True)
        if len(done) == len(wanted):
            return 0
        idle_since = None if busy else (idle_since or time.monotonic())
        if idle_since is not None and time.monotonic() - idle_since > STALL_S and nudged < 3:
            missing = [d.isoformat() for d in wanted if d not in covered]
            print(f"  {FEATURES_DAG_ID} idle with {missing} not online: starting a catch-up run", flush=True)
            run_id = f"make_run__catch_up__{datetime.now(UTC):%Y%m%dT%H%M%S}"
            api.post(
                f"/api/v2/dags/{FEATURES_DAG_ID}/dagRuns",
                {"dag_run_id": run_id, "logical_date": None, "conf": {}},
            )
            nudged, idle_since = nudged + 1, None
        if not busy and any(r["state"] == "failed" for r in runs):
            print(f"{FEATURES_DAG_ID} failed: open the Airflow UI for the task logs", file=sys.stderr)
            return 1
        if time.monotonic() - started > timeout:
            print(f"timed out after {timeout:.0f} s waiting for {FEATURES_DAG_ID}", file=sys.stderr)
            return 1
        time.sleep(5)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
