from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from include.source.database import insert_frame, sa_table
from include.source.dataset import SOURCE_TABLES, WEATHER_OBSERVATIONS


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def weather_rows(times: list[datetime], origin: str = "JFK") -> pd.DataFrame:
    rows = []
    for i, ts in enumerate(times):
        row = {c.name: None for c in WEATHER_OBSERVATIONS.columns}
        row.update(origin=origin, observed_at=ts, temp_f=40.0 + i)
        rows.append(row)
    return pd.DataFrame(rows, columns=WEATHER_OBSERVATIONS.column_names)


@pytest.fixture
def source_engine(tmp_path: Path) -> sa.Engine:
    """A real, empty SQLite source database with every declared table."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'source.db'}")
    metadata = sa.MetaData()
    for table in SOURCE_TABLES:
        sa_table(table, metadata)
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def insert(source_engine):
    def _insert(table, frame: pd.DataFrame) -> None:
        with source_engine.begin() as conn:
            insert_frame(conn, table, frame)

    return _insert
