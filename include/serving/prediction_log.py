"""The prediction log: one row per prediction, batch and online, in one SQL table.

What monitoring joins with the outcomes reported later: flight, model version, the feature
values the model saw, the score and when. SQLite under the data folder by default
(`MLOPS_PREDICTION_LOG_URL` points it at PostgreSQL). A batch interval is written in one
transaction that first deletes the interval's earlier rows, so a rerun leaves exactly one
prediction per scheduled flight. The online service queues its rows and writes them in small
batches from a background thread: a request never waits for the database.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from include.lake import sql

METADATA = sa.MetaData()
PREDICTION_LOG = sa.Table(
    "prediction_log",
    METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(16), nullable=False),  # batch | online | shadow | shadow_online
    sa.Column("batch_key", sa.String(64), nullable=True),  # the scored interval (batch only)
    sa.Column("request_id", sa.String(64), nullable=True),  # dag run id or HTTP request id
    sa.Column("flight_id", sa.BigInteger, nullable=False),
    sa.Column("scheduled_departure", sa.DateTime(timezone=True), nullable=True),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("threshold", sa.Float, nullable=False),
    sa.Column("predicted_late", sa.Integer, nullable=False),
    sa.Column("features", sa.Text, nullable=False),  # JSON: the model's input values
    sa.Column("features_as_of", sa.DateTime(timezone=True), nullable=True),
    sa.Column("predicted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_prediction_log_batch", "source", "batch_key", "flight_id"),
    sa.Index("ix_prediction_log_flight", "flight_id"),
)


def engine(url: str, metadata: sa.MetaData = METADATA) -> sa.Engine:
    """An engine on the log's database (include/lake/sql.py: the SQLite folder, pragmas and the
    tables of `metadata` created when missing)."""
    return sql.engine(url, metadata)


def records(
    frame: pd.DataFrame,
    feature_columns: list[str],
    scores: Any,
    *,
    source: str,
    model_name: str,
    model_version: str,
    threshold: float,
    batch_key: str | None = None,
    request_id: str | None = None,
    features_as_of: Any = None,
) -> list[dict[str, Any]]:
    """Rows of the log for `frame` (one per flight) scored `scores`."""
    now = datetime.now(UTC)
    values = frame[feature_columns].to_dict("records")
    as_of = list(features_as_of) if features_as_of is not None else [None] * len(frame)
    out = []
    for i, (flight_id, departure) in enumerate(
        zip(frame["flight_id"], frame["scheduled_departure"], strict=True)
    ):
        score = float(scores[i])
        out.append(
            {
                "source": source,
                "batch_key": batch_key,
                "request_id": request_id,
                "flight_id": int(flight_id),
                "scheduled_departure": pd.Timestamp(departure).to_pydatetime(),
                "model_name": model_name,
                "model_version": str(model_version),
                "score": score,
                "threshold": threshold,
                "predicted_late": int(score >= threshold),
                "features": json.dumps(values[i], default=str, sort_keys=True),
                "features_as_of": pd.Timestamp(as_of[i]).to_pydatetime() if as_of[i] is not None else None,
                "predicted_at": now,
            }
        )
    return out


BATCH_SOURCES = ("batch", "shadow")  # what a batch run writes per interval: served rows, shadow rows


def replace_batch(
    eng: sa.Engine,
    batch_key: str,
    rows: list[dict[str, Any]],
    shadow_rows: list[dict[str, Any]] | None = None,
) -> int:
    """Write a batch interval's predictions (and its shadow's, when one scored beside the champion),
    replacing any earlier rows of that interval, in one transaction: a rerun without a shadow
    leaves no stale shadow rows behind."""
    with eng.begin() as conn:
        conn.execute(
            sa.delete(PREDICTION_LOG).where(
                PREDICTION_LOG.c.source.in_(BATCH_SOURCES), PREDICTION_LOG.c.batch_key == batch_key
            )
        )
        if rows:
            conn.execute(sa.insert(PREDICTION_LOG), rows)
        if shadow_rows:
            conn.execute(sa.insert(PREDICTION_LOG), shadow_rows)
    return len(rows)


def read(eng: sa.Engine, **where: Any) -> pd.DataFrame:
    """Rows of the log matching column == value filters (tests, monitoring)."""
    query = sa.select(PREDICTION_LOG)
    for column, value in where.items():
        query = query.where(PREDICTION_LOG.c[column] == value)
    with eng.connect() as conn:
        return pd.read_sql(query, conn)


class BackgroundWriter:
    """Queue prediction rows; a daemon thread inserts them in batches (flush on close).

    A row can also be deferred: a function the thread calls to make it (the shadow's score of an
    online request, computed after the answer went out). One that raises is counted in
    `deferred_errors` and logged; it never stops the other rows."""

    def __init__(self, eng: sa.Engine, flush_every: float = 0.5, max_batch: int = 500) -> None:
        self._engine = eng
        self._queue: queue.Queue[dict[str, Any] | Callable[[], dict[str, Any]] | None] = queue.Queue()
        self._flush_every = flush_every
        self._max_batch = max_batch
        self.written = 0
        self.errors = 0
        self.deferred_errors = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def put(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            self._queue.put(row)

    def defer(self, make_row: Callable[[], dict[str, Any]]) -> None:
        """Queue a row that the writer's thread makes (off the request's path)."""
        self._queue.put(make_row)

    def _made(self, item: dict[str, Any] | Callable[[], dict[str, Any]], log: Any) -> dict[str, Any] | None:
        if not callable(item):
            return item
        try:
            return item()
        except Exception as exc:
            self.deferred_errors += 1
            log.warning("a deferred prediction row was not made: %s: %s", type(exc).__name__, str(exc)[:300])
            return None

    def _run(self) -> None:
        import logging

        log = logging.getLogger(__name__)
        done = False
        while not done:
            batch: list[dict[str, Any]] = []
            try:
                item = self._queue.get(timeout=self._flush_every)
                while True:
                    if item is None:
                        done = True
                        break
                    made = self._made(item, log)
                    if made is not None:
                        batch.append(made)
                    if len(batch) >= self._max_batch:
                        break
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            if batch:
                self._write(batch, log)

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        with self._engine.begin() as conn:
            conn.execute(sa.insert(PREDICTION_LOG), rows)

    def _write(self, batch: list[dict[str, Any]], log: Any) -> None:
        """Insert a batch; when it fails, each row alone, so one bad row loses only itself. A row
        that fails alone is counted in `errors` (/health: prediction_log_errors) and logged whole."""
        try:
            self._insert(batch)
            self.written += len(batch)
            return
        except Exception:  # keep serving; retried row by row below
            log.warning(
                "a batch of %d predictions failed; writing them one by one", len(batch), exc_info=True
            )
        for row in batch:
            try:
                self._insert([row])
                self.written += 1
            except Exception as exc:
                self.errors += 1
                log.error(
                    "prediction log row lost (README On call, 'prediction log row lost'): %s: %s; row: %s",
                    type(exc).__name__,
                    str(exc).splitlines()[0][:300] if str(exc) else "",
                    json.dumps(row, default=str, sort_keys=True),
                )

    def close(self, timeout: float = 10.0) -> None:
        self._queue.put(None)
        self._thread.join(timeout)
