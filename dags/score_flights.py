"""
### score_flights: the next day's scheduled flights scored with the champion

**When it runs.** Whenever `flight_features` is emitted (materialize_features verified a day
online), i.e. daily once the day is ingested; by hand with Params `interval_start` and `days`.

**What it does.** For each interval [start, end) of the triggering event: the flights whose
schedule was published in it (they depart during the following day) get their features from
Feast as of their prediction time (departure − `MLOPS_PREDICTION_LEAD_HOURS`, never later than
the interval's end), are scored with the version behind MLflow's `champion` alias, and are
written to the prediction log (`MLOPS_PREDICTION_LOG_URL`, table `prediction_log`): flight,
model version, feature values, score, time. A rerun replaces the interval's rows: exactly one
batch prediction per scheduled flight. Emits `flight_predictions`. When a version is in
`shadow` (train_model's `promotion=shadow`), the same flights are scored by it too and logged as
`shadow` rows, never served; a shadow that cannot be loaded is logged and skipped.

**When a task is red** (runbook: README.md, *On call*).
- Skipped `score_next_day` with "no champion": no model is deployed yet; run train_model.
- Feast or MLflow errors: the feature store or the tracking server is unreachable; check
  `make run`'s services, then clear the task.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from include.airflow_glue import assets
from include.airflow_glue.defaults import task_defaults


@dag(
    schedule=assets.ONLINE_FEATURES,
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=1),
    default_args=task_defaults(retries=2),
    tags=["mlops", "serving", "batch"],
    doc_md=__doc__,
    params={
        "interval_start": Param(
            None, type=["null", "string"], format="date", description="Manual run: first day (UTC) to score."
        ),
        "days": Param(1, type="integer", minimum=1, maximum=31, description="Manual run: how many days."),
    },
)
def score_flights() -> None:
    @task(
        inlets=[
            assets.CHAMPION_MODEL,
            assets.MODEL_VERSIONS,
            assets.FEATURE_PARTITIONS,
            assets.VALIDATED["flight_schedules"],
        ],
        outlets=[assets.FLIGHT_PREDICTIONS],
    )
    def score_next_day(**context) -> list[dict]:
        """Score each interval's published flights with the champion; log every prediction."""
        import logging

        from airflow.sdk.exceptions import AirflowSkipException

        from include.airflow_glue.connections import feature_store
        from include.core.settings import get_settings
        from include.serving.batch import intervals_to_score, predictions_extra, score_intervals
        from include.serving.champion import load_champion, load_shadow

        settings = get_settings()
        params = context["params"]
        days = int(params.get("days") or 1)
        intervals = intervals_to_score(assets.triggering_extras(context), params.get("interval_start"), days)
        champion = load_champion(settings)
        if champion is None:
            raise AirflowSkipException(
                f"no champion: no version of {settings.model_name} is deployed yet. Run train_model."
            )
        log = logging.getLogger("airflow.task")
        shadow = load_shadow(settings, log)  # scored beside the champion, never served
        scores = score_intervals(
            settings, feature_store(settings), champion, intervals, context["run_id"], log, shadow
        )
        assets.emit(context, assets.FLIGHT_PREDICTIONS, predictions_extra(champion.version, scores))
        return [score.as_dict() for score in scores]

    score_next_day()


score_flights()
