"""The lake: partitions keyed by data interval, written atomically and reproducibly.

Layout: ``<lake_root>/<zone>/<table>/interval=<start>_<end>/part-0.parquet`` with zone one of
raw, validated, quarantine, features. A partition is written to a temporary file in the same folder
and renamed into place, so readers never see half a file and a crashed task leaves nothing
behind. Rows are sorted by the table's key and the schema is fixed by include/source/dataset.py,
so a rerun of the same interval on the same source rows gives a byte-identical file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from include.core.schema import LogicalType, SourceTable

Zone = Literal["raw", "validated", "quarantine", "features"]

_ARROW_TYPES: dict[LogicalType, pa.DataType] = {
    "int64": pa.int64(),
    "float64": pa.float64(),
    "string": pa.string(),
    # Microseconds, not pandas' nanoseconds: readable by every engine (duckdb, Spark, Feast).
    "timestamp": pa.timestamp("us", tz="UTC"),
}

_PANDAS_TYPES: dict[LogicalType, str] = {
    "int64": "Int64",
    "float64": "float64",
    "string": "string",
    "timestamp": "datetime64[us, UTC]",
}


@dataclass(frozen=True)
class PartitionInfo:
    """What a written partition is: small enough for XCom and asset-event extras."""

    table: str
    zone: str
    interval_start: str
    interval_end: str
    path: str
    rows: int
    sha256: str
    bytes: int

    def as_dict(self) -> dict[str, str | int]:
        return asdict(self)


def _utc(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError(f"naive datetime {ts!r}: interval bounds must be timezone-aware")
    return ts.astimezone(UTC)


def interval_key(start: datetime, end: datetime) -> str:
    """A sortable, filesystem- and URL-safe key: 20261101T0000Z_20261102T0000Z."""
    fmt = "%Y%m%dT%H%MZ"
    return f"{_utc(start).strftime(fmt)}_{_utc(end).strftime(fmt)}"


def partition_path(lake_root: str | Path, zone: Zone, table: str, start: datetime, end: datetime) -> Path:
    return Path(lake_root) / zone / table / f"interval={interval_key(start, end)}" / "part-0.parquet"


def arrow_schema(table: SourceTable) -> pa.Schema:
    return pa.schema([pa.field(c.name, _ARROW_TYPES[c.dtype], nullable=c.nullable) for c in table.columns])


def conform(df: pd.DataFrame, table: SourceTable) -> pd.DataFrame:
    """Cast a frame to the declared columns and types, sorted by key (deterministic order).

    Raises ValueError naming the column when a value cannot be cast.
    """
    out = pd.DataFrame(index=df.index)
    for col in table.columns:
        try:
            series = df[col.name]
            if col.dtype == "timestamp":
                series = pd.to_datetime(series, utc=True).astype(_PANDAS_TYPES["timestamp"])
            else:
                series = series.astype(_PANDAS_TYPES[col.dtype])
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"table {table.name!r}, column {col.name!r}: cannot cast to {col.dtype}: {exc}"
            ) from exc
        out[col.name] = series
    if len(out):
        out = out.sort_values(list(table.key), kind="mergesort")
    return out.reset_index(drop=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a small text file so that readers see the old or the new content, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_partition(
    df: pd.DataFrame,
    table: SourceTable,
    lake_root: str | Path,
    zone: Zone,
    start: datetime,
    end: datetime,
) -> PartitionInfo:
    """Write one interval's rows of `table` atomically; return what was written.

    The frame must already be conformed (see `conform`). An empty frame gives a valid
    parquet file with the declared schema and zero rows.
    """
    path = partition_path(lake_root, zone, table.name, start, end)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrow = pa.Table.from_pandas(df, schema=arrow_schema(table), preserve_index=False)
    # Drop pandas' schema metadata: it is not needed to read the file back and keeps the
    # bytes independent of the pandas version that wrote them.
    arrow = arrow.replace_schema_metadata(None)
    fd, tmp_name = tempfile.mkstemp(prefix=".part-0.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            pq.write_table(arrow, fh, compression="zstd")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return PartitionInfo(
        table=table.name,
        zone=zone,
        interval_start=_utc(start).isoformat(),
        interval_end=_utc(end).isoformat(),
        path=str(path),
        rows=arrow.num_rows,
        sha256=file_sha256(path),
        bytes=path.stat().st_size,
    )


def read_partition(path: str | Path) -> pd.DataFrame:
    return pq.read_table(path).to_pandas()


def parse_interval_key(key: str) -> tuple[datetime, datetime]:
    """Inverse of `interval_key`."""
    start, end = key.split("_")
    fmt = "%Y%m%dT%H%MZ"
    return (
        datetime.strptime(start, fmt).replace(tzinfo=UTC),
        datetime.strptime(end, fmt).replace(tzinfo=UTC),
    )


def partitions_between(
    lake_root: str | Path, zone: Zone, table: str, start: datetime, end: datetime
) -> list[Path]:
    """The partitions of `table` whose interval lies inside [start, end), oldest first.

    Reads only the folder listing: a day's feature run opens just the window it needs."""
    folder = Path(lake_root) / zone / table
    found = []
    for part in folder.glob("interval=*/part-0.parquet") if folder.is_dir() else []:
        lo, hi = parse_interval_key(part.parent.name.removeprefix("interval="))
        if lo >= _utc(start) and hi <= _utc(end):
            found.append((lo, part))
    return [p for _, p in sorted(found)]


def every_partition(lake_root: str | Path, zone: Zone, table: str) -> list[Path]:
    """Every partition of `table` in `zone`, oldest first (whatever their intervals)."""
    folder = Path(lake_root) / zone / table
    found = [
        (parse_interval_key(part.parent.name.removeprefix("interval=")), part)
        for part in (folder.glob("interval=*/part-0.parquet") if folder.is_dir() else [])
    ]
    return [p for _, p in sorted(found)]
