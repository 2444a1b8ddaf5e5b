"""Where the lake's bytes live: a local folder or an object store (s3://...), one code path.

Every lake function names files by a string that is either a local path or a URL, and hands it
to these helpers, which resolve it to an fsspec filesystem (`fsspec.core.url_to_fs`). Only the
write differs by kind, because only the write's atomicity does:

- local folder: a temporary file in the same folder, fsync, then `os.replace` (an atomic rename
  on POSIX), so readers see the old or the new file and a crash leaves the old one;
- object store: one upload of the whole buffer (`pipe_file`: a single PUT, or a multipart upload
  completed in one call for very large buffers). An object store has no rename (a "rename" is a
  copy and a delete, and the temporary object would show in listings), but an upload is atomic
  per object: readers see the old or the new object, never a part, and a failed upload leaves
  nothing.

Local paths keep the form they were given (a relative root gives relative paths), so what goes
into XCom, asset extras and lineage is the same string as before the lake used fsspec.

Credentials and the endpoint come from the standard AWS chain, read by the S3 client itself:
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN (or a profile, or the instance's
role), AWS_DEFAULT_REGION, and AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL for an S3-compatible
server. Nothing secret is passed in code. The filesystem object is cached per process by fsspec,
so those variables must be set before the first lake access.

Listings are never cached (`use_listings_cache=False`): a long-lived reader (the online
service's flight index) must see the partitions another worker wrote since its last look.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import IO, Any

import fsspec
from fsspec.core import split_protocol

Location = str | os.PathLike[str]
"""A local path (str or Path) or a URL such as s3://bucket/lake/raw/..."""

_LOCAL_PROTOCOLS = frozenset({None, "file", "local"})


def is_local(location: Location) -> bool:
    """True for a path or a file:// URL: the lake is a folder, written by rename."""
    if isinstance(location, os.PathLike):
        return True
    protocol, _ = split_protocol(location)
    return protocol in _LOCAL_PROTOCOLS


def _local_path(location: Location) -> str:
    """A local location as a plain path string (file:// and local:// prefixes removed)."""
    text = os.fspath(location)
    for prefix in ("file://", "local://"):
        text = text.removeprefix(prefix)
    return text


def resolve(location: Location) -> tuple[Any, str]:
    """The fsspec filesystem that holds `location`, and the path inside it that fsspec expects
    (absolute for a local folder, bucket/key for S3)."""
    target = _local_path(location) if is_local(location) else os.fspath(location)
    fs, path = fsspec.core.url_to_fs(target, use_listings_cache=False)
    return fs, path


def join(root: Location, *parts: str) -> str:
    """`root`/`parts`... as a string: a path joined as pathlib does for a local root (the same
    string `Path(root) / ...` gave), a URL with its scheme kept otherwise."""
    if is_local(root):
        return str(Path(_local_path(root)).joinpath(*parts))
    return "/".join([os.fspath(root).rstrip("/"), *(p.strip("/") for p in parts)])


def _under(folder: Location, base: str, found: str) -> str:
    """A path fsspec listed under `base` (the resolved `folder`), named the way the caller named
    the folder: the same string `Path(folder) / relative` gave for a local root (relative when
    the root was), a URL with the caller's scheme for an object store."""
    relative = found[len(base) :].lstrip("/")
    return join(folder, *relative.split("/"))


def _info(location: Location) -> dict[str, Any] | None:
    """What the store says about `location`, None only when it says "not there".

    fsspec's `exists` and `isfile` answer False on any error, so an object store that cannot be
    reached would look empty (a missing partition, a record never written): fail closed instead,
    every other error (endpoint down, credentials refused) is raised."""
    fs, path = resolve(location)
    try:
        return dict(fs.info(path))
    except FileNotFoundError:
        return None


def exists(location: Location) -> bool:
    """A file, or a folder (for an object store: a prefix with at least one object). Raises when
    the store cannot be asked (see `_info`)."""
    return _info(location) is not None


def is_file(location: Location) -> bool:
    """A file (for an object store: an object), not a folder or prefix. Raises when the store
    cannot be asked (see `_info`)."""
    info = _info(location)
    return info is not None and info.get("type") == "file"


def ls(folder: Location) -> list[str]:
    """The entries directly inside `folder` (files and folders), sorted; [] when it is missing."""
    fs, path = resolve(folder)
    try:
        found = fs.ls(path, detail=False)
    except FileNotFoundError:
        return []
    base = path.rstrip("/")
    return sorted(_under(folder, base, f.rstrip("/")) for f in found if f.rstrip("/") != base)


def glob(folder: Location, pattern: str) -> list[str]:
    """The files under `folder` whose path relative to it matches `pattern` segment by segment
    (`*` never crosses a `/`), sorted; [] when the folder is missing.

    `folder` is taken literally (a root with `[` in its name is not a character class), and an
    object store answers with one paginated listing of the prefix, not one per sub-folder.
    """
    fs, path = resolve(folder)
    wanted = PurePosixPath(pattern).parts
    base = path.rstrip("/")
    out = []
    for found in fs.find(base):
        rel = PurePosixPath(found[len(base) :].lstrip("/")).parts
        if len(rel) == len(wanted) and all(
            fnmatch.fnmatchcase(a, b) for a, b in zip(rel, wanted, strict=True)
        ):
            out.append(_under(folder, base, found))
    return sorted(out)


def find(folder: Location) -> list[str]:
    """Every file under `folder`, at any depth, as paths relative to it ("a/b/c.html"), sorted;
    [] when the folder is missing. An object store answers with one paginated listing. The
    temporary files of local writes under way (`.<name>.<random>.tmp`) are left out: they are
    not files yet."""
    fs, path = resolve(folder)
    base = path.rstrip("/")
    out = []
    for found in fs.find(base):
        relative = found[len(base) :].lstrip("/")
        name = relative.rsplit("/", 1)[-1]
        if relative and not (name.startswith(".") and name.endswith(".tmp")):
            out.append(relative)
    return sorted(out)


def size(folder: Location) -> int:
    """Bytes of every file under `folder` (0 when it is missing); one listing for an object store."""
    fs, path = resolve(folder)
    try:
        return int(
            sum(int(info.get("size") or 0) for info in fs.find(path.rstrip("/"), detail=True).values())
        )
    except FileNotFoundError:
        return 0


def remove(location: Location) -> bool:
    """Delete one file (an object); False when there was none. A local folder left empty stays:
    listings never show empty folders as files."""
    fs, path = resolve(location)
    if not fs.isfile(path):  # S3 answers a delete of a missing key with success
        return False
    try:
        fs.rm_file(path)
    except FileNotFoundError:  # removed by another writer in between
        return False
    return True


def read_bytes(location: Location) -> bytes:
    """The whole file; FileNotFoundError when it is missing (never empty bytes)."""
    fs, path = resolve(location)
    return bytes(fs.cat_file(path))


@contextmanager
def open_input(location: Location) -> Iterator[IO[bytes]]:
    """A binary handle for reading (parquet is read through it). pyarrow is given this handle,
    never a filesystem: pyarrow's wrapper of an fsspec filesystem aborts the interpreter at exit
    on some filesystems, and a path string would let pyarrow pick its own S3 client."""
    fs, path = resolve(location)
    with fs.open(path, "rb") as handle:
        yield handle


def sha256(location: Location) -> str:
    """The hex sha256 of a stored file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open_input(location) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_bytes_atomic(location: Location, data: bytes) -> None:
    """Store `data` at `location` so that readers see the old content or the new, never a part.

    Local: a temporary file (`.<name>.<random>.tmp`, invisible to the lake's `*.parquet` and
    `part-0.parquet` listings) in the same folder, flushed and fsynced, then renamed over the
    target; the temporary file is removed if anything fails. Object store: one upload of the
    whole buffer (no folders to create, nothing visible until it completes).
    """
    if not is_local(location):
        fs, path = resolve(location)
        fs.pipe_file(path, data)
        return
    target = Path(_local_path(location))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def modified(location: Location) -> float:
    """When the file was last written, in seconds since the epoch (an object store's
    LastModified has a resolution of one second; a local file's mtime is finer)."""
    if is_local(location):
        return os.stat(_local_path(location)).st_mtime
    fs, path = resolve(location)
    return float(fs.modified(path).timestamp())
