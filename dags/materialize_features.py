# TaskFlow wiring passes a task's output (an XComArg) where the next task declares the value it
# receives; mypy cannot see through the decorator, so only that check is off in this file.
# mypy: disable-error-code="arg-type"
"""
### materialize_features: validated days → feature partitions → Feast online store

**When it runs.** Whenever both `validated_flight_outcomes` and `validated_weather_observations`
have new events (ingest_flights published a day). The intervals come from those events'
extras; a manual run takes Params `interval_start` (a date) and `days`. Later days whose
features already exist and whose 28-day statistics include a processed day are recomputed
too, so days arriving out of order (a backfill, a released quarantine) end in the same state.
Every run also catches up on validated days whose features are missing or older than their
inputs (Airflow can leave an event that lands while a run is created out of every run).

**What it does.**
1. `apply_definitions`: `feast apply` of `include/features/feature_repo`, only when its files or resolved
   config changed (hash in `<data>/feast/applied_definitions.sha256`). Pool `feast_registry` (one
   slot): registry writes never run concurrently.
2. `build_feature_partitions`: per interval, the plane / carrier / route delay statistics as of
   the interval's end (outcomes reported in the last 7 or 28 days only) and the origin's hourly
   weather, to `<lake>/features/<view>/interval=<start>_<end>/part-0.parquet`. Atomic; a rerun
   rewrites the same bytes.
3. `materialize_online`: Feast materialize from the interval's start to the latest end already
   materialized, in chunks of `MLOPS_FEAST_CHUNK_HOURS` (memory stays flat), oldest first, so the
   newest values win whatever order intervals arrive in.
4. `verify_online_reads`: online reads for a sample of the interval's keys must equal the latest
   offline rows; then the `flight_features` asset is emitted with counts.

**When a task is red** (runbook: README.md, *On call*).
- `MissingValidatedPartitionError`: the interval's validated outcomes or weather are missing
  (not ingested, or quarantined). Fix ingest_flights for that interval, then clear this run.
- `OnlineStoreMismatchError`: the online store does not serve what the offline rows say. Clear
  `materialize_online`; if it persists, delete `<data>/feast/online_store.db` and re-run the
  latest intervals.
- Anything from Feast at `apply_definitions`: a definition in `include/features/feature_repo` is invalid;
  run `make feast ARGS=plan` locally to see why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from include.airflow_glue import assets
from include.airflow_glue.connections import feature_store
from include.airflow_glue.defaults import task_defaults
from include.core.settings import FEAST_REGISTRY_POOL, get_settings


@dag(
    schedule=(assets.VALIDATED["flight_outcomes"] & assets.VALIDATED["weather_observations"]),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=2),
    default_args=task_defaults(retries=2),
    tags=["mlops", "features", "feast"],
    doc_md=__doc__,
    params={
        "interval_start": Param(
            None,
            type=["null", "string"],
            format="date",
            description="Manual run: first day (UTC) to process.",
        ),
        "days": Param(1, type="integer", minimum=1, maximum=92, description="Manual run: how many days."),
    },
)
def materialize_features() -> None:
    @task
    def plan_intervals(**context) -> list[list[str]]:
        """The intervals of the triggering validated-asset events (or of the Params), plus the
        later days already computed whose statistics read them."""
        import logging

        from include.core.settings import get_settings
        from include.features.partitions import intervals_to_process, stale_intervals, with_dependents

        extras = assets.triggering_extras(context)
        params = context["params"]
        intervals = intervals_to_process(extras, params.get("interval_start"), int(params.get("days") or 1))
        caught_up = sorted(set(stale_intervals(get_settings().lake_root)) - set(intervals))
        if caught_up:
            logging.getLogger("airflow.task").info(
                "catching up %d validated day(s) without current features: %s",
                len(caught_up),
                ", ".join(f"{s:%Y-%m-%d}" for s, _ in caught_up),
            )
        intervals = sorted(set(intervals) | set(caught_up))
        if not intervals:
            raise ValueError("nothing to process: no triggering asset events and no Params interval_start")
        planned = with_dependents(get_settings().lake_root, intervals)
        if len(planned) > len(intervals):
            logging.getLogger("airflow.task").info(
                "also recomputing %d later day(s) whose statistics include these",
                len(planned) - len(intervals),
            )
        return [[s.isoformat(), e.isoformat()] for s, e in planned]

    @task(pool=FEAST_REGISTRY_POOL, outlets=[assets.FEATURE_DEFINITIONS])
    def apply_definitions() -> dict:
        """`feast apply` when the feature repo changed (hash), else nothing."""
        import logging

        settings = get_settings()
        store = feature_store(settings)
        from include.features.store import apply_if_changed

        return apply_if_changed(store, settings, logging.getLogger("airflow.task"))

    @task(inlets=list(assets.VALIDATED.values()), outlets=[assets.FEATURE_PARTITIONS])
    def build_feature_partitions(intervals: list[list[str]]) -> dict:
        """Feature rows of each interval, written to the lake's features zone."""
        from include.core.settings import get_settings
        from include.features.partitions import write_interval_features

        rows: dict[str, int] = {}
        for start, end in intervals:
            infos = write_interval_features(
                get_settings().lake_root, datetime.fromisoformat(start), datetime.fromisoformat(end)
            )
            for name, info in infos.items():
                rows[name] = rows.get(name, 0) + info.rows
        return {"intervals": len(intervals), "rows": rows}

    @task(
        pool=FEAST_REGISTRY_POOL,
        inlets=[assets.FEATURE_DEFINITIONS, assets.FEATURE_PARTITIONS],
        outlets=[assets.ONLINE_STORE],
    )
    def materialize_online(intervals: list[list[str]], _applied: dict, _built: dict) -> list[dict]:
        """One materialization from the earliest interval to the latest end (chunked, oldest first)."""
        import logging

        from include.features.store import materialize_interval

        settings = get_settings()
        store = feature_store(settings)
        start = min(datetime.fromisoformat(s) for s, _ in intervals)
        end = max(datetime.fromisoformat(e) for _, e in intervals)
        return [
            materialize_interval(store, settings, start, end, logging.getLogger("airflow.task")).as_dict()
        ]

    @task(inlets=[assets.ONLINE_STORE, assets.FEATURE_PARTITIONS], outlets=[assets.ONLINE_FEATURES])
    def verify_online_reads(intervals: list[list[str]], materialized: list[dict], **context) -> dict:
        """Online reads for a sample of keys equal the latest offline rows; emit the asset."""
        from include.features import steps

        settings = get_settings()
        summary = steps.verify_online_reads(feature_store(settings), settings, intervals, materialized)
        assets.emit(context, assets.ONLINE_FEATURES, summary)
        return dict(summary)

    intervals = plan_intervals()
    applied = apply_definitions()
    built = build_feature_partitions(intervals)
    materialized = materialize_online(intervals, applied, built)
    verify_online_reads(intervals, materialized)


materialize_features()
