"""The lake: partitions keyed by data interval, written atomically and reproducibly.

Layout: ``<lake_root>/<zone>/<table>/interval=<start>_<end>/part-0.parquet`` with zone one of
raw, validated, quarantine, features. The root is a local folder or an object-store URL; all I/O
goes through include/lake/storage.py. A partition is serialised in memory, and its sha256 and size
are taken from that buffer; the buffer is then stored atomically (a local temporary file renamed
into place, or one object upload), so readers never see half a file and a crashed task leaves
the previous partition. Rows are sorted by the table's key and the schema is fixed by
include/source/dataset.py, so a rerun of the same interval on the same source rows gives a
byte-identical file, whichever the storage.

Functions that return `Path` (`partition_path`, `partitions_between`, `every_partition`) are for
local roots and refuse a URL root; their `*_url` siblings return strings and work on both.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from include.core.schema import LogicalType, SourceTable
from include.lake import storage

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


def _local_only(lake_root: str | Path, function: str, instead: str) -> None:
    """Fail closed on a URL root where a Path is promised: pathlib would collapse s3://bucket into
    a local folder named "s3:"."""
    if not storage.is_local(lake_root):
        raise ValueError(
            f"{function} returns local paths; the lake root {lake_root!r} is a URL: use {instead}"
        )


def partition_url(lake_root: str | Path, zone: Zone, table: str, start: datetime, end: datetime) -> str:
    """Where a partition lives, as a string: a path for a local root (the same string as
    `partition_path`), a URL for an object-store root."""
    return storage.join(interval_folder(lake_root, zone, table, start, end), "part-0.parquet")


def partition_path(lake_root: str | Path, zone: Zone, table: str, start: datetime, end: datetime) -> Path:
    """`partition_url` as a Path, for a local root only."""
    _local_only(lake_root, "partition_path", "partition_url")
    return Path(partition_url(lake_root, zone, table, start, end))


def interval_of(partition: str | Path) -> tuple[datetime, datetime]:
    """The interval of a partition file from its folder name (`interval=<key>`), for a path or
    a URL alike."""
    return parse_interval_key(partition_parts(partition)[2])


def partition_parts(partition: str | Path) -> tuple[str, str, str]:
    """(zone, table, interval key) of a partition file's path or URL
    (`.../<zone>/<table>/interval=<key>/part-0.parquet`)."""
    *_, zone, table, folder, _name = str(partition).rstrip("/").split("/")
    return zone, table, folder.removeprefix("interval=")


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
    """Write a small text file (UTF-8) so that readers see the old or the new content, never a
    part; `path` may be a local path or a URL."""
    storage.write_bytes_atomic(path, text.encode("utf-8"))


def file_sha256(path: str | Path) -> str:
    """The hex sha256 of a stored file (a local path or a URL)."""
    return storage.sha256(path)


def frame_sha256(frame: pd.DataFrame, order_by: str) -> str:
    """The sha256 of a frame's canonical form: columns by name, rows by `order_by` (stable), each
    value hashed by pandas with its dtype named, so the same rows and types give the same hash
    whatever order they were built in (a training set's identity in its lineage)."""
    import json

    canonical = frame[sorted(frame.columns)].sort_values(order_by, kind="mergesort").reset_index(drop=True)
    digest = hashlib.sha256(json.dumps([[c, str(canonical[c].dtype)] for c in canonical.columns]).encode())
    digest.update(pd.util.hash_pandas_object(canonical, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _parquet_bytes(arrow: pa.Table) -> bytes:
    """The partition file's bytes. Written to a memory sink with the same writer and options the
    file sink had, so the bytes are the same as a file's and do not depend on where they go."""
    sink = pa.BufferOutputStream()
    pq.write_table(arrow, sink, compression="zstd")
    return bytes(sink.getvalue().to_pybytes())


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
    path = partition_url(lake_root, zone, table.name, start, end)
    arrow = pa.Table.from_pandas(df, schema=arrow_schema(table), preserve_index=False)
    # Drop pandas' schema metadata: it is not needed to read the file back and keeps the
    # bytes independent of the pandas version that wrote them.
    arrow = arrow.replace_schema_metadata(None)
    # Serialise before touching the lake: a writer that fails leaves the previous partition.
    data = _parquet_bytes(arrow)
    storage.write_bytes_atomic(path, data)
    return PartitionInfo(
        table=table.name,
        zone=zone,
        interval_start=_utc(start).isoformat(),
        interval_end=_utc(end).isoformat(),
        path=path,
        rows=arrow.num_rows,
        sha256=hashlib.sha256(data).hexdigest(),
        bytes=len(data),
    )


def read_table(path: str | Path, columns: list[str] | None = None) -> pa.Table:
    """A parquet file (local path or URL) as an arrow table, read through a storage handle."""
    with storage.open_input(path) as handle:
        return pq.read_table(handle, columns=columns)


def read_partition(path: str | Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A partition file (local path or URL) as a frame, read through a storage handle."""
    return read_table(path, columns).to_pandas()


def parquet_rows(path: str | Path) -> int:
    """The row count of a parquet file from its footer (the rows are not read)."""
    with storage.open_input(path) as handle:
        return int(pq.read_metadata(handle).num_rows)


def write_frame_atomic(path: str | Path, df: pd.DataFrame) -> str:
    """Store a frame as one parquet file (pandas metadata kept, so dtypes read back as written),
    atomically (see storage.write_bytes_atomic); return its sha256."""
    data = _parquet_bytes(pa.Table.from_pandas(df, preserve_index=False))
    storage.write_bytes_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def interval_folder(lake_root: str | Path, zone: Zone, table: str, start: datetime, end: datetime) -> str:
    """The folder of one interval of `table` in `zone` (a path or a URL): the partition file and,
    in quarantine, its reason.json and rows.parquet."""
    return storage.join(lake_root, zone, table, f"interval={interval_key(start, end)}")


def parse_interval_key(key: str) -> tuple[datetime, datetime]:
    """Inverse of `interval_key`."""
    start, end = key.split("_")
    fmt = "%Y%m%dT%H%MZ"
    return (
        datetime.strptime(start, fmt).replace(tzinfo=UTC),
        datetime.strptime(end, fmt).replace(tzinfo=UTC),
    )


def every_partition_url(lake_root: str | Path, zone: Zone, table: str) -> list[str]:
    """Every partition of `table` in `zone`, oldest first (whatever their intervals), as
    strings: paths for a local root, URLs for an object store.

    Reads only the folder listing (one paginated listing on an object store)."""
    folder = storage.join(lake_root, zone, table)
    found = sorted((interval_of(part), part) for part in storage.glob(folder, "interval=*/part-0.parquet"))
    return [p for _, p in found]


def partition_urls_between(
    lake_root: str | Path, zone: Zone, table: str, start: datetime, end: datetime
) -> list[str]:
    """The partitions of `table` whose interval lies inside [start, end), oldest first, as
    strings (see `every_partition_url`).

    Reads only the folder listing: a day's feature run opens just the window it needs."""
    lo_bound, hi_bound = _utc(start), _utc(end)
    found = []
    for part in every_partition_url(lake_root, zone, table):
        lo, hi = interval_of(part)
        if lo >= lo_bound and hi <= hi_bound:
            found.append(part)
    return found


def partitions_between(
    lake_root: str | Path, zone: Zone, table: str, start: datetime, end: datetime
) -> list[Path]:
    """`partition_urls_between` as Paths, for a local root only."""
    _local_only(lake_root, "partitions_between", "partition_urls_between")
    return [Path(p) for p in partition_urls_between(lake_root, zone, table, start, end)]


def every_partition(lake_root: str | Path, zone: Zone, table: str) -> list[Path]:
    """`every_partition_url` as Paths, for a local root only."""
    _local_only(lake_root, "every_partition", "every_partition_url")
    return [Path(p) for p in every_partition_url(lake_root, zone, table)]
