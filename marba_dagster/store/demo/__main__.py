"""Benchmark / manual entry point: ``python -m marba_dagster.store.demo --url URL``."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from . import __doc__ as _package_doc
from .loader import seed_demo


def main(argv: list[str] | None = None) -> int:
    """Benchmark / manual entry point: ``python -m marba_dagster.store.demo --url URL``."""
    from .. import migrate
    from ..db import make_engine

    ap = argparse.ArgumentParser(
        prog="python -m marba_dagster.store.demo", description=_package_doc.splitlines()[0]
    )
    ap.add_argument("--url", default=None, help="database URL (default: MARBA_DATABASE_URL)")
    ap.add_argument("--brands", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--now", default=None, help="ISO UTC timestamp (default: this hour)")
    ap.add_argument("--replace", action="store_true")
    ap.add_argument("--no-upgrade", action="store_true", help="do not run the migrations first")
    args = ap.parse_args(argv)
    engine = make_engine(args.url)
    if not args.no_upgrade:
        migrate.upgrade(engine)
    now = datetime.fromisoformat(args.now) if args.now else None
    if now is not None and now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    report = seed_demo(
        engine, args.brands, seed=args.seed, now=now, days=args.days, replace=args.replace
    )
    engine.dispose()
    print(report.summary())
    print(json.dumps(report.as_dict()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
