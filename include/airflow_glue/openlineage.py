"""OpenLineage events name the project's datasets: every task's inlets and outlets.

Airflow's OpenLineage provider emits a START and a COMPLETE (or FAIL) event for every task and a
pair for every DAG run, through the transport configured in include/core/runtime_env.py (files
under $AIRFLOW_HOME/openlineage by default; an HTTP consumer such as Marquez is one variable
away, see README). For a `@task` it finds no datasets by itself: it converts an Airflow asset
only when a provider knows the asset's URI scheme, and the project's (lake://, feast://,
mlflow://, sql://, mlops://, source://) are its own.

This extractor, registered in `[openlineage] extractors`, answers for the Python tasks: the
task's inlets are the event's inputs and its outlets its outputs, each named after the asset in
include/core/assets.py (namespace = the URI's scheme and authority, name = its path, and a
symlink to the Airflow asset's name). DAG files declare what a task reads and writes once, and
Airflow's asset graph and the lineage consumer show the same flow.

Imported only by the provider's listener, inside task processes: never by a DAG file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from airflow.providers.openlineage.extractors.base import OperatorLineage
from airflow.providers.openlineage.extractors.python import PythonExtractor
from airflow.sdk import Asset
from openlineage.client.event_v2 import Dataset
from openlineage.client.facet_v2 import symlinks_dataset

ASSET_SYMLINK_TYPE = "AIRFLOW_ASSET"
# The asset's name is a symlink in this namespace (the provider's own default namespace's peer).
ASSET_NAMESPACE = "airflow-assets"


def dataset_of(asset: Asset) -> Dataset:
    """The OpenLineage dataset of one of the project's assets (`lake://raw/flights` → namespace
    `lake://raw`, name `flights`), with a symlink to the asset's name (`raw_flights`)."""
    parts = urlsplit(asset.uri)
    namespace = f"{parts.scheme}://{parts.netloc}" if parts.scheme else ASSET_NAMESPACE
    name = parts.path.lstrip("/") or asset.name
    return Dataset(
        namespace=namespace,
        name=name,
        facets={
            "symlinks": symlinks_dataset.SymlinksDatasetFacet(
                identifiers=[
                    symlinks_dataset.Identifier(
                        namespace=ASSET_NAMESPACE, name=asset.name, type=ASSET_SYMLINK_TYPE
                    )
                ]
            )
        },
    )


def datasets_of(objects: Iterable[Any]) -> list[Dataset]:
    """The datasets of the assets among a task's inlets or outlets (anything else is skipped),
    each once, in the task's order."""
    seen: set[tuple[str, str]] = set()
    out: list[Dataset] = []
    for obj in objects or ():
        if not isinstance(obj, Asset):
            continue
        dataset = dataset_of(obj)
        if (dataset.namespace, dataset.name) not in seen:
            seen.add((dataset.namespace, dataset.name))
            out.append(dataset)
    return out


class AssetLineageExtractor(PythonExtractor):
    """The Python tasks' (plain, `@task`, `@task.branch`) inlets and outlets as datasets."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return [
            "PythonOperator",
            "BranchPythonOperator",
            "_PythonDecoratedOperator",
            "_BranchPythonDecoratedOperator",
        ]

    def _execute_extraction(self) -> OperatorLineage | None:
        base = super()._execute_extraction() or OperatorLineage()
        return OperatorLineage(
            inputs=datasets_of(self.operator.inlets),
            outputs=datasets_of(self.operator.outlets),
            run_facets={},  # the provider's "unknown source" facet: the datasets are known here
            job_facets=base.job_facets,
        )
