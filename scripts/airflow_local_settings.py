"""Airflow local settings for `make run` (copied to $AIRFLOW_HOME/config/ by scripts/run.sh and
scripts/run_server.sh).

Task processes are forked from the process that runs them: the scheduler under LocalExecutor,
each Celery worker under CeleryExecutor (the server profile). Modules imported there are
inherited by every task, so importing the heavy libraries here, only in that process, saves each
validation task ~10 s of Great Expectations import and each training, feature or scoring task ~5 s
of scikit-learn, MLflow and Feast (measured). Other Airflow processes (API
server, DAG processor, the scheduler under Celery, CLI) are unaffected.

The scheduler's and the triggerer's log servers (ports 8793/8794) are not started: Airflow 3.3
binds them to every interface and has no setting for their host. Local settings are imported
before the command line is parsed, so adding --skip-serve-logs here turns them off under
`airflow standalone` too. Task logs stay readable: the API server reads the log files of this
machine itself (LocalExecutor). MLOPS_AIRFLOW_LOG_SERVERS=on (include/core/runtime_env.py) starts
them again.
"""

import os
import sys


def skip_log_servers(argv: list[str], setting: str | None) -> list[str]:
    """`argv` with --skip-serve-logs added to `airflow scheduler` / `airflow triggerer`, unless the
    setting (MLOPS_AIRFLOW_LOG_SERVERS) is `on`."""
    if (setting or "off").lower() == "on" or argv[1:2] not in (["scheduler"], ["triggerer"]):
        return argv
    if "--skip-serve-logs" in argv or "-s" in argv:
        return argv
    return [*argv, "--skip-serve-logs"]


def forks_tasks(argv: list[str], executor: str | None) -> bool:
    """Whether this Airflow command is the process task processes are forked from."""
    if argv[1:3] == ["celery", "worker"]:
        return True
    return argv[1:2] == ["scheduler"] and (executor or "LocalExecutor") == "LocalExecutor"


sys.argv[:] = skip_log_servers(sys.argv, os.environ.get("MLOPS_AIRFLOW_LOG_SERVERS"))

if forks_tasks(sys.argv, os.environ.get("AIRFLOW__CORE__EXECUTOR")):
    import gc
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    # Validation: Great Expectations (~10 s a task otherwise). Training, registry, features and
    # scoring: scikit-learn, MLflow, Feast, skops, treelite (~5 s). None starts a thread at import,
    # which a fork would not carry over.
    import feast  # noqa: F401
    import great_expectations
    import great_expectations.expectations  # noqa: F401
    import mlflow  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sklearn.ensemble
    import sklearn.linear_model  # noqa: F401
    import skops.io  # noqa: F401
    import sqlalchemy  # noqa: F401
    import treelite.gtil  # noqa: F401

    # What is imported lives as long as the process: kept out of the collector's sight, a forked
    # task's collections do not touch (and so copy) the pages its parent shares with it.
    gc.collect()
    gc.freeze()
