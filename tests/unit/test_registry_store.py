"""Feast's file registry written atomically: a kill in the middle keeps the previous registry."""

from __future__ import annotations

from pathlib import Path

import pytest
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.repo_config import RegistryConfig

from include.features import registry_store
from include.features.registry_store import AtomicFileRegistryStore


def store(tmp_path: Path) -> AtomicFileRegistryStore:
    config = RegistryConfig(registry_type="file", path=str(tmp_path / "feast" / "registry.db"))
    return AtomicFileRegistryStore(config, tmp_path)


def registry(project: str) -> RegistryProto:
    proto = RegistryProto()
    proto.registry_schema_version = "1"
    proto.project_metadata.add(project=project)
    return proto


def test_a_write_is_read_back_whole(tmp_path):
    s = store(tmp_path)
    s.update_registry_proto(registry("flights"))
    assert [m.project for m in s.get_registry_proto().project_metadata] == ["flights"]
    assert [p.name for p in (tmp_path / "feast").iterdir()] == ["registry.db"]


def test_a_write_killed_before_its_rename_keeps_the_previous_registry(tmp_path, monkeypatch):
    s = store(tmp_path)
    s.update_registry_proto(registry("before"))

    def killed(src, dst):
        raise KeyboardInterrupt("SIGKILL between the write and the rename")

    monkeypatch.setattr(registry_store.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        s.update_registry_proto(registry("after"))
    assert [m.project for m in s.get_registry_proto().project_metadata] == ["before"]
    assert [p.name for p in (tmp_path / "feast").iterdir()] == ["registry.db"], "no temporary file left"


def test_control_feasts_own_store_loses_the_registry_when_killed_mid_write(tmp_path, monkeypatch):
    """Why the project has its own store: Feast's opens the file for writing in place."""
    from feast.infra.registry.file import FileRegistryStore

    config = RegistryConfig(registry_type="file", path=str(tmp_path / "registry.db"))
    feast_store = FileRegistryStore(config, tmp_path)
    feast_store.update_registry_proto(registry("before"))

    class Killed:
        def __init__(self, *args, **kwargs):  # opening with "wb" has already truncated the file
            open_in_place(*args, **kwargs).close()

        def __enter__(self):
            raise KeyboardInterrupt("SIGKILL during the write")

        def __exit__(self, *exc):
            return False

    open_in_place = open
    monkeypatch.setattr("builtins.open", Killed)
    with pytest.raises(KeyboardInterrupt):
        feast_store.update_registry_proto(registry("after"))
    monkeypatch.undo()
    # The registry is gone, and reads as an empty one: "nothing there", silently.
    assert (tmp_path / "registry.db").stat().st_size == 0
    assert list(feast_store.get_registry_proto().project_metadata) == []
