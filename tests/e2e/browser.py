"""A real headless browser for the UI tests: Debian's chromium, driven by Playwright.

No browser is downloaded: Playwright launches the system's chromium (`.ci/run` installs it;
MLOPS_CHROMIUM names another binary). Screenshots go to test-results/ and are listed at the end
of the test run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from include.core.settings import PROJECT_DIR

RESULTS_DIR = PROJECT_DIR / "test-results"
SCREENSHOTS: list[Path] = []


def chromium_path() -> str:
    """The chromium binary, or a test failure that says how to get one (`make test` installs it)."""
    for candidate in (
        os.environ.get("MLOPS_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/lib/chromium/chromium",
    ):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("no chromium for the browser test: `make system` installs it (or set MLOPS_CHROMIUM)")


def screenshot_path(name: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.png"
    SCREENSHOTS.append(path)
    return path
