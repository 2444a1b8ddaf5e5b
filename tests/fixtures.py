"""Data fixtures shared by the tests and the benchmarks (`from tests.fixtures import ...` with the
project root on PYTHONPATH, as `make test` and `make bench` set it)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path


def write_real_days(days: list[datetime], lake_root: str | Path | None = None) -> None:
    """Real 2013 flights, outcomes and weather of `days` straight into the lake (default: the
    settings' lake root) as validated partitions, and those days' feature partitions: a lake for
    tests and benchmarks of the later stages without running ingestion (its own tests cover it)."""
    from include.core.settings import get_settings
    from include.features.partitions import write_interval_features
    from include.lake.partitions import conform, write_partition
    from include.source.dataset import FLIGHT_OUTCOMES, FLIGHT_SCHEDULES, WEATHER_OBSERVATIONS
    from include.source.demo.frames_2013 import load_2013

    lake_root = lake_root if lake_root is not None else get_settings().lake_root
    frames = load_2013(months=tuple(sorted({d.month for d in days} | {days[0].month - 1} - {0})))
    sources = {
        FLIGHT_SCHEDULES: frames.schedules,
        FLIGHT_OUTCOMES: frames.outcomes,
        WEATHER_OBSERVATIONS: frames.weather,
    }
    for d in days:
        for table, frame in sources.items():
            col = table.event_time
            rows = frame[(frame[col] >= d) & (frame[col] < d + timedelta(days=1))]
            write_partition(conform(rows, table), table, lake_root, "validated", d, d + timedelta(days=1))
    for d in days:
        write_interval_features(lake_root, d, d + timedelta(days=1))


class Boobytrap:
    """Unpickling this writes a file: proof that something unpickled it (the model-loading
    tests register it as a pickle-format model version)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))

    def predict(self, x):  # so MLflow logs it as a model with a python_function flavor
        return x
