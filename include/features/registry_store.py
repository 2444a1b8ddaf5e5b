"""Feast's file registry, written so that a kill never leaves half of it (the embedded profile).

Feast 0.67's FileRegistryStore rewrites registry.db in place (open "wb", write, fsync): a task
killed in the middle of `apply_definitions` or `materialize_online` leaves a truncated file, and
every later task fails to parse it. This store writes the new registry to a temporary file in the
same folder, fsyncs it, parses it back (a registry that does not read is never put in place), and
renames it over the old one, which readers see whole, old or new. Selected in feature_store.yaml
(`registry_store_type`); the server profile's SQL registry is transactional already.
"""

from __future__ import annotations

import os
import tempfile
import uuid

from feast.infra.registry.file import FileRegistryStore
from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto
from feast.utils import _utc_now


class AtomicFileRegistryStore(FileRegistryStore):
    """FileRegistryStore with an atomic, verified write (temporary file, parse check, rename)."""

    def _write_registry(self, registry_proto: RegistryProto) -> None:
        registry_proto.version_id = str(uuid.uuid4())
        registry_proto.last_updated.FromDatetime(_utc_now())
        folder = self._filepath.parent
        folder.mkdir(parents=True, exist_ok=True)
        data = registry_proto.SerializeToString()
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{self._filepath.name}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            check = RegistryProto()
            with open(tmp, "rb") as written:
                check.ParseFromString(written.read())
            if check.version_id != registry_proto.version_id:
                raise OSError(f"the registry written to {tmp} does not read back as the one just built")
            os.replace(tmp, self._filepath)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
