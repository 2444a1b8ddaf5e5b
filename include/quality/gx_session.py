"""The Great Expectations session of a task (I/O: GX context, result store, Data Docs site).

GX Core is imported only when a session is built, i.e. inside the task that validates.
"""

from __future__ import annotations

import fcntl
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pandas as pd

from include.quality.suites import Check

DOCS_SITE = "lake"


def _gx_expectation(check: Check) -> Any:
    import great_expectations.expectations as gxe

    return getattr(gxe, check.expectation)(
        **check.kwargs, meta={"policy": check.policy, "reason": check.reason}
    )


def _filesystem_backend(directory: Path) -> dict[str, str]:
    return {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory)}


def _context_config(docs_dir: Path | None, results_dir: Path | None) -> Any:
    """An in-memory context; with `docs_dir`, results kept on disk and a Data Docs site."""
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False)
    )
    if docs_dir:
        results_dir = Path(results_dir or docs_dir.parent / "gx_validation_results")
        config.stores["validation_results_store"] = {
            "class_name": "ValidationResultsStore",
            "store_backend": _filesystem_backend(results_dir),
        }
        config.data_docs_sites = {
            DOCS_SITE: {
                "class_name": "SiteBuilder",
                "store_backend": _filesystem_backend(docs_dir),
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            }
        }
    return config


class GxSession:
    """One quiet Great Expectations context for a task: build it once, validate many frames.

    With `docs_dir`, every validation result is kept under `results_dir` and rendered to a
    Data Docs site in `docs_dir` (one page per partition and run, and an index of all of them);
    without it, results stay in memory (tests, benchmarks)."""

    def __init__(self, docs_dir: Path | None = None, results_dir: Path | None = None) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no network here: calls would hang
        logging.getLogger("great_expectations").setLevel(logging.WARNING)
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.docs_dir = Path(docs_dir) if docs_dir else None
        config = _context_config(self.docs_dir, results_dir)
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
        """Run a suite on a frame; return GX's result and the Data Docs page (None without docs)."""
        from great_expectations.core.run_identifier import RunIdentifier

        definition = self._definition(table_name, suite_name, checks)
        run_id = RunIdentifier(run_name=run_name, run_time=datetime.now(UTC))
        result = definition.run(
            batch_parameters={"dataframe": frame},
            run_id=run_id,
            result_format={"result_format": "COMPLETE", "partial_unexpected_count": 5},
        )
        if not self.docs_dir:
            return result, None
        return result, self._build_docs_page(self.docs_dir, table_name, suite_name, run_id)

    def _build_docs_page(self, docs_dir: Path, table_name: str, suite_name: str, run_id: Any) -> str | None:
        """Render this result's page (and the index) into the site; return the page's path."""
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )

        result_id = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
            run_id=run_id,
            batch_identifier=f"{self._source.name}-{table_name}",
        )
        docs_dir.mkdir(parents=True, exist_ok=True)
        with open(docs_dir / ".build.lock", "w") as lock:  # tasks of one interval run in parallel
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=[result_id])
        urls = self.context.get_docs_sites_urls(resource_identifier=result_id, site_name=DOCS_SITE)
        page = urls[0]["site_url"] if urls else None
        return unquote(page.removeprefix("file://")) if page else None
