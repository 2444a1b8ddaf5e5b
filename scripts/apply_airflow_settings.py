"""Apply airflow_settings.yaml (Astro CLI format) to the Airflow metadata database.

Usage: python scripts/apply_airflow_settings.py [airflow_settings.yaml]

Upserts every connection, pool and variable in one process (the `airflow connections|pools|
variables import` commands would cost ~5 s each). Safe to run again: existing entries with
the same id are overwritten, others are left alone. A connection defined in the environment
(AIRFLOW_CONN_<ID>, e.g. the server profile's flights_source) is not written: Airflow reads the
environment before the database, so a database copy would only show a connection nobody uses.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from include.airflow_glue.settings_file import AirflowSettings, load_settings_file
from include.core.settings import PROJECT_DIR


def apply(settings: AirflowSettings) -> list[str]:
    from airflow.models.connection import Connection
    from airflow.models.pool import Pool
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from sqlalchemy import select

    done = []
    with create_session() as session:
        for spec in settings.connections:
            if os.environ.get(f"AIRFLOW_CONN_{spec.conn_id.upper()}"):
                done.append(f"connection {spec.conn_id}: skipped, AIRFLOW_CONN_{spec.conn_id.upper()} wins")
                continue
            if spec.uri:
                conn = Connection(conn_id=spec.conn_id, uri=spec.uri)
            else:
                conn = Connection(
                    conn_id=spec.conn_id,
                    conn_type=spec.conn_type,
                    host=spec.host,
                    schema=spec.schema,
                    login=spec.login,
                    password=spec.password,
                    port=spec.port,
                    extra=json.dumps(spec.extra) if spec.extra else None,
                )
            existing = session.scalar(select(Connection.id).where(Connection.conn_id == spec.conn_id))
            if existing is not None:
                conn.id = existing
            session.merge(conn)
            done.append(f"connection {spec.conn_id} ({spec.conn_type})")
        for pool in settings.pools:
            Pool.create_or_update_pool(
                pool.name, pool.slots, pool.description, include_deferred=False, session=session
            )
            done.append(f"pool {pool.name} ({pool.slots} slots)")
        for var in settings.variables:
            Variable.set(var.key, var.value, session=session)
            done.append(f"variable {var.key}")
    return done


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else PROJECT_DIR / "airflow_settings.yaml"
    for line in apply(load_settings_file(path)):
        print(f"applied {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
