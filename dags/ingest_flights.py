# TaskFlow wiring passes a task's output (an XComArg) where the next task declares the value it
# receives; mypy cannot see through the decorator, so only that check is off in this file.
# mypy: disable-error-code="arg-type"
"""
### ingest_flights: each day of the flights source, extracted into the lake

**What it does.** For every data interval (one UTC day, half-open `[start, end)`), one
`extract_<table>` task per source table reads the rows whose *event time* falls in the
interval (schedules by `published_at`, outcomes by `reported_at`, weather by `observed_at`),
snapshots the reference tables (airports, airlines, planes), and writes one raw partition:
`<lake>/raw/<table>/interval=<start>_<end>/part-0.parquet`. Each task emits its asset
`raw_<table>`; the event's extra holds `rows`, `sha256`, `path` and the interval.

**Safe to rerun.** Partitions are written atomically (temp file + rename) and sorted by key:
clearing a task rewrites a byte-identical file, never duplicates. Outcomes arrive after the
flight lands plus a reporting lag, so a flight's label lands in a later interval than its
schedule: that is expected, not missing data.

**When a task is red** (full runbook: README.md, section *On call*). Nothing is written
by a failed task: the previous partition of the interval, if any, is untouched.

- `SourceUnavailableError`: the source database is unreachable or a table is missing.
  Check connection `flights_source` (Admin > Connections) or run `make source`; clear the task.
- `SourceSchemaError`: a declared column is missing or renamed in the source. If the change
  is intended, update `include/source/dataset.py`; otherwise ask the source owners. Clear the task.
- `IntervalNotClosedError`: the interval has not ended on the source clock yet. Wait, then
  clear the task.

An empty interval is not an error: the task logs a warning and writes a 0-row partition.

**Validation.** `validate_<table>` checks each event table's raw partition (exact schema, keys,
ranges, airport and carrier codes against the same interval's snapshots, arrival after
departure, rows of another interval, volume against the same weekday of the last 4 weeks) and
then publishes it to `<lake>/validated/...` (asset `validated_<table>`). Defective rows below 5 %
go to `<lake>/quarantine/<table>/interval=.../rows.parquet` with a reason code; a blocking defect
quarantines the whole partition (`reason.json` beside it) and fails the task with
`PartitionQuarantinedError`: fix the source and clear the task, or trigger the interval again with
Params `force_publish=true` and a `reason` (recorded in the quarantine record and the asset event).
Every validation renders a Great Expectations Data Docs page under `<artifacts>/data_docs/`
(MLOPS_ARTIFACTS_ROOT, by default the data folder; an s3:// URL when workers share no disk); the
task log prints its location (`Data Docs page of this validation: ...`), and `index.html` there
lists every validation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, Param, dag, task

from include.airflow_glue import assets
from include.airflow_glue.connections import source_engine
from include.airflow_glue.defaults import task_defaults
from include.core.settings import FLIGHTS_SOURCE_CONN_ID, SOURCE_DB_POOL
from include.source.dataset import SOURCE_TABLES


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    # No automatic catchup: a new deployment would otherwise replay every day since
    # start_date. `make run` (or `make backfill DAYS=n`) backfills a bounded window instead.
    catchup=False,
    max_active_runs=4,
    dagrun_timeout=timedelta(hours=2),
    default_args=task_defaults(owner="data-platform", retries=2, retry_exponential_backoff=True),
    tags=["mlops", "ingest", "flights"],
    doc_md=__doc__,
    params={
        "force_publish": Param(
            False, type="boolean", description="Publish a quarantined interval anyway (needs a reason)."
        ),
        "reason": Param("", type="string", description="Why the interval is force-published (recorded)."),
    },
)
def ingest_flights() -> None:
    @task(pool=SOURCE_DB_POOL)
    def extract_table(table_name: str, **context) -> dict:
        """Extract one interval of one source table into its raw partition."""
        from include.core.settings import get_settings
        from include.source.dataset import get_table
        from include.source.extract import extract_step

        settings = get_settings()
        info = extract_step(
            source_engine(),
            get_table(table_name),
            context["data_interval_start"],
            context["data_interval_end"],
            settings,
            FLIGHTS_SOURCE_CONN_ID,
        )
        assets.emit(context, assets.RAW[table_name], info.as_dict())
        return info.as_dict()

    @task
    def validate_table(
        table_name: str, raw: dict, airports: dict, airlines: dict, planes: dict, **context
    ) -> dict:
        """Check one raw partition, then publish it, split out bad rows, or quarantine it."""
        import logging

        from include.core.settings import get_settings
        from include.quality.gx_session import GxSession
        from include.quality.steps import force_reason_from_params, validate_partition
        from include.source.dataset import get_table

        settings = get_settings()
        summary = validate_partition(
            get_table(table_name),
            raw["path"],
            airports["path"],
            airlines["path"],
            settings.lake_root,
            context["data_interval_start"],
            context["data_interval_end"],
            force_reason=force_reason_from_params(context["params"]),
            session=GxSession(settings.data_docs_root, settings.validation_results_root),
            log=logging.getLogger("airflow.task"),
            planes_path=planes["path"],
        )
        assets.emit(context, assets.VALIDATED[table_name], summary)
        return dict(summary)

    raw = {
        table.name: extract_table.override(
            task_id=f"extract_{table.name}",
            inlets=[assets.SOURCE[table.name]],
            outlets=[assets.RAW[table.name]],
        )(table.name)
        for table in SOURCE_TABLES
    }
    for table_name in assets.VALIDATED:
        validate_table.override(
            task_id=f"validate_{table_name}",
            inlets=[assets.RAW[name] for name in (table_name, "airports", "airlines", "planes")],
            outlets=[assets.VALIDATED[table_name]],
        )(table_name, raw[table_name], raw["airports"], raw["airlines"], raw["planes"])


ingest_flights()
