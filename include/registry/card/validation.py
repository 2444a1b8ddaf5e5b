"""The validation records of the partitions a version learnt from: GX results and Data Docs pages
(under the settings' artifacts root) and quarantine records (in the lake), a folder or s3:// each.

Why on the card: a model is only as trustworthy as the data it saw; whether each partition
passed its Great Expectations suite, and what was quarantined beside it, is the data half of
the story the registry does not hold. A record that is missing or unreadable is reported.
"""

from __future__ import annotations

import json
from typing import Any

from include.core.settings import Settings
from include.lake import storage
from include.lake.partitions import partition_parts
from include.registry.card.facts import PartitionFacts, QuarantineRecord, ValidationRecord


def suite_matches(folder: str, table: str) -> bool:
    """GX keeps results under `<table>_<suite version>` (or `<table>_schema_<version>` when the
    schema check failed); versions contain no underscore, so `flight_schedules_x_y` is another
    table's."""
    if not folder.startswith(f"{table}_"):
        return False
    rest = folder[len(table) + 1 :].removeprefix("schema_")
    return bool(rest) and "_" not in rest


def _name(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


def _results(settings: Settings, table: str, key: str) -> list[tuple[str, str, str]]:
    """Every GX result file of one partition, as (run time, suite folder, location): one listing
    of the results root, then one of each matching suite's interval folder."""
    root = settings.validation_results_root
    runs: list[tuple[str, str, str]] = []
    for suite_dir in storage.ls(root):
        suite = _name(suite_dir)
        if not suite_matches(suite, table):
            continue
        for time_dir in storage.ls(storage.join(suite_dir, key)):
            result = storage.join(time_dir, f"lake-{table}.json")
            if storage.is_file(result):
                runs.append((_name(time_dir), suite, result))
    return runs


def _failed_expectations(results: list[dict[str, Any]]) -> list[str]:
    """The failed expectations of a result, by the reason the suite gives them (or their type)."""
    failed = []
    for res in results:
        if res.get("success", True):
            continue
        config = res.get("expectation_config") or {}
        reason = (config.get("meta") or {}).get("reason")
        column = (config.get("kwargs") or {}).get("column")
        failed.append(f"{reason or config.get('type')}{f' ({column})' if column else ''}")
    return sorted(set(failed))


def _result_record(
    settings: Settings, table: str, key: str, run_time: str, suite: str, location: str
) -> ValidationRecord:
    """One GX result file as the card's record, with its Data Docs page (relative to the site)
    when the site has it."""
    try:
        data = json.loads(storage.read_bytes(location).decode("utf-8"))
    except (OSError, ValueError) as exc:
        return {"found": True, "error": f"unreadable result {location}: {exc}"}
    stats = data.get("statistics") or {}
    page = "/".join(["validations", suite, key, run_time, f"lake-{table}.html"])
    return {
        "found": True,
        "suite": suite,
        "validated_at": ((data.get("meta") or {}).get("run_id") or {}).get("run_time") or run_time,
        "success": bool(data.get("success")),
        "evaluated_expectations": stats.get("evaluated_expectations"),
        "successful_expectations": stats.get("successful_expectations"),
        "failed": _failed_expectations(data.get("results") or []),
        "data_docs_page": page if storage.is_file(storage.join(settings.data_docs_root, page)) else None,
    }


def _quarantine_record(settings: Settings, table: str, key: str) -> QuarantineRecord:
    """The quarantine record beside the partition in the lake: rows the model never saw, and why."""
    reason_file = storage.join(settings.lake_root, "quarantine", table, f"interval={key}", "reason.json")
    if not storage.is_file(reason_file):
        return {"exists": False}
    try:
        record = json.loads(storage.read_bytes(reason_file).decode("utf-8"))
    except (OSError, ValueError) as exc:
        return {"exists": True, "error": f"unreadable reason.json: {exc}"}
    return {
        "exists": True,
        "decision": record.get("decision"),
        "quarantined_rows": record.get("quarantined_rows"),
        "published_rows": record.get("published_rows"),
        "failed": record.get("failed") or [],
        "forced_publish_reason": record.get("forced_publish_reason"),
    }


def validation_record(settings: Settings, table: str, key: str) -> ValidationRecord:
    """The latest Great Expectations result of one partition (table + interval key), its Data Docs
    page, and the quarantine record beside it in the lake, if any."""
    runs = _results(settings, table, key)
    out: ValidationRecord = _result_record(settings, table, key, *max(runs)) if runs else {"found": False}
    out["quarantine"] = _quarantine_record(settings, table, key)
    return out


def partition_facts(settings: Settings, partitions: dict[str, str]) -> list[PartitionFacts]:
    """Each lineage partition (`.../<zone>/<table>/interval=<key>/part-0.parquet`: sha256) with
    its validation record; a record that cannot be read is reported, not raised."""
    out = []
    for path, sha in sorted(partitions.items()):
        zone, table, key = partition_parts(path)
        item: PartitionFacts = {"table": table, "interval": key, "zone": zone}
        item["sha256"] = sha
        try:
            item["validation"] = validation_record(settings, table, key)
        except OSError as exc:
            item["validation"] = {"found": False, "error": str(exc)}
        out.append(item)
    return out
