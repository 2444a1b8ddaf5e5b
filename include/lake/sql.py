"""The project's SQL stores (the prediction log, the monitoring tables): one way to open them.

SQLite under the data folder by default, any SQLAlchemy URL otherwise (PostgreSQL). An engine
creates the SQLite folder and its tables when missing; on SQLite every connection uses WAL (the
online service writes while batch jobs read) and waits for a lock rather than failing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa


def engine(url: str, metadata: sa.MetaData) -> sa.Engine:
    """An engine on `url`; creates the SQLite folder and the tables of `metadata` when missing.
    The caller disposes of it (or uses `connected`)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    eng = sa.create_engine(url, future=True)
    if url.startswith("sqlite"):

        @sa.event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")  # the service writes while batch jobs read
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    metadata.create_all(eng, checkfirst=True)
    return eng


@contextmanager
def connected(url: str, metadata: sa.MetaData) -> Iterator[sa.Engine]:
    """`engine(url, metadata)` for one block of work, disposed of when the block ends."""
    eng = engine(url, metadata)
    try:
        yield eng
    finally:
        eng.dispose()
