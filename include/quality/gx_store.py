"""A Great Expectations store backend on the lake's storage helpers (a local folder or s3://).

Why our own: GX Core 1.24 ships no object-store backend any more (only TupleFilesystemStoreBackend,
in-memory and GX Cloud), and workers that share no disk must keep validation results and the
Data Docs site where every worker and the API server read them. This class is GX's tuple backend
(the same key <-> file name rules, so a local root keeps exactly the layout the filesystem backend
wrote) with its I/O done by include/lake/storage.py: one code path for a folder and a bucket, the
same credentials (the standard AWS variables), and atomic writes (readers of a page or of the
index never see half a file; the filesystem backend wrote in place).

GX loads the class by name from a store configuration: `store_config(location)`.
"""

from __future__ import annotations

from typing import Any

from great_expectations.data_context.store.tuple_store_backend import TupleStoreBackend
from great_expectations.exceptions import InvalidKeyError, StoreBackendError

from include.lake import storage


def store_config(location: str) -> dict[str, str]:
    """The `store_backend` entry of a GX store (results store, Data Docs site) kept at `location`."""
    return {"module_name": __name__, "class_name": StorageStoreBackend.__name__, "base_location": location}


class StorageStoreBackend(TupleStoreBackend):
    """GX's tuple store backend on a storage location (a local path or an s3:// URL)."""

    def __init__(  # GX passes these by name from the store configuration and its defaults
        self,
        base_location: str,
        filepath_template: str | None = None,
        filepath_prefix: str | None = None,
        filepath_suffix: str | None = None,
        forbidden_substrings: list[str] | None = None,
        fixed_length_key: bool = False,
        suppress_store_backend_id: bool = False,
        manually_initialize_store_backend_id: str = "",
        base_public_path: str | None = None,
        store_name: str | None = None,
        platform_specific_separator: bool = False,
    ) -> None:
        super().__init__(
            filepath_template=filepath_template,
            filepath_prefix=filepath_prefix,
            filepath_suffix=filepath_suffix,
            forbidden_substrings=forbidden_substrings,
            platform_specific_separator=False,  # keys are "/"-joined on every store
            fixed_length_key=fixed_length_key,
            suppress_store_backend_id=suppress_store_backend_id,
            manually_initialize_store_backend_id=manually_initialize_store_backend_id,
            base_public_path=base_public_path,
            store_name=store_name,
        )
        if not base_location:
            raise StoreBackendError("StorageStoreBackend needs a base_location (a folder or an s3:// URL)")
        self.base_location = str(base_location)
        self._config = {
            "module_name": __name__,
            "class_name": type(self).__name__,
            "base_location": self.base_location,
            "filepath_template": filepath_template,
            "filepath_prefix": filepath_prefix,
            "filepath_suffix": filepath_suffix,
            "fixed_length_key": fixed_length_key,
            "suppress_store_backend_id": suppress_store_backend_id,
        }
        if not self._suppress_store_backend_id:  # as the filesystem backend: read or create the id
            _ = self.store_backend_id

    def location(self, key: Any) -> str:
        """Where the value of `key` is stored (a path or a URL)."""
        if not isinstance(key, tuple):
            key = key.to_tuple()
        return storage.join(self.base_location, *self._convert_key_to_filepath(key).split("/"))

    def _get(self, key: Any) -> str:  # type: ignore[override]
        where = self.location(key)
        try:
            return storage.read_bytes(where).decode("utf-8").rstrip("\n")
        except FileNotFoundError as exc:
            raise InvalidKeyError(f"no GX object at {where}") from exc

    def _get_all(self) -> list[Any]:
        return [self._get(key) for key in self.list_keys() if key != self.STORE_BACKEND_ID_KEY]

    def _set(self, key: Any, value: Any, **kwargs: Any) -> str:  # type: ignore[override]
        where = self.location(key)
        storage.write_bytes_atomic(where, value.encode("utf-8") if isinstance(value, str) else value)
        return where

    def _move(self, source_key: Any, dest_key: Any, **kwargs: Any) -> Any:
        source = self.location(source_key)
        if not storage.is_file(source):
            return False
        storage.write_bytes_atomic(self.location(dest_key), storage.read_bytes(source))
        storage.remove(source)
        return dest_key

    def list_keys(self, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        keys = []
        for relative in storage.find(storage.join(self.base_location, *prefix)):
            filepath = "/".join([*prefix, relative])
            if self._is_missing_prefix_or_suffix(self.filepath_prefix, self.filepath_suffix, filepath):
                continue
            key = self._convert_filepath_to_key(filepath)
            if key and not self.is_ignored_key(key):
                keys.append(key)
        return keys

    def remove_key(self, key: Any) -> bool:  # type: ignore[override]  # GX's own backends return a bool too
        return storage.remove(self.location(key))

    def _has_key(self, key: Any) -> bool:
        return storage.is_file(self.location(key))

    def get_url_for_key(self, key: Any, protocol: Any = None) -> str:
        """The stored object's location as the project names files (a path, or an s3:// URL),
        not GX's percent-escaped file:// URL: this is what goes into XCom and reason.json."""
        return self.location(key)

    def get_public_url_for_key(self, key: Any, protocol: Any = None) -> str:
        if not self.base_public_path:
            raise StoreBackendError("no base_public_path is configured for this store")
        return f"{self.base_public_path}{self._convert_key_to_filepath(key)}"

    @property
    def config(self) -> dict[str, Any]:
        return {k: v for k, v in self._config.items() if v}
