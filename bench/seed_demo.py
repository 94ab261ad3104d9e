"""Scenario `seed_demo`: demo data for N brands, against the database's own ingest floor.

Figures: seconds to seed N brands (generation + writing) on SQLite and PostgreSQL, and the
floor measured in the same run: the database copying exactly the rows just seeded into a
fresh schema with its native bulk path (SQLite ``INSERT … SELECT`` across an attached
file, PostgreSQL ``COPY … TO STDOUT`` into ``COPY … FROM STDIN``). The ratio says how far
seeding is from the fastest the database can take those rows. The issue's own target, well
under a minute for 1,000 brands, is checked too.

    python -m bench.seed_demo --brands 1000
"""

from __future__ import annotations

import argparse
import io
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from bench.harness import Scenario, measure
from marba_dagster.store import migrate
from marba_dagster.store.db import make_engine
from marba_dagster.store.demo import seed_demo
from marba_dagster.store.schema import metadata

NOW = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def _sqlite_floor(src: Path, tmp: Path) -> float:
    dst = tmp / "floor.db"
    e = make_engine(f"sqlite:///{dst}")
    migrate.upgrade(e)
    e.dispose()
    e = make_engine(f"sqlite:///{src}")
    with measure() as m:
        with e.begin() as conn:
            conn.exec_driver_sql(f"ATTACH DATABASE '{dst}' AS floor")
            for t in metadata.sorted_tables:
                conn.exec_driver_sql(f'INSERT INTO floor."{t.name}" SELECT * FROM main."{t.name}"')
        with e.connect() as conn:
            conn.exec_driver_sql("DETACH DATABASE floor")
    e.dispose()
    return m.seconds


def _pg_db() -> str:
    name = f"marba_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


def _pg_drop(url: str) -> None:
    admin = make_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


def _pg_floor(src_url: str) -> float:
    dst_url = _pg_db()
    try:
        dst = make_engine(dst_url)
        migrate.upgrade(dst)
        src = make_engine(src_url)
        with measure() as m:
            s_raw, d_raw = src.raw_connection(), dst.raw_connection()
            try:
                sc, dc = s_raw.cursor(), d_raw.cursor()
                for t in metadata.sorted_tables:
                    buf = io.StringIO()
                    sc.copy_expert(f'COPY "{t.name}" TO STDOUT', buf)
                    buf.seek(0)
                    dc.copy_expert(f'COPY "{t.name}" FROM STDIN', buf)
                d_raw.commit()
            finally:
                s_raw.close()
                d_raw.close()
        src.dispose()
        dst.dispose()
        return m.seconds
    finally:
        _pg_drop(dst_url)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--brands", type=int, default=200)
    ap.add_argument("--skip-postgres", action="store_true")
    args = ap.parse_args(argv)
    sc = Scenario("seed_demo", size={"brands": args.brands})
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        src = tmp / "seed.db"
        e = make_engine(f"sqlite:///{src}")
        migrate.upgrade(e)
        with measure() as m:
            report = seed_demo(e, args.brands, seed=7, now=NOW)
        e.dispose()
        sc.figure("rows", report.total_rows)
        sc.figure("sqlite_seed_seconds", m.seconds)
        sc.figure("sqlite_peak_rss_mb", m.peak_rss_mb)
        floor = sc.figure("sqlite_floor_seconds", _sqlite_floor(src, tmp))
        sc.ratio("sqlite_seed_vs_floor", m.seconds, floor, limit=8.0)
        sc.limit("sqlite_seed_seconds_per_1000_brands", m.seconds * 1000 / args.brands, limit=60)
    if not args.skip_postgres:
        url = _pg_db()
        try:
            e = make_engine(url)
            migrate.upgrade(e)
            with measure() as m:
                seed_demo(e, args.brands, seed=7, now=NOW)
            e.dispose()
            sc.figure("postgres_seed_seconds", m.seconds)
            floor = sc.figure("postgres_floor_seconds", _pg_floor(url))
            sc.ratio("postgres_seed_vs_floor", m.seconds, floor, limit=3.0)
            sc.limit(
                "postgres_seed_seconds_per_1000_brands", m.seconds * 1000 / args.brands, limit=60
            )
        finally:
            _pg_drop(url)
    sc.note("floor = the database copying the same rows with its native bulk path, same run")
    sc.save()
    return 0 if sc.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
