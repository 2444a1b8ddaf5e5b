"""The page's reads of the lake: quarantine records, and which of them wait for action.

Why "waiting" is computed here: a blocked partition with nothing published for its interval
stops features, training and scoring for that interval until someone acts (README, On call:
PartitionQuarantinedError); one published by override or split is history, not a task.
"""

from __future__ import annotations

import json

from include.core.settings import Settings
from include.lake import storage
from include.oncall.files import data_docs_link
from include.oncall.sections import QuarantineEntry, QuarantineSection


def _entry(settings: Settings, reason: str) -> QuarantineEntry:
    """One quarantine record (`quarantine/<table>/interval=<key>/reason.json`, a path or a URL);
    unreadable is said."""
    folder = reason.rsplit("/", 1)[0]
    table, interval = folder.split("/")[-2], folder.split("/")[-1].removeprefix("interval=")
    try:
        record = json.loads(storage.read_bytes(reason))
    except (OSError, ValueError):
        record = {"decision": "unreadable"}
    published = storage.is_file(
        storage.join(settings.lake_root, "validated", table, f"interval={interval}", "part-0.parquet")
    )
    return {
        "table": table,
        "interval": interval,
        "decision": record.get("decision"),
        "quarantined_rows": record.get("quarantined_rows"),
        "rows": record.get("rows"),
        "failed": record.get("failed", []),
        "forced_reason": record.get("forced_publish_reason"),
        "waiting": record.get("decision") == "block" and not published,
        "data_docs": data_docs_link(settings, record.get("data_docs_page")),
        "folder": folder,
    }


def _unplaced(settings: Settings, record_path: str) -> QuarantineEntry:
    """A table's rows whose event time cannot be read (`quarantine/<table>/unplaced/`): they
    belong to no interval, so nothing will ever publish them; they wait for the source's fix."""
    folder = record_path.rsplit("/", 1)[0]
    try:
        record = json.loads(storage.read_bytes(record_path))
    except (OSError, ValueError):
        record = {}
    return {
        "table": folder.split("/")[-2],
        "interval": "unplaced",
        "decision": "unplaced",
        "quarantined_rows": record.get("rows"),
        "rows": record.get("rows"),
        "failed": sorted(record.get("reasons") or {}),
        "forced_reason": None,
        "waiting": True,
        "data_docs": None,
        "folder": folder,
    }


def quarantine(settings: Settings, limit: int = 20) -> QuarantineSection:
    """Quarantine records in the lake, newest interval first. A blocked partition with nothing
    published for its interval is waiting for action (README, On call: PartitionQuarantinedError)."""
    found = storage.glob(storage.join(settings.lake_root, "quarantine"), "*/interval=*/reason.json")
    entries = [_entry(settings, r) for r in found]
    entries.sort(key=lambda e: (e["interval"], e["table"]), reverse=True)
    unplaced = storage.glob(storage.join(settings.lake_root, "quarantine"), "*/unplaced/extract.json")
    entries = [_unplaced(settings, r) for r in sorted(unplaced)] + entries
    return {
        "waiting": [e for e in entries if e["waiting"]],
        "recent": entries[:limit],
        "total": len(entries),
        "data_docs_index": "data-docs/index.html"
        if storage.is_file(storage.join(settings.data_docs_root, "index.html"))
        else None,
    }
