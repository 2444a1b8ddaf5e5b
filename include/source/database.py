"""The source database seen through SQLAlchemy Core, generic over include/source/dataset.py.

SQLAlchemy expressions keep every query parameterized and portable: the same code reads a
SQLite file (the demo default) or PostgreSQL (change the `flights_source` connection).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy as sa

from include.core.schema import LogicalType, SourceTable
from include.lake.partitions import conform

_SQL_TYPES: dict[LogicalType, sa.types.TypeEngine] = {
    "int64": sa.BigInteger(),
    "float64": sa.Float(),
    "string": sa.Text(),
    "timestamp": sa.DateTime(timezone=True),
}


class SourceUnavailableError(RuntimeError):
    """The source database cannot be reached or does not hold the declared tables."""


def sa_table(table: SourceTable, metadata: sa.MetaData | None = None) -> sa.Table:
    """The SQLAlchemy table for a declared source table (types, nullability, primary key)."""
    md = metadata if metadata is not None else sa.MetaData()
    cols = [
        sa.Column(c.name, _SQL_TYPES[c.dtype], nullable=c.nullable, primary_key=c.name in table.key)
        for c in table.columns
    ]
    indexes = []
    if table.event_time and table.event_time not in table.key[:1]:
        indexes.append(sa.Index(f"ix_{table.name}_{table.event_time}", table.event_time))
    return sa.Table(table.name, md, *cols, *indexes)


def ensure_reachable(engine: sa.Engine, connection_hint: str) -> None:
    """Fail early, with a message for people, when the source cannot be used.

    A missing SQLite file is refused here: sqlite would otherwise create an empty database
    and the failure would surface later as a confusing 'no such table'.
    """
    url = engine.url
    if url.get_backend_name() == "sqlite":
        db = url.database or ""
        if db in ("", ":memory:") or not Path(db).is_file():
            raise SourceUnavailableError(
                f"source database file not found: {db!r} (connection {connection_hint}). "
                "Next step: build the demo source with `make source`, or point the connection "
                "at your database (README, 'Use your own source')."
            )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        raise SourceUnavailableError(
            f"cannot connect to the source database (connection {connection_hint}, "
            f"{url.render_as_string(hide_password=True)}): {exc.__class__.__name__}: {exc}. "
            "Next step: check that the database is up and the connection is right, then clear "
            "the task to retry."
        ) from exc


def _python_values(series: pd.Series) -> list:
    """Column values as Python objects with None for missing (what DB drivers expect)."""
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        return [None if pd.isna(v) else v.to_pydatetime() for v in series]
    values = series.astype(object).tolist()
    return [
        None if (v is pd.NA or v is None or (isinstance(v, float) and np.isnan(v))) else v for v in values
    ]


def insert_frame(conn: sa.Connection, table: SourceTable, df: pd.DataFrame, chunk: int = 50_000) -> None:
    """Insert a frame's rows into `table` (cast to the declared types first), in chunks."""
    target = sa_table(table)
    df = conform(df, table)
    names = table.column_names
    columns = [_python_values(df[name]) for name in names]
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]
    for i in range(0, len(rows), chunk):
        conn.execute(target.insert(), rows[i : i + chunk])
