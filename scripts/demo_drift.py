"""`make demo-drift`'s last step: the closed loop on real seasonal drift, under the real scheduler.

Usage: python scripts/demo_drift.py [--timeout 2400]   (run.sh runs it; see the Makefile)

The replay is anchored in mid-December 2013, so the lake holds early November to mid-December.
1. train_model is triggered once with a window that ends on 3 December 2013 (replayed date):
   the champion knows November, not the December storms;
2. score_flights scores the flights departing 3-11 December with it (one run, nine intervals);
3. the scheduler runs monitor_model on that `flight_predictions` event: the storm days' labels
   have arrived, the champion ranks and calibrates worse several days in a row: alert, and a
   `retrain_request` with the reasons;
4. the scheduler runs train_model on that asset: it trains on the latest 28 days, and its gate
   compares the new candidate with the November champion on the same December holdout.
Prints each step's outcome and where to look in the Airflow UI and in MLflow.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime, timedelta

from include.core.runtime_env import ADMIN_USER, admin_password, api_url
from scripts.airflow_api import AirflowAPI
from scripts.demo_model import print_monitoring, run_and_wait, wait_active_training, wait_triggered, wait_up

CHAMPION_WINDOW_END = date(2013, 12, 3)  # the champion is trained on the 21 days before
SCORED_FROM, SCORED_DAYS = date(2013, 12, 2), 9  # intervals whose flights depart Dec 3-11


def replay_offset_days() -> int:
    """Days between 2013 and the replayed dates (stored in the demo source when it was built)."""
    import sqlalchemy as sa

    from include.core.settings import get_settings
    from include.source.demo.build import read_replay_info

    engine = sa.create_engine(f"sqlite:///{get_settings().source_db_path}")
    try:
        info = read_replay_info(engine)
    finally:
        engine.dispose()
    if info is None:
        raise SystemExit("no demo source: run make demo-drift (it builds one)")
    return int(info["offset_days"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=40)  # accepted for run.sh; the days are fixed here
    parser.add_argument("--timeout", type=float, default=2400)
    args = parser.parse_args(argv)

    from include.core.settings import get_settings
    from include.monitoring.tables import requests
    from include.registry import tracking

    settings = get_settings()
    wait_up("MLflow", f"{settings.mlflow_tracking_uri}/health", 180)
    wait_up("the online service", f"{settings.serving_url}/health", 180)
    api = AirflowAPI(api_url(), ADMIN_USER, admin_password())
    shift = timedelta(days=replay_offset_days())

    def replayed(d: date) -> str:
        return (d + shift).isoformat()

    wait_active_training(api, args.timeout)
    if tracking.champion(settings) is None:
        print(
            f"==> training a champion on the 21 days before {CHAMPION_WINDOW_END} "
            f"(replayed {replayed(CHAMPION_WINDOW_END)})"
        )
        state = run_and_wait(
            api,
            "train_model",
            "demo_drift__november_model",
            {
                "window_end": replayed(CHAMPION_WINDOW_END),
                "window_days": 21,
                "reason": "drift demo: a champion trained before the December storms",
            },
            args.timeout,
        )
        if tracking.champion(settings) is None:
            print(f"train_model {state}: no champion deployed; see its logs", file=sys.stderr)
            return 1
    first = tracking.champion(settings)
    print(f"  champion: {settings.model_name} version {first.version}")

    print(
        f"==> scoring the flights departing {SCORED_FROM + timedelta(days=1)} .. "
        f"{SCORED_FROM + timedelta(days=SCORED_DAYS)} (2013) with it"
    )
    started = datetime.now(UTC)
    state = run_and_wait(
        api,
        "score_flights",
        f"demo_drift__score_december__v{first.version}",
        {"interval_start": replayed(SCORED_FROM), "days": SCORED_DAYS},
        1200,
    )
    if state != "success":
        print(f"score_flights {state}: see its logs", file=sys.stderr)
        return 1

    print("==> monitor_model (started by the scheduler on flight_predictions)")
    monitors = wait_triggered(api, "monitor_model", started, 1200)
    print(f"  runs: {', '.join(r['dag_run_id'] + ' ' + r['state'] for r in monitors)}")
    print_monitoring(settings)
    asked = requests(settings)
    asked = asked[asked["model_version"] == first.version]
    if asked.empty:
        print("  no retraining request: the policy did not fire (see apply_policy's log)", file=sys.stderr)
        return 1
    print(f"  retrain_request: {asked['reasons'].iloc[-1][:300]}")

    print("==> train_model (started by the scheduler on retrain_request)")
    trainings = [
        r
        for r in wait_triggered(api, "train_model", started, args.timeout)
        if r["run_type"] == "asset_triggered"
    ]
    for run in trainings:
        print(f"  run {run['dag_run_id']}: {run['state']}")
    challenger = tracking.challenger(settings)
    now = tracking.champion(settings)
    if challenger is not None:
        print(
            f"  gate for version {challenger.version}: {challenger.tags.get('gate.decision', '?')} "
            f"({challenger.tags.get('gate.reasons', '')[:300]})"
        )
    print(f"  champion now: version {now.version if now else 'none'} (before: {first.version})")
    print(
        "\nIn the Airflow UI: DAG monitor_model (apply_policy's WARNING block, build_report's report "
        "path), Assets > retrain_request (its event's extra holds the reasons), DAG train_model "
        "(the run triggered by the asset; evaluate_gate's decision table). MLflow: experiment "
        f"{settings.monitoring_experiment} (metrics by day), run tag retrain_requests on the new training."
    )
    return 0 if trainings else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
