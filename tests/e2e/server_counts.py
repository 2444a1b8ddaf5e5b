"""Rows of each raw partition in the lake, beside the rows of the same interval in the source,
counted straight from the source database with SQL of its own. Run in a process with a profile's
environment (`. <home>/env.sh`: the server profile's secrets are read when it is sourced).

Usage: python -m tests.e2e.server_counts '[["<start iso>", "<end iso>"], ...]'  -> JSON rows
[table, start, rows in the lake, rows in the source]
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime

import sqlalchemy as sa

from include.core.settings import get_settings
from include.lake.partitions import parquet_rows, partition_url
from include.source.dataset import SOURCE_TABLES


def source_rows(
    conn: sa.Connection, table: str, event_time: str | None, start: datetime, end: datetime
) -> int:
    if event_time is None:  # a reference table: each interval holds a snapshot of all of it
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())
    sql = sa.text(f"SELECT count(*) FROM {table} WHERE {event_time} >= :start AND {event_time} < :end")
    naive = {"start": start.replace(tzinfo=None), "end": end.replace(tzinfo=None)}
    return int(conn.execute(sql, naive).scalar_one())


def main(intervals: list[list[str]]) -> list[list[object]]:
    lake = get_settings().lake_root
    url = os.environ["AIRFLOW_CONN_FLIGHTS_SOURCE"].replace("postgresql://", "postgresql+psycopg://", 1)
    out: list[list[object]] = []
    with sa.create_engine(url).connect() as conn:
        for start_iso, end_iso in intervals:
            start, end = datetime.fromisoformat(start_iso), datetime.fromisoformat(end_iso)
            for t in SOURCE_TABLES:
                expected = source_rows(conn, t.name, t.event_time, start, end)
                got = parquet_rows(partition_url(lake, "raw", t.name, start, end))
                out.append([t.name, start_iso, got, expected])
    return out


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
