"""The Great Expectations session of a task (I/O: GX context, result store, Data Docs site).

Results and the site live where the settings say (`validation_results_root`, `data_docs_root`): a
local folder or an object store, through include/quality/gx_store.py, so a page rendered on one
worker is served by the API server and listed in the index another worker rebuilds.

GX Core is imported only when a session is built, i.e. inside the task that validates.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from include.lake import storage
from include.quality.suites import Check

DOCS_SITE = "lake"
INDEX_ATTEMPTS = 5
"""How many times a session builds the index while a stored page is missing from it. A rebuild is
needed only when another task stored its page between this one's listing of the site and its
write of the index; past this bound the session warns, and the next validation's build adds it."""

log = logging.getLogger(__name__)


def _gx_expectation(check: Check) -> Any:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    kwargs = dict(check.kwargs)
    if check.when:
        column, value = check.when
        kwargs["row_condition"] = Column(column) == value
    return getattr(gxe, check.expectation)(**kwargs, meta={"policy": check.policy, "reason": check.reason})


def _context_config(docs_root: str | None, results_root: str | None) -> Any:
    """An in-memory context; with `docs_root`, results kept in storage and a Data Docs site."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
    )

    from include.quality.gx_store import store_config

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    )
    if docs_root:
        parent = docs_root.rstrip("/").rsplit("/", 1)[0]
        results_root = results_root or storage.join(parent, "gx_validation_results")
        config.stores["validation_results_store"] = {
            "class_name": "ValidationResultsStore",
            "store_backend": store_config(results_root),
        }
        config.data_docs_sites = {
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "store_backend": store_config(docs_root),
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        }
    return config


def missing_from_index(docs_root: str) -> list[str]:
    """The validation pages of the site (relative paths) that its index.html does not link.

    GX rebuilds the index from the pages it finds, so the index written last lists every page
    that existed when its writer listed the site; a page another task added between that listing
    and the write is what this finds."""
    try:
        index = storage.read_bytes(storage.join(docs_root, "index.html")).decode("utf-8")
    except FileNotFoundError:
        index = ""
    pages = storage.find(storage.join(docs_root, "validations"))
    return [f"validations/{p}" for p in pages if p.endswith(".html") and f"validations/{p}" not in index]


class GxSession:
    """One quiet Great Expectations context for a task: build it once, validate many frames.

    With `docs_root`, every validation result is kept under `results_root` and rendered to a
    Data Docs site at `docs_root` (one page per partition and run, and an index of all of them),
    each a local folder or an s3:// URL; without it, results stay in memory (tests, benchmarks)."""

    def __init__(
        self, docs_root: storage.Location | None = None, results_root: storage.Location | None = None
    ) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no network here: calls would hang
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.docs_root = os.fspath(docs_root) if docs_root else None
        config = _context_config(self.docs_root, os.fspath(results_root) if results_root else None)
        self.context = gx.get_context(project_config=config, mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self.context.data_sources.add_pandas("lake")
        self._definitions: dict[str, Any] = {}

    def _definition(self, table_name: str, suite_name: str, checks: list[Check]) -> Any:
        import great_expectations as gx

        suite = gx.ExpectationSuite(suite_name, expectations=[_gx_expectation(c) for c in checks])
        if suite_name in self._definitions:  # same table, new interval: arguments may differ
            definition = self._definitions[suite_name]
            definition.suite.expectations = suite.expectations
            definition.suite.save()
            return definition
        try:
            asset = self._source.get_asset(table_name)
        except LookupError:
            asset = self._source.add_dataframe_asset(table_name)
        batch = asset.add_batch_definition_whole_dataframe(suite_name)
        definition = self.context.validation_definitions.add(
            gx.ValidationDefinition(name=suite_name, data=batch, suite=self.context.suites.add(suite))
        )
        self._definitions[suite_name] = definition
        return definition

    def validate(
        self, table_name: str, suite_name: str, checks: list[Check], frame: pd.DataFrame, run_name: str
    ) -> tuple[Any, str | None]:
        """Run a suite on a frame; return GX's result and the Data Docs page's location (a path or
        a URL; None without docs)."""
        from great_expectations.core.run_identifier import RunIdentifier

        definition = self._definition(table_name, suite_name, checks)
        run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
        result = definition.run(
            batch_parameters={"dataframe": frame},
            run_id=run_id,
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": 5},
        )
        if not self.docs_root:
            return result, None
        return result, self._build_docs_page(self.docs_root, table_name, suite_name, run_id)

    def _build_docs_page(self, docs_root: str, table_name: str, suite_name: str, run_id: Any) -> str | None:
        """Render this result's page and the index into the site; return the page's location.

        The tables of one interval validate in parallel, maybe on machines that share no lock, so
        the index is checked after it is written: while it misses a page that exists (written by
        another task after this one listed the site), it is rebuilt. Every task stores its page
        before it builds, and listings are read-after-write consistent (a local folder; S3 and
        S3-compatible stores since 2020), so the index written last was checked after every page
        was stored: no page is left out, without a lock that would have to span machines."""
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        result_id = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=run_id,
            batch_identifier=f"{self._source.name}-{table_name}",
        )
        for _ in range(INDEX_ATTEMPTS):
            self.context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[result_id])
            missing = missing_from_index(docs_root)
            if not missing:
                break
        else:
            log.warning(
                "Data Docs index %s still misses %s after %d builds: the next validation's build adds them",
                storage.join(docs_root, "index.html"),
                missing,
                INDEX_ATTEMPTS,
            )
        urls = self.context.get_docs_sites_urls(resource_identifier=result_id, site_name=DOCS_SITE)
        page = urls[0]["site_url"] if urls else None
        return str(page) if page else None
