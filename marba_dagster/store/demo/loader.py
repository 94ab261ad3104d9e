"""Writing the demo rows: one transaction per chunk of brands (the next chunk is generated in
a worker thread meanwhile), brands already present skipped or replaced, then ``ANALYZE``."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .. import schema as s
from ..types import UTCDateTime
from .generator import (
    DEFAULT_MEDIA_BASE_URL,
    DEFAULT_SITES_BASE_URL,
    TABLE_ORDER,
    brand_id,
    generate_brand,
    resolve_now,
)

DEFAULT_CHUNK_BRANDS = 50

# ------------------------------------------------------------------------------ the report


@dataclass
class SeedReport:
    """Rows written per table by one ``seed_demo`` call, and the brands skipped or replaced."""

    brands: int = 0
    competitors: int = 0
    platform_accounts: int = 0
    content_posts: int = 0
    post_metrics: int = 0
    account_metrics: int = 0
    scheduled_content: int = 0
    brand_objectives: int = 0
    skipped_brands: int = 0  # already present (same seed): left as they were
    replaced_brands: int = 0
    elapsed_seconds: float = 0.0

    @property
    def total_rows(self) -> int:
        return sum(getattr(self, t) for t in TABLE_ORDER)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        parts = ", ".join(f"{getattr(self, t):,} {t}" for t in TABLE_ORDER)
        extra = f"; {self.skipped_brands} brands already present" if self.skipped_brands else ""
        if self.replaced_brands:
            extra += f"; {self.replaced_brands} brands replaced"
        return f"seeded {parts} in {self.elapsed_seconds:.1f}s{extra}"


_TABLES = {name: s.metadata.tables[name] for name in TABLE_ORDER}

# ------------------------------------------------------------------------------ seeding


def _delete_brands(conn: Connection, ids: list[str]) -> None:
    """Remove these brands and every row that refers to them (not relying on ON DELETE)."""
    posts = s.metadata.tables["content_posts"]
    sched = s.metadata.tables["scheduled_content"]
    comps = s.metadata.tables["competitors"]
    for table in reversed(s.metadata.sorted_tables):
        if table.name == "brands":
            continue
        for fk in table.foreign_keys:
            ref = fk.column.table
            col = fk.parent
            if ref is posts:
                conn.execute(
                    table.delete().where(
                        col.in_(sa.select(posts.c.id).where(posts.c.brand_id.in_(ids)))
                    )
                )
            elif ref is sched:
                conn.execute(
                    table.delete().where(
                        col.in_(sa.select(sched.c.id).where(sched.c.brand_id.in_(ids)))
                    )
                )
            elif ref is comps:
                conn.execute(
                    table.delete().where(
                        col.in_(sa.select(comps.c.id).where(comps.c.brand_id.in_(ids)))
                    )
                )
        if "brand_id" in table.c:
            conn.execute(table.delete().where(table.c.brand_id.in_(ids)))
    brands = s.metadata.tables["brands"]
    conn.execute(brands.delete().where(brands.c.id.in_(ids)))


# Bulk writing. The generic path is Core's executemany (``conn.execute(table.insert(),
# rows)``). On SQLite and PostgreSQL the rows are instead converted once to exactly what
# the column types would bind (SQLite: the DATETIME/DATE text SQLAlchemy stores, JSON text;
# PostgreSQL: COPY text format) and handed to the driver in one call per table and chunk:
# the same stored values, several times faster. A test checks both paths store the same.


def _sqlite_converter(col: sa.Column):
    typ = col.type
    if isinstance(typ, UTCDateTime):
        return lambda v: None if v is None else v.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(typ, sa.JSON):
        return lambda v: None if v is None else json.dumps(v)
    if isinstance(typ, sa.DateTime):
        raise TypeError(f"{col}: use UTCDateTime")
    if isinstance(typ, sa.Date):
        return lambda v: None if v is None else v.isoformat()
    return None  # the driver's own adaptation matches SQLAlchemy's for str, int, float, bool


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _pg_converter(col: sa.Column):
    typ = col.type
    if isinstance(typ, UTCDateTime):
        return lambda v: "\\N" if v is None else v.astimezone(UTC).isoformat()
    if isinstance(typ, sa.JSON):
        return lambda v: "\\N" if v is None else json.dumps(v).translate(_COPY_ESCAPES)
    if isinstance(typ, sa.Boolean):
        return lambda v: "\\N" if v is None else ("t" if v else "f")
    if isinstance(typ, (sa.String, sa.Text)):
        return lambda v: "\\N" if v is None else v.translate(_COPY_ESCAPES)
    if isinstance(typ, sa.Date):
        return lambda v: "\\N" if v is None else v.isoformat()
    return lambda v: "\\N" if v is None else str(v)


@dataclass
class _Payload:
    """One table's rows for one chunk, already in the form the driver takes."""

    table: sa.Table
    count: int
    rows: list[dict[str, Any]] | None = None  # Core path
    sql: str | None = None  # SQLite: INSERT ... VALUES (?, ...)
    tuples: list[tuple] | None = None
    copy_sql: str | None = None  # PostgreSQL: COPY ... FROM STDIN
    copy_text: str | None = None


def _prepare(
    dialect: sa.engine.Dialect, table: sa.Table, rows: list[dict[str, Any]], fast: bool
) -> _Payload:
    if not fast or dialect.name not in ("sqlite", "postgresql") or not rows:
        return _Payload(table, len(rows), rows=rows)
    columns = list(rows[0])
    if dialect.name == "sqlite":
        convs = [_sqlite_converter(table.c[c]) for c in columns]
        cols = [[r[c] for r in rows] for c in columns]
        cols = [
            col if f is None else [f(v) for v in col] for col, f in zip(cols, convs, strict=True)
        ]
        sql = str(table.insert().compile(dialect=dialect, column_keys=columns))
        return _Payload(table, len(rows), sql=sql, tuples=list(zip(*cols, strict=True)))
    convs = [_pg_converter(table.c[c]) for c in columns]
    cols = [[f(r[c]) for r in rows] for c, f in zip(columns, convs, strict=True)]
    text = "".join("\t".join(vals) + "\n" for vals in zip(*cols, strict=True))
    names = ", ".join(f'"{c}"' for c in columns)
    return _Payload(
        table, len(rows), copy_sql=f'COPY "{table.name}" ({names}) FROM STDIN', copy_text=text
    )


def _send(conn: Connection, payload: _Payload) -> None:
    if payload.count == 0:
        return
    if payload.rows is not None:
        conn.execute(payload.table.insert(), payload.rows)
    elif payload.sql is not None:
        conn.exec_driver_sql(payload.sql, payload.tuples)
    else:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.copy_expert(payload.copy_sql, io.StringIO(payload.copy_text))
        finally:
            cursor.close()


def seed_demo(
    engine: Engine,
    brands: int,
    seed: int = 42,
    now: datetime | None = None,
    days: int = 90,
    *,
    sites_base_url: str = DEFAULT_SITES_BASE_URL,
    media_base_url: str = DEFAULT_MEDIA_BASE_URL,
    replace: bool = False,
    chunk_brands: int = DEFAULT_CHUNK_BRANDS,
    fast: bool = True,
    progress: Callable[[int, int], None] | None = None,
    analyze: bool = True,
) -> SeedReport:
    """Write ``brands`` demo brands (indices 0..brands-1) for ``seed``; see the module doc.

    Brands already present are skipped (``replace=False``) or rewritten (``replace=True``).
    One transaction per chunk of ``chunk_brands`` brands; the next chunk is generated in a
    worker thread while the current one is written. ``fast=False`` writes through Core's
    executemany instead of the driver-level bulk path (same stored values; slower).
    ``progress``, if given, is called with (brands done, brands total) after each chunk.
    ``analyze`` refreshes the planner statistics of the seeded tables afterwards (``ANALYZE``),
    as after any bulk load: without them PostgreSQL plans the jobs' queries blind until
    autovacuum gets to the tables (and never, where autovacuum is off).
    """
    if brands < 0:
        raise ValueError("brands must be >= 0")
    if seed < 0:
        raise ValueError("seed must be >= 0")
    if days < 1:
        raise ValueError("days must be >= 1")
    started = time.perf_counter()
    now = resolve_now(now)
    report = SeedReport()
    brands_t = _TABLES["brands"]
    dialect = engine.dialect
    step = max(1, chunk_brands)
    chunks = [list(range(lo, min(brands, lo + step))) for lo in range(0, brands, step)]

    def present_in(indices: list[int]) -> set[str]:
        ids = [brand_id(seed, i) for i in indices]
        with engine.connect() as conn:
            return set(
                conn.execute(sa.select(brands_t.c.id).where(brands_t.c.id.in_(ids))).scalars()
            )

    def build(indices: list[int]) -> list[_Payload]:
        rows: dict[str, list[dict[str, Any]]] = {t: [] for t in TABLE_ORDER}
        for i in indices:
            for t, r in generate_brand(
                seed, i, now=now, days=days, sites_base_url=sites_base_url,
                media_base_url=media_base_url,
            ).items():  # fmt: skip
                rows[t].extend(r)
        return [_prepare(dialect, _TABLES[t], rows[t], fast) for t in TABLE_ORDER]

    def submit(pool: ThreadPoolExecutor, k: int):
        present = present_in(chunks[k])
        todo = chunks[k] if replace else [i for i in chunks[k] if brand_id(seed, i) not in present]
        return present, pool.submit(build, todo)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="marba-demo") as pool:
        pending = submit(pool, 0) if chunks else None
        for k in range(len(chunks)):
            present, future = pending
            payloads = future.result()
            pending = submit(pool, k + 1) if k + 1 < len(chunks) else None
            with engine.begin() as conn:
                if present and replace:
                    _delete_brands(conn, sorted(present))
                for payload in payloads:
                    _send(conn, payload)
            if replace:
                report.replaced_brands += len(present)
            else:
                report.skipped_brands += len(present)
            for payload in payloads:
                setattr(
                    report, payload.table.name, getattr(report, payload.table.name) + payload.count
                )
            if progress is not None:
                progress(chunks[k][-1] + 1, brands)
    if analyze and chunks:
        analyze_tables(engine, list(_TABLES))
    report.elapsed_seconds = round(time.perf_counter() - started, 3)
    return report


def analyze_tables(engine: Engine, tables: list[str]) -> None:
    """``ANALYZE`` each table (PostgreSQL and SQLite both keep planner statistics)."""
    preparer = engine.dialect.identifier_preparer
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for name in tables:
            conn.exec_driver_sql(f"ANALYZE {preparer.quote(name)}")
