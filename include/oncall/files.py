"""Which files the page may serve or link to: drift reports and the Data Docs site, nothing else.

Why one module: the plugin's file routes take a name from the URL; every rule that keeps such
a name inside its folder (no `..`, no absolute path, no symlink out) is here, next to the links
the page builds to those folders, so both follow the same rule; so are the headers the files are
served with (a sandboxing Content-Security-Policy).
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from include.core.settings import Settings

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


def report_file(settings: Settings, name: str) -> Path | None:
    """A drift report by file name, only from the reports folder (no path tricks)."""
    if not REPORT_NAME.match(name):
        return None
    path = settings.monitoring_dir / "reports" / name
    return path if path.is_file() else None


def data_docs_file(settings: Settings, relative: str) -> Path | None:
    """A file of the Data Docs site, only from inside the site folder."""
    root = settings.data_docs_dir.resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


def data_docs_link(settings: Settings, page: str | None) -> str | None:
    """A Data Docs file as a link under the page ("data-docs/..."), only inside the site folder."""
    if not page:
        return None
    path = Path(page.removeprefix("file://"))
    root = settings.data_docs_dir.resolve()
    try:
        rel = path.resolve().relative_to(root)
    except ValueError:
        return None
    return f"data-docs/{quote(rel.as_posix())}"
