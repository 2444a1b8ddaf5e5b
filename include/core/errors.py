"""Data-contract errors: a failure that a retry cannot cure, because the task would read the same
source, partition or parameters again. include/airflow_glue/retry.py fails them at once.

They live here, apart from the stages that raise them, so the retry policy can name them when a
DAG file is parsed without importing those stages (pandas, SQLAlchemy, Great Expectations).
Each stage re-exports its own (include.source.extract.SourceSchemaError, ...).
"""

from __future__ import annotations


class ContractError(Exception):
    """Base of the errors that fail a task without a retry."""


class SourceSchemaError(ContractError, RuntimeError):
    """The source table's columns differ from those declared in include/source/dataset.py."""


class PartitionQuarantinedError(ContractError, RuntimeError):
    """A raw partition failed a blocking check and was quarantined (message: block_message)."""


class PartitionUnreadableError(ContractError, RuntimeError):
    """The raw partition cannot be read as parquet (truncated or corrupt file)."""


class CandidateSpecError(ContractError, ValueError):
    """A search-grid entry the project cannot build."""
