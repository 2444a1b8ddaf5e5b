"""The OpenLineage events the provider wrote (file transport, include/core/runtime_env.py), parsed."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from include.core.runtime_env import OPENLINEAGE_DIR


def events_dir() -> Path:
    return Path(os.environ["AIRFLOW_HOME"]) / OPENLINEAGE_DIR


def read_events(folder: Path | None = None) -> list[dict[str, Any]]:
    """Every event file of the folder, oldest first (the transport names them by time)."""
    folder = folder or events_dir()
    return [json.loads(p.read_text()) for p in sorted(folder.glob("event-*.json"))]


def dag_run_id(event: dict[str, Any]) -> str | None:
    """The Airflow run id a task event belongs to (the provider's `airflow` run facet)."""
    facets = event.get("run", {}).get("facets", {})
    return (facets.get("airflow", {}).get("dagRun") or {}).get("run_id")


def datasets(items: list[dict[str, Any]]) -> set[str]:
    """`namespace/name` of each dataset: the asset's URI (`lake://raw` + `flights`)."""
    return {f"{d['namespace']}/{d['name']}" for d in items}


def task_lineage(dag_id: str, run_id: str, folder: Path | None = None) -> dict[str, dict[str, set[str]]]:
    """task_id -> {"inputs", "outputs"} of the COMPLETE events of one DAG run."""
    out: dict[str, dict[str, set[str]]] = {}
    for event in read_events(folder):
        name = event.get("job", {}).get("name", "")
        if event.get("eventType") != "COMPLETE" or not name.startswith(dag_id + "."):
            continue
        if dag_run_id(event) != run_id:
            continue
        task = name[len(dag_id) + 1 :]
        out[task] = {
            "inputs": datasets(event.get("inputs", [])),
            "outputs": datasets(event.get("outputs", [])),
        }
    return out
