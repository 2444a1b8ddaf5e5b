"""The Feast store: open it, apply definitions only when they changed, materialize, verify.

Registry and online store live under `<data>/feast/`; the offline store reads the lake's feature
partitions. Which online store serves is ONE setting, `MLOPS_FEAST_ONLINE_STORE`
(sqlite | redis | postgres); redis and postgres take host, port, credentials from the Airflow
connection `feast_online_store`, passed in by the caller as a plain dict (secrets never live in
files of this project).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import unquote, urlsplit

import pandas as pd
import yaml

from include.core.settings import PROJECT_DIR, Settings
from include.features.engineering import EVENT_TIMESTAMP, FEATURE_TABLES
from include.lake import storage
from include.lake.partitions import (
    interval_key,
    parquet_rows,
    partition_url,
    partition_urls_between,
    read_partition,
    write_text_atomic,
)

FEATURE_REPO_DIR = PROJECT_DIR / "include" / "features" / "feature_repo"
FEATURE_SERVICE = "flight_delay_v1"
ONLINE_STORE_KINDS = ("sqlite", "redis", "postgres")


class OnlineStoreMismatchError(RuntimeError):
    """Online reads after materialization differ from the latest offline feature rows."""


class OnlineStoreConnection(TypedDict):
    """The fields of connection `feast_online_store` that the online store's config reads."""

    host: str | None
    port: int | None
    login: str | None
    password: str | None
    schema: str | None


def online_connection_from_uri(uri: str) -> OnlineStoreConnection:
    """The connection's fields from its URI form (`AIRFLOW_CONN_FEAST_ONLINE_STORE`, e.g.
    `redis://:secret@host:6379/1`), for processes that do not run inside Airflow."""
    u = urlsplit(uri)
    return {
        "host": u.hostname,
        "port": u.port,
        "login": unquote(u.username or ""),
        "password": unquote(u.password or ""),
        "schema": u.path.lstrip("/") or None,
    }


def feast_dir(settings: Settings) -> Path:
    return settings.data_dir / "feast"


def online_store_config(
    kind: str, settings: Settings, conn: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The `online_store` block of Feast's config for `kind`, from an Airflow connection's fields."""
    if kind == "sqlite":
        return {"type": "sqlite", "path": str(feast_dir(settings) / "online_store.db")}
    if kind not in ONLINE_STORE_KINDS:
        raise ValueError(f"MLOPS_FEAST_ONLINE_STORE={kind!r}: choose one of {', '.join(ONLINE_STORE_KINDS)}")
    if not conn or not conn.get("host"):
        raise ValueError(
            f"online store {kind!r} needs the Airflow connection 'feast_online_store' (host, port, "
            "login, password, schema); add it in Admin > Connections or airflow_settings.yaml"
        )
    if kind == "redis":
        target = f"{conn['host']}:{conn.get('port') or 6379}"
        if conn.get("password"):
            target += f",password={conn['password']}"
        if conn.get("schema"):
            target += f",db={conn['schema']}"
        return {"type": "redis", "connection_string": target}
    return {
        "type": "postgres",
        "host": conn["host"],
        "port": int(conn.get("port") or 5432),
        "database": conn.get("schema") or "feast",
        "db_schema": "public",
        "user": conn.get("login") or "",
        "password": conn.get("password") or "",
    }


def repo_config_dict(settings: Settings, online_conn: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """feature_store.yaml with the environment filled in and the chosen online store."""
    os.environ.setdefault("MLOPS_DATA_DIR", str(settings.data_dir))
    os.environ.setdefault("FEAST_USAGE", "False")  # no telemetry: no network here, calls would hang
    raw = yaml.safe_load(os.path.expandvars((FEATURE_REPO_DIR / "feature_store.yaml").read_text()))
    raw["online_store"] = online_store_config(settings.feast_online_store, settings, online_conn)
    if settings.feast_registry_url:
        # Feast's SQL registry: one registry for every worker (the file registry is local disk).
        raw["registry"] = {
            "registry_type": "sql",
            "path": settings.feast_registry_url,
            "cache_ttl_seconds": raw["registry"].get("cache_ttl_seconds", 60),
            "sqlalchemy_config_kwargs": {"pool_pre_ping": True},
        }
    return raw


def open_store(settings: Settings, online_conn: Mapping[str, Any] | None = None) -> Any:
    """A FeatureStore on the project's repo (imports Feast: call inside tasks). `online_conn` has the
    fields of an OnlineStoreConnection (None for the embedded SQLite)."""
    logging.getLogger("feast").setLevel(logging.WARNING)  # "Registry cache expired" on every call
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="ibis")
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    feast_dir(settings).mkdir(parents=True, exist_ok=True)
    config = RepoConfig(repo_path=FEATURE_REPO_DIR, **repo_config_dict(settings, online_conn))
    if not storage.is_local(settings.lake_root):
        register_lake_in_duckdb(settings.lake_root)
    return FeatureStore(config=config)


def register_lake_in_duckdb(lake_root: str) -> None:
    """Let the DuckDB connection that Feast's offline store uses (ibis' default backend) read the
    object-store lake through fsspec (see partitions.offline_store_path): registered once per
    process, under the s3a:// alias."""
    import ibis  # type: ignore[import-untyped]

    fs, _ = storage.resolve(lake_root)
    con = ibis.get_backend().con
    if not con.filesystem_is_registered(fs.protocol[0] if isinstance(fs.protocol, tuple) else fs.protocol):
        con.register_filesystem(fs)


def definitions(lake_root: str) -> list[Any]:
    """Every Feast object of the repo (include/features/feature_repo/repo.py lists them), for the lake the
    settings name now. The repo's sources read the lake root when imported: when it changed since
    (one process, several data folders: the tests), the repo's modules are imported again, or
    `feast apply` would register the previous lake's paths."""
    import importlib

    from include.features.feature_repo import feature_services, feature_views, repo, sources

    if lake_root != sources.LAKE_ROOT:
        for module in (sources, feature_views, feature_services, repo):
            importlib.reload(module)  # sources reads the lake root of the settings again
    if lake_root != sources.LAKE_ROOT:
        raise ValueError(f"the Feast repo reads {sources.LAKE_ROOT}, not {lake_root}: set MLOPS_LAKE_ROOT")
    return [*repo.ENTITIES, *repo.SOURCES, *repo.FEATURE_VIEWS, *repo.FEATURE_SERVICES]


def definitions_sha256() -> str:
    """Hash of the feature definitions alone (the repo's files and the feature code they name),
    wherever they are applied: a model's lineage records it, so a changed definition is found."""
    digest = hashlib.sha256()
    for path in [
        *sorted(FEATURE_REPO_DIR.glob("*.py")),
        FEATURE_REPO_DIR / "feature_store.yaml",
        FEATURE_REPO_DIR / ".feastignore",
    ]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update((PROJECT_DIR / "include" / "features" / "engineering.py").read_bytes())  # names, specs
    return digest.hexdigest()


def definitions_hash(settings: Settings) -> str:
    """Hash of the definitions and the resolved config: what `feast apply` would register."""
    resolved = {"lake": settings.lake_root, "registry": registry_location(settings)}
    digest = hashlib.sha256(definitions_sha256().encode())
    digest.update(json.dumps(resolved, sort_keys=True).encode())
    return digest.hexdigest()


def registry_location(settings: Settings) -> str:
    """The registry the definitions are applied to: the SQL registry's URL without its password,
    or the embedded file registry's path."""
    if settings.feast_registry_url:
        from include.core.urls import redact_url

        return redact_url(settings.feast_registry_url)
    return str(feast_dir(settings) / "registry.db")


def applied_marker(settings: Settings) -> str:
    """Where the hash of the last applied definitions is kept: beside the file registry, or in the
    lake for the SQL registry (every worker reads the same marker, none re-applies needlessly)."""
    if settings.feast_registry_url:
        return storage.join(settings.lake_root, "_feast", "applied_definitions.sha256")
    return str(feast_dir(settings) / "applied_definitions.sha256")


def _read_marker(marker: str) -> str | None:
    try:
        return storage.read_bytes(marker).decode().strip()
    except FileNotFoundError:
        return None


def _registry_exists(store: Any, settings: Settings) -> bool:
    """The registry holds the repo's objects (a deleted registry file or an emptied database is
    applied again; a database that cannot be reached raises)."""
    if not settings.feast_registry_url:
        return Path(store.config.registry.path).is_file()
    return bool(store.list_feature_views())


def apply_if_changed(store: Any, settings: Settings, log: logging.Logger) -> dict[str, Any]:
    """`feast apply` the repo's definitions when their hash differs from the last applied one.

    Callers serialise registry writes (the DAG runs this in a one-slot pool)."""
    marker = applied_marker(settings)
    wanted = definitions_hash(settings)
    if _read_marker(marker) == wanted and _registry_exists(store, settings):
        log.info("Feast definitions unchanged (%s…): nothing to apply", wanted[:12])
        return {"applied": False, "definitions_sha256": wanted}
    objects = definitions(settings.lake_root)
    store.apply(objects)
    write_text_atomic(marker, wanted + "\n")
    log.info("Feast apply: %d objects registered (definitions %s…)", len(objects), wanted[:12])
    return {"applied": True, "definitions_sha256": wanted, "objects": len(objects)}


def materialized_until(store: Any) -> datetime | None:
    """The latest (exclusive) end of any materialization recorded in the registry.

    We pass Feast inclusive ends one microsecond before the interval's end; add it back."""
    ends = [end for fv in store.list_feature_views() for _, end in (fv.materialization_intervals or [])]
    return (max(ends) + timedelta(microseconds=1)).astimezone(UTC) if ends else None


def chunks(start: datetime, end: datetime, size: timedelta) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into consecutive windows of at most `size`, oldest first."""
    out, lo = [], start
    while lo < end:
        out.append((lo, min(lo + size, end)))
        lo = out[-1][1]
    return out


@dataclass(frozen=True)
class MaterializeResult:
    window_start: str
    window_end: str
    chunks: int
    rows_offered: int

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def materialize_interval(
    store: Any, settings: Settings, start: datetime, end: datetime, log: logging.Logger
) -> MaterializeResult:
    """Materialize [start, end) into the online store, in chunks, oldest first.

    Feast's SQLite online store overwrites a key whatever the timestamps, so an interval
    materialized after a later one would put older values online. The window therefore runs
    to the latest end already materialized: later chunks rewrite the newest values last, and
    the final state is the same in any order of intervals."""
    latest = materialized_until(store)
    window_end = max(end, latest) if latest else end
    parts = chunks(start, window_end, timedelta(hours=settings.feast_chunk_hours))
    names = list(FEATURE_TABLES)
    for lo, hi in parts:
        with contextlib.redirect_stdout(io.StringIO()):  # Feast prints coloured progress to stdout
            # Feast's window includes its end; [lo, hi) must not take the next interval's first row.
            store.materialize(start_date=lo, end_date=hi - timedelta(microseconds=1), feature_views=names)
    rows = sum(
        parquet_rows(p)
        for name in names
        for p in partition_urls_between(settings.lake_root, "features", name, start, window_end)
    )
    log.info(
        "materialized %s .. %s in %d chunk(s) of <= %s h (%d feature rows offered)",
        start.isoformat(),
        window_end.isoformat(),
        len(parts),
        settings.feast_chunk_hours,
        rows,
    )
    return MaterializeResult(start.isoformat(), window_end.isoformat(), len(parts), rows)


def latest_offline_rows(settings: Settings, table: str, start: datetime, until: datetime) -> pd.DataFrame:
    """Per key, the newest feature row of the partitions inside [start, until).

    For a key that has a row in the interval starting at `start`, that is what the online store
    must serve after [start, until) was materialized oldest first (online reads apply no ttl)."""
    spec = FEATURE_TABLES[table]
    keys = [k for k in spec.key if k != EVENT_TIMESTAMP]
    frames = [
        read_partition(p) for p in partition_urls_between(settings.lake_root, "features", table, start, until)
    ]
    if not frames:
        return pd.DataFrame(columns=spec.column_names)
    rows = pd.concat(frames, ignore_index=True).sort_values(EVENT_TIMESTAMP, kind="mergesort")
    return rows.drop_duplicates(keys, keep="last")


def verify_online(
    store: Any, settings: Settings, start: datetime, end: datetime, sample: int, log: logging.Logger
) -> dict[str, int]:
    """Online reads for a sample of the interval's keys must equal the latest offline values.

    Returns the number of keys checked per feature view; raises OnlineStoreMismatchError."""
    until = max(end, materialized_until(store) or end)
    checked: dict[str, int] = {}
    mismatches: list[str] = []
    for spec_name, table in FEATURE_TABLES.items():
        keys = [k for k in table.key if k != EVENT_TIMESTAMP]
        features = [c for c in table.column_names if c not in table.key]
        interval_rows = read_partition(partition_url(settings.lake_root, "features", spec_name, start, end))
        expected = latest_offline_rows(settings, spec_name, start, until)
        sample_keys = interval_rows[keys].drop_duplicates().head(sample)
        if sample_keys.empty:
            checked[spec_name] = 0
            continue
        want = sample_keys.merge(expected, on=keys, how="left")
        got = store.get_online_features(
            features=[f"{spec_name}:{f}" for f in features],
            entity_rows=sample_keys.to_dict("records"),
        ).to_df()
        merged = want.merge(got, on=keys, suffixes=("_offline", "_online"))
        for f in features:
            a = pd.to_numeric(merged[f"{f}_offline"], errors="coerce").to_numpy(dtype=float)
            b = pd.to_numeric(merged[f"{f}_online"], errors="coerce").to_numpy(dtype=float)
            bad = ~(((a == b) | (abs(a - b) <= 1e-9 * abs(a).clip(min=1))) | (pd.isna(a) & pd.isna(b)))
            if bad.any():
                mismatches.append(f"{spec_name}.{f}: {int(bad.sum())} of {len(merged)} keys differ")
        checked[spec_name] = len(merged)
    if mismatches:
        raise OnlineStoreMismatchError(
            "online store does not serve the latest offline features for interval "
            f"{interval_key(start, end)}: "
            + "; ".join(mismatches)
            + ". Re-run materialize_features for the interval; if it persists, rebuild the online store "
            "(README 'On call' > OnlineStoreMismatchError)."
        )
    log.info("online reads equal the latest offline values for %s", checked)
    return checked


def service_views(store: Any, service_name: str) -> dict[str, list[str]]:
    """Feature names per feature view of a FeatureService."""
    service = store.get_feature_service(service_name)
    return {p.name: [f.name for f in p.features] for p in service.feature_view_projections}


def service_ttls(store: Any, service_name: str) -> dict[str, timedelta]:
    """The ttl of each feature view of a FeatureService: how old a feature row may be and still
    count, offline (Feast's point-in-time join) and online (include/serving/inputs.py)."""
    service = store.get_feature_service(service_name)
    return {p.name: store.get_feature_view(p.name).ttl for p in service.feature_view_projections}
