"""Airflow local settings for `make run` (copied to $AIRFLOW_HOME/config/ by scripts/run.sh).

LocalExecutor task processes are forked from the scheduler, so modules imported by the
scheduler process are inherited by every task. Importing the heavy libraries here, only in
the scheduler, saves each validation task ~10 s of Great Expectations import (measured).
Other Airflow processes (API server, DAG processor, CLI) are unaffected.
"""

import sys

if sys.argv[1:2] == ["scheduler"]:
    import logging

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations
    import great_expectations.expectations  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import sqlalchemy  # noqa: F401
