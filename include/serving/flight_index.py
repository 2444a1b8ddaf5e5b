"""The flights the online service knows by id: those of the latest validated schedule partitions.

Re-read from the lake at most every `min_interval_s`, and only when the partitions changed.
"""

from __future__ import annotations

import time
from typing import Any

SCHEDULE_DAYS = 3  # flights of the latest 3 validated schedule partitions can be named by id


class FlightIndex:
    """Scheduled flights of the latest validated schedule partitions, by flight id."""

    def __init__(self, lake_root: str, days: int = SCHEDULE_DAYS, min_interval_s: float = 30.0) -> None:
        self.lake_root = lake_root
        self.days = days
        self.min_interval_s = min_interval_s
        self._files: tuple[str, ...] = ()
        self._checked = 0.0
        self._by_id: dict[int, dict[str, Any]] = {}

    def _latest_files(self) -> tuple[str, ...]:
        from include.lake.partitions import every_partition_url
        from include.source.dataset import FLIGHT_SCHEDULES

        files = every_partition_url(self.lake_root, "validated", FLIGHT_SCHEDULES.name)
        return tuple(files[-self.days :])

    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._checked < self.min_interval_s:
            return
        self._checked = time.monotonic()
        files = self._latest_files()
        if files == self._files:
            return
        from include.lake.partitions import read_partition

        frames = [read_partition(f) for f in files]
        by_id: dict[int, dict[str, Any]] = {}
        for frame in frames:
            for row in frame[
                ["flight_id", "tailnum", "carrier", "origin", "dest", "scheduled_departure"]
            ].to_dict("records"):
                by_id[int(row["flight_id"])] = row
        self._by_id, self._files = by_id, files

    def get(self, flight_id: int) -> dict[str, Any] | None:
        self.refresh()
        return self._by_id.get(flight_id)

    def __len__(self) -> int:
        return len(self._by_id)
