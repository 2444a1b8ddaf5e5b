"""OpenLineage: the extractor names each task's inlets and outlets after the project's assets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from include.core import assets as names
from include.core.runtime_env import OPENLINEAGE_DIR, airflow_env, server_worker_env
from include.core.settings import PROJECT_DIR


@pytest.fixture(scope="module")
def dags():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_DIR / "dags"))
    assert not bag.import_errors
    return bag.dags


def _names(datasets) -> set[str]:
    return {f"{d.namespace}/{d.name}" for d in datasets}


def test_an_asset_becomes_a_dataset_named_by_its_uri_with_a_symlink_to_its_name():
    from airflow.sdk import Asset

    from include.airflow_glue.openlineage import ASSET_SYMLINK_TYPE, dataset_of

    d = dataset_of(Asset(name="raw_flights", uri="lake://raw/flights"))
    assert (d.namespace, d.name) == ("lake://raw", "flights")
    [link] = d.facets["symlinks"].identifiers
    assert (link.name, link.type) == ("raw_flights", ASSET_SYMLINK_TYPE)


def test_datasets_skip_what_is_not_an_asset_and_name_each_once():
    from airflow.sdk import Asset

    from include.airflow_glue.openlineage import datasets_of

    a = Asset(name="training_set", uri="lake://training_sets/flight_delay")
    assert _names(datasets_of([a, "not an asset", a])) == {"lake://training_sets/flight_delay"}
    assert datasets_of([]) == []


def test_the_extractor_answers_for_a_decorated_task_with_its_inlets_and_outlets(dags):
    from airflow.providers.openlineage.extractors.manager import ExtractorManager

    from include.airflow_glue.openlineage import AssetLineageExtractor

    task = dags["train_model"].get_task("register_best")
    # The provider's manager picks it (configured in [openlineage] extractors by runtime_env).
    assert ExtractorManager().extractors[task.task_type] is AssetLineageExtractor
    lineage = AssetLineageExtractor(task).extract()
    assert lineage is not None
    assert _names(lineage.inputs) == {names.CANDIDATE_RUNS.uri}
    assert _names(lineage.outputs) == {names.MODEL_VERSIONS.uri}
    assert "unknownSourceAttribute" not in lineage.run_facets


def test_a_task_without_inlets_or_outlets_has_no_datasets(dags):
    from include.airflow_glue.openlineage import AssetLineageExtractor

    lineage = AssetLineageExtractor(dags["train_model"].get_task("choose_path")).extract()
    assert lineage is not None and lineage.inputs == [] and lineage.outputs == []


def test_every_dataset_a_dag_declares_is_named_in_core_assets(dags):
    """One place names every asset: no DAG invents a URI, and each named asset is used."""
    from airflow.sdk import Asset

    from include.source.dataset import SOURCE_TABLES

    named = {
        *(spec.uri for spec in vars(names).values() if isinstance(spec, names.AssetName)),
        *(names.source(t.name).uri for t in SOURCE_TABLES),
        *(names.raw(t.name).uri for t in SOURCE_TABLES),
        *(names.validated(t.name).uri for t in SOURCE_TABLES if t.kind == "event"),
    }
    used = {
        obj.uri
        for dag in dags.values()
        for task in dag.tasks
        for obj in [*task.inlets, *task.outlets]
        if isinstance(obj, Asset)
    }
    assert used <= named, sorted(used - named)
    assert named <= used, f"named but read or written by no task: {sorted(named - used)}"


def test_the_provider_is_on_with_a_file_per_event_under_the_home(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLOPS_OPENLINEAGE_TRANSPORT", raising=False)
    env = airflow_env(tmp_path / "home")
    transport = json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert transport == {
        "type": "file",
        "log_file_path": str(tmp_path / "home" / OPENLINEAGE_DIR / "event"),
        "append": False,
    }
    assert (tmp_path / "home" / OPENLINEAGE_DIR).is_dir()
    assert env["AIRFLOW__OPENLINEAGE__EXTRACTORS"] == "include.airflow_glue.openlineage.AssetLineageExtractor"
    # A worker of the server profile keeps its events on its own disk.
    worker = server_worker_env(tmp_path / "server", "worker1")
    assert str(tmp_path / "server" / "workers" / "worker1") in worker["AIRFLOW__OPENLINEAGE__TRANSPORT"]
    # An HTTP consumer is one variable.
    http = json.dumps({"type": "http", "url": "http://127.0.0.1:5001"})
    monkeypatch.setenv("MLOPS_OPENLINEAGE_TRANSPORT", http)
    assert airflow_env(tmp_path / "home")["AIRFLOW__OPENLINEAGE__TRANSPORT"] == http
