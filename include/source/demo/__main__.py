"""Command line of the demo source: `python -m include.source.demo {ensure,build,info}`.

ensure  build the source unless an up-to-date one exists (what `make source` runs): the SQLite
        file by default, or the database of --url / --url-env (the server profile's PostgreSQL)
build   rebuild into any SQLAlchemy URL (e.g. a PostgreSQL database you own)
info    print the replay metadata of a built source

--url-env NAME reads the URL from the environment variable NAME, so a password in it never shows
in the process list (e.g. --url-env AIRFLOW_CONN_FLIGHTS_SOURCE, a postgresql:// URL).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import date

import sqlalchemy as sa

from include.core.clock import utc_now
from include.core.settings import get_settings
from include.source.demo.build import (
    BuildParams,
    build_source,
    ensure_sqlite_source,
    needs_rebuild,
    read_replay_info,
)


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(
        prog="python -m include.source.demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("command", choices=["ensure", "build", "info"])
    parser.add_argument("--url", help="SQLAlchemy URL (default: the SQLite file under MLOPS_DATA_DIR)")
    parser.add_argument("--url-env", metavar="NAME", help="read the SQLAlchemy URL from this variable")
    parser.add_argument(
        "--today",
        type=date.fromisoformat,
        help="day that maps onto the replay anchor (default: the clock's today)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    params = BuildParams(
        anchor=settings.replay_anchor,
        today=args.today or utc_now(settings.clock_now).date(),
        scale_factor=settings.scale_factor,
        reporting_lag_hours=settings.reporting_lag_hours,
        schedule_lead_hours=settings.schedule_lead_hours,
    )
    if args.url_env and not os.environ.get(args.url_env):
        parser.error(f"--url-env {args.url_env}: the variable is not set")
    url = args.url or (os.environ[args.url_env] if args.url_env else f"sqlite:///{settings.source_db_path}")
    shown = sa.make_url(url).render_as_string(hide_password=True)
    started = time.perf_counter()
    if args.command == "info":
        info = read_replay_info(sa.create_engine(url))
        print(json.dumps(info, indent=2) if info else f"no demo source at {shown}")
        return 0 if info else 1
    if args.command == "ensure" and url == f"sqlite:///{settings.source_db_path}":
        info, reason = ensure_sqlite_source(settings.source_db_path, params)
        if reason is None:
            print(f"source up to date: {settings.source_db_path} (offset {info['offset_days']} days)")
            return 0
        print(f"built source ({reason}) in {time.perf_counter() - started:.1f} s: {settings.source_db_path}")
    elif args.command == "ensure":
        engine = sa.create_engine(url)
        try:
            current = read_replay_info(engine)
            reason = needs_rebuild(current, params)
            if reason is None:
                assert current is not None
                print(f"source up to date: {shown} (offset {current['offset_days']} days)")
                return 0
            info = build_source(engine, params)
        finally:
            engine.dispose()
        print(f"built source ({reason}) in {time.perf_counter() - started:.1f} s: {shown}")
    else:
        info = build_source(sa.create_engine(url), params)
        print(f"built source in {time.perf_counter() - started:.1f} s: {shown}")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
