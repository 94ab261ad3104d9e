"""Reading the learning engine's inputs and writing its patterns (the engine's I/O).

Used by the ``learning_patterns`` asset, the Python API and the benchmark, so the three
learn exactly the same way. Patterns of a brand are replaced in one transaction per brand.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from marba_dagster.core.learning import LearningInput, learn_patterns, pattern_rows
from marba_dagster.store import schema as s
from marba_dagster.store.types import utcnow

# Patterns are learned from the posts of the last year (seasons included).
WINDOW_DAYS = 365
# Patterns of this many brands are replaced per transaction; if one fails, its brands are
# redone one by one, so a brand's failure never costs the others their results.
BRANDS_PER_TRANSACTION = 100
# Brands read and learned together. Every statistic (baselines, t-tests, the
# Benjamini-Hochberg family) is per brand and platform, so learning brands in slices gives
# the same patterns as all at once, with memory bounded by one slice's posts instead of
# growing with the number of brands.
BRANDS_PER_READ = 500
POST_FIELDS = [
    "brand_id",
    "platform",
    "post_id",
    "published_at",
    "format",
    "body",
    "impressions",
    "reach",
    "likes",
    "comments",
    "shares",
    "saves",
]


def posts_query(brand_ids: Sequence[str] | None, since: datetime) -> sa.Select:
    """Each post of the window with its latest metrics snapshot.

    The latest-snapshot subquery is restricted to the same posts (brands and window), so
    the database only reads the snapshots of the posts asked for, not all of post_metrics.
    """
    cp, pm = s.content_posts, s.post_metrics
    scope = [cp.c.published_at >= since]
    if brand_ids is not None:
        scope.append(cp.c.brand_id.in_(list(brand_ids)))
    latest = (
        sa.select(pm.c.post_id, sa.func.max(pm.c.metric_date).label("d"))
        .join(cp, cp.c.id == pm.c.post_id)
        .where(*scope)
        .group_by(pm.c.post_id)
        .subquery()
    )
    q = (
        sa.select(
            cp.c.brand_id,
            cp.c.platform,
            cp.c.id.label("post_id"),
            cp.c.published_at,
            cp.c.format,
            cp.c.body,
            pm.c.impressions,
            pm.c.reach,
            pm.c.likes,
            pm.c.comments,
            pm.c.shares,
            pm.c.saves,
        )
        .select_from(
            cp.join(latest, latest.c.post_id == cp.c.id).join(
                pm, sa.and_(pm.c.post_id == latest.c.post_id, pm.c.metric_date == latest.c.d)
            )
        )
        .where(*scope)
    )
    return q


CHUNK_ROWS = 100_000
_CATEGORICAL = ("brand_id", "platform", "format")
_COUNTS = ("impressions", "reach", "likes", "comments", "shares", "saves")


def _compact(rows: list, columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for c in _CATEGORICAL:
        df[c] = df[c].astype("category")
    for c in _COUNTS:
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0).astype("int64")
    df["published_at"] = pd.to_datetime(df["published_at"], utc=True)
    return df


def read_posts(conn: Connection, brand_ids: Sequence[str] | None, since: datetime) -> pd.DataFrame:
    """The posts with their latest metrics, streamed in chunks into compact dtypes
    (categories for ids, int64 counts), so a million posts stay well under a gigabyte."""
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(
        posts_query(brand_ids, since)
    )
    chunks = [_compact(part, POST_FIELDS) for part in result.partitions(CHUNK_ROWS)]
    if not chunks:
        return _compact([], POST_FIELDS)
    if len(chunks) == 1:
        return chunks[0]
    cats = {c: pd.api.types.union_categoricals([ch[c] for ch in chunks]) for c in _CATEGORICAL}
    df = pd.concat([ch.drop(columns=list(_CATEGORICAL)) for ch in chunks], ignore_index=True)
    for c in _CATEGORICAL:
        df[c] = cats[c]
    return df[POST_FIELDS]


def read_brand_inputs(conn: Connection, brand_ids: Sequence[str] | None) -> LearningInput:
    q = sa.select(s.brands.c.id, s.brands.c.timezone, s.brands.c.keywords)
    if brand_ids is not None:
        q = q.where(s.brands.c.id.in_(list(brand_ids)))
    tz, kw = {}, {}
    for bid, zone, keywords in conn.execute(q):
        tz[bid] = zone or "UTC"
        kw[bid] = [str(k) for k in keywords] if isinstance(keywords, list) else []
    return LearningInput(timezones=tz, keywords=kw)


def write_brand_patterns(conn: Connection, brand_id: str, rows: list[dict]) -> int:
    """Replace the brand's patterns (stale ones disappear) with ``rows``."""
    conn.execute(s.learning_patterns.delete().where(s.learning_patterns.c.brand_id == brand_id))
    for start in range(0, len(rows), 2000):
        conn.execute(s.learning_patterns.insert(), rows[start : start + 2000])
    return len(rows)


@dataclass
class LearningRun:
    brands: int
    posts: int
    patterns: pd.DataFrame
    written: int


def learn_and_store(
    engine: Engine,
    brand_ids: Sequence[str],
    *,
    now: datetime | None = None,
    window_days: int = WINDOW_DAYS,
    on_brand: Callable[[str, Callable[[], int]], int | None] | None = None,
) -> LearningRun:
    """Read the brands' posts and learn their patterns, ``BRANDS_PER_READ`` brands at a time,
    and replace each brand's patterns (many brands per transaction). ``on_brand(brand_id, work)`` runs ``work`` with per-brand isolation
    (``BrandBatch.run``); by default a failure propagates."""
    now = now or utcnow()
    since = now - timedelta(days=window_days)
    run_one = on_brand or (lambda _b, work: work())
    brand_ids = list(brand_ids)
    posts_read, written, found = 0, 0, []
    for start in range(0, len(brand_ids), BRANDS_PER_READ):
        part = brand_ids[start : start + BRANDS_PER_READ]
        with engine.connect() as conn:
            posts = read_posts(conn, part, since)
            inp = read_brand_inputs(conn, part)
        posts_read += len(posts)
        patterns = learn_patterns(posts, inp)
        del posts
        written += _store(engine, part, pattern_rows(patterns, now), on_brand, run_one)
        found.append(patterns)
    found = [p for p in found if not p.empty]
    patterns = (
        pd.concat(found, ignore_index=True)
        if len(found) > 1
        else (
            found[0]
            if found
            else learn_patterns(_compact([], POST_FIELDS), LearningInput(timezones={}, keywords={}))
        )
    )
    return LearningRun(len(brand_ids), posts_read, patterns, written)


def _store(engine: Engine, brand_ids: list[str], rows: list[dict], on_brand, run_one) -> int:
    """Replace the patterns of ``brand_ids`` with ``rows``, many brands per transaction."""
    by_brand: dict[str, list[dict]] = {b: [] for b in brand_ids}
    for r in rows:
        by_brand.setdefault(r["brand_id"], []).append(r)
    written = 0
    items = list(by_brand.items())
    for start in range(0, len(items), BRANDS_PER_TRANSACTION):
        chunk = items[start : start + BRANDS_PER_TRANSACTION]
        try:
            # Fast path: many brands in one transaction.
            with engine.begin() as conn:
                conn.execute(
                    s.learning_patterns.delete().where(
                        s.learning_patterns.c.brand_id.in_([b for b, _ in chunk])
                    )
                )
                batch_rows = [r for _, rs in chunk for r in rs]
                for i in range(0, len(batch_rows), 5000):
                    conn.execute(s.learning_patterns.insert(), batch_rows[i : i + 5000])
        except Exception:
            if on_brand is None and len(chunk) == 1:
                raise
            # Something in the chunk failed: nothing of it was written. Redo brand by brand
            # so only the brand at fault fails (and is reported by ``on_brand``).
            for brand_id, brand_rows in chunk:

                def work(b=brand_id, rs=brand_rows) -> int:
                    with engine.begin() as conn:
                        return write_brand_patterns(conn, b, rs)

                written += run_one(brand_id, work) or 0
            continue
        for brand_id, brand_rows in chunk:
            written += run_one(brand_id, lambda n=len(brand_rows): n) or 0
    return written
