"""The page's reads of the lake: quarantine records, and which of them wait for action.

Why "waiting" is computed here: a blocked partition with nothing published for its interval
stops features, training and scoring for that interval until someone acts (README, On call:
PartitionQuarantinedError); one published by override or split is history, not a task.
"""

from __future__ import annotations

import json
from pathlib import Path

from include.core.settings import Settings
from include.oncall.files import data_docs_link
from include.oncall.sections import QuarantineEntry, QuarantineSection


def _entry(settings: Settings, root: Path, reason: Path) -> QuarantineEntry:
    """One quarantine record (`quarantine/<table>/interval=<key>/reason.json`); unreadable is said."""
    table, interval = reason.parent.parent.name, reason.parent.name.removeprefix("interval=")
    try:
        record = json.loads(reason.read_text())
    except (OSError, ValueError):
        record = {"decision": "unreadable"}
    published = (root / "validated" / table / f"interval={interval}" / "part-0.parquet").exists()
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
        "folder": str(reason.parent),
    }


def quarantine(settings: Settings, limit: int = 20) -> QuarantineSection:
    """Quarantine records in the lake, newest interval first. A blocked partition with nothing
    published for its interval is waiting for action (README, On call: PartitionQuarantinedError)."""
    root = Path(settings.lake_root)
    entries = [_entry(settings, root, r) for r in (root / "quarantine").glob("*/interval=*/reason.json")]
    entries.sort(key=lambda e: (e["interval"], e["table"]), reverse=True)
    return {
        "waiting": [e for e in entries if e["waiting"]],
        "recent": entries[:limit],
        "total": len(entries),
        "data_docs_index": "data-docs/index.html"
        if (settings.data_docs_dir / "index.html").exists()
        else None,
    }
