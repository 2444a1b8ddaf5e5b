"""Which files the page may serve or link to: drift reports and the Data Docs site, nothing else.

Why one module: the plugin's file routes take a name from the URL; every rule that keeps such
a name inside its root (no `..`, no absolute path, no symlink out) is here, next to the links
the page builds to those roots, so both follow the same rule; so are the headers the files are
served with (a sandboxing Content-Security-Policy).

The roots are storage locations (include/lake/storage.py): a local folder, or an s3:// prefix
when the workers that write the files share no disk with the API server. The name is checked
as text first (the same rule for both), then, for a local folder, by where the path really
leads (a symlink inside the site may point out of it; an object store has no symlinks). The
bytes are read through storage and handed to the plugin, never a local path.
"""

from __future__ import annotations

import mimetypes
import os
import posixpath
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from include.core.settings import Settings
from include.lake import storage

REPORT_NAME = re.compile(r"^[A-Za-z0-9_.-]+\.html$")

# Served with every report and Data Docs file. Those pages pull scripts from CDNs and run
# inline scripts; `sandbox` (without allow-same-origin) gives them an opaque origin, so none of
# it can read Airflow's pages or call its API with the user's session. Scripts still run (the
# pages need them), and links may open tabs (themselves sandboxed).
SANDBOX_CSP = "sandbox allow-scripts allow-popups; frame-ancestors 'self'"
FILE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": SANDBOX_CSP,
}


@dataclass(frozen=True)
class ServedFile:
    """A file the page may serve: its bytes (read through storage), type and headers."""

    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=lambda: dict(FILE_HEADERS))


def _clean_relative(relative: str) -> str | None:
    """`relative` as a normalised path inside its root ("a/x/../b.html" is "a/b.html"), or None
    when it is empty, absolute, leaves the root (`..`) or holds a NUL or a backslash."""
    if not relative or "\x00" in relative or "\\" in relative or relative.startswith("/"):
        return None
    clean = posixpath.normpath(relative)
    if clean in (".", "..") or clean.startswith("../"):
        return None
    return clean


def _local_inside(root: str, location: str) -> bool:
    """For a local root: whether `location` really is inside it once symlinks are followed."""
    if not storage.is_local(root):
        return True
    real_root = Path(os.path.realpath(root.removeprefix("file://")))
    return Path(os.path.realpath(location.removeprefix("file://"))).is_relative_to(real_root)


def _file_under(root: str, relative: str) -> str | None:
    """The location of an existing file `relative` under `root`, or None (outside, or missing)."""
    clean = _clean_relative(relative)
    if clean is None:
        return None
    location = storage.join(root, *clean.split("/"))
    if not _local_inside(root, location) or not storage.is_file(location):
        return None
    return location


def report_file(settings: Settings, name: str) -> str | None:
    """A drift report by file name, only from the reports root (no path tricks)."""
    if not REPORT_NAME.match(name):
        return None
    return _file_under(settings.monitoring_reports_root, name)


def data_docs_file(settings: Settings, relative: str) -> str | None:
    """A file of the Data Docs site, only from inside the site's root."""
    return _file_under(settings.data_docs_root, relative)


def read_served(location: str | None, media_type: str | None = None) -> ServedFile | None:
    """The bytes of a file `report_file` or `data_docs_file` found, with the sandboxing headers;
    None when there is none (or it was removed since)."""
    if location is None:
        return None
    try:
        body = storage.read_bytes(location)
    except FileNotFoundError:
        return None
    guessed = mimetypes.guess_type(location.rsplit("/", 1)[-1])[0]
    return ServedFile(body, media_type or guessed or "application/octet-stream")


def served_report(settings: Settings, name: str) -> ServedFile | None:
    """The report the plugin's /reports/{name} answers with, or None (404)."""
    return read_served(report_file(settings, name), "text/html")


def served_data_docs(settings: Settings, relative: str) -> ServedFile | None:
    """The Data Docs file the plugin's /data-docs/{relative} answers with, or None (404)."""
    return read_served(data_docs_file(settings, relative))


def _local_relative(root: str, location: str) -> str | None:
    """A local `location` relative to the local `root`, once symlinks are followed; None outside."""
    real_root = Path(os.path.realpath(root))
    try:
        return Path(os.path.realpath(location.removeprefix("file://"))).relative_to(real_root).as_posix()
    except ValueError:
        return None


def data_docs_link(settings: Settings, page: str | None) -> str | None:
    """A Data Docs page's location (a path, file:// path or URL, as validation recorded it) as a
    link under the page ("data-docs/..."), only inside the site's root."""
    if not page:
        return None
    root = settings.data_docs_root
    if storage.is_local(root):
        rel = _local_relative(root, page) if storage.is_local(page) else None
    else:
        prefix = root.rstrip("/") + "/"
        rel = _clean_relative(page[len(prefix) :]) if page.startswith(prefix) else None
    if not rel or rel == ".":
        return None
    return f"data-docs/{quote(rel)}"
