"""Command line of the demo source: `python -m include.source.demo {ensure,build,info}`.

ensure  build the SQLite source unless an up-to-date one exists (what `make source` runs)
build   rebuild into any SQLAlchemy URL (e.g. a PostgreSQL database you own)
info    print the replay metadata of a built source
"""

from __future__ import annotations

import argparse
import json
import logging
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
    url = args.url or f"sqlite:///{settings.source_db_path}"
    started = time.perf_counter()
    if args.command == "info":
        info = read_replay_info(sa.create_engine(url))
        print(json.dumps(info, indent=2) if info else f"no demo source at {url}")
        return 0 if info else 1
    if args.command == "ensure":
        if not url.startswith("sqlite:///"):
            parser.error("ensure works on the SQLite default; use `build --url` for other databases")
        info, reason = ensure_sqlite_source(settings.source_db_path, params)
        if reason is None:
            print(f"source up to date: {settings.source_db_path} (offset {info['offset_days']} days)")
            return 0
        print(f"built source ({reason}) in {time.perf_counter() - started:.1f} s: {settings.source_db_path}")
    else:
        info = build_source(sa.create_engine(url), params)
        print(f"built source in {time.perf_counter() - started:.1f} s: {url}")
    print(json.dumps(info, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
