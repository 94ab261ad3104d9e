"""The learning engine's work without Dagster: read the brands' posts, learn their
patterns (``core.learning``) and replace each brand's ``learning_patterns``.

Used by the ``learning/learning_patterns`` asset, the Python API and the benchmark, so the
three learn exactly the same way. Patterns of many brands are replaced per transaction; if
one fails, its brands are redone one by one, so a brand's failure never costs the others
their results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy.engine import Engine

from marba_dagster.core.learning import LearningInput, learn_patterns, pattern_rows
from marba_dagster.store import learning as store
from marba_dagster.store.types import utcnow

# Patterns are learned from the posts of the last year (seasons included).
WINDOW_DAYS = 365
# Patterns of this many brands are replaced per transaction.
BRANDS_PER_TRANSACTION = 100
# Brands read and learned together. Every statistic (baselines, t-tests, the
# Benjamini-Hochberg family) is per brand and platform, so learning brands in slices gives
# the same patterns as all at once, with memory bounded by one slice's posts instead of
# growing with the number of brands.
BRANDS_PER_READ = 500

# ``isolate(brand_id)``: a context around one brand's write in which its failure is
# recorded and not raised (``BrandBatch.brand``); a block that completes counts the brand.
Isolate = Callable[[str], AbstractContextManager]


@dataclass
class LearningRun:
    brands: int
    posts: int
    patterns: pd.DataFrame
    written: int


def _no_isolation(_brand_id: str) -> AbstractContextManager:
    return nullcontext()


def learn_and_store(
    engine: Engine,
    brand_ids: Sequence[str],
    *,
    now: datetime | None = None,
    window_days: int = WINDOW_DAYS,
    isolate: Isolate | None = None,
) -> LearningRun:
    """Read the brands' posts and learn their patterns, ``BRANDS_PER_READ`` brands at a time,
    and replace each brand's patterns (many brands per transaction). Each brand's write
    runs inside ``isolate(brand_id)`` (``BrandBatch.brand``); by default a failure
    propagates."""
    now = now or utcnow()
    since = now - timedelta(days=window_days)
    isolate = isolate or _no_isolation
    brand_ids = list(brand_ids)
    posts_read, written, found = 0, 0, []
    for start in range(0, len(brand_ids), BRANDS_PER_READ):
        part = brand_ids[start : start + BRANDS_PER_READ]
        with engine.connect() as conn:
            posts = store.read_posts(conn, part, since)
            inp = store.learning_inputs(conn, part)
        posts_read += len(posts)
        patterns = learn_patterns(posts, inp)
        del posts
        written += replace_patterns(engine, part, pattern_rows(patterns, now), isolate)
        found.append(patterns)
    found = [p for p in found if not p.empty]
    if len(found) > 1:
        patterns = pd.concat(found, ignore_index=True)
    elif found:
        patterns = found[0]
    else:
        patterns = learn_patterns(store.no_posts(), LearningInput(timezones={}, keywords={}))
    return LearningRun(len(brand_ids), posts_read, patterns, written)


def _replace(engine: Engine, brand_ids: list[str], rows: list[dict]) -> int:
    """Replace the patterns of ``brand_ids`` in one transaction; the rows written."""
    with engine.begin() as conn:
        return store.replace_patterns(conn, brand_ids, rows)


def replace_patterns(
    engine: Engine, brand_ids: list[str], rows: list[dict], isolate: Isolate | None = None
) -> int:
    """Replace the patterns of ``brand_ids`` with ``rows``, many brands per transaction; a
    brand whose patterns cannot be written fails alone (inside ``isolate(brand_id)``) and
    keeps its previous patterns. Returns the rows written."""
    isolate = isolate or _no_isolation
    by_brand: dict[str, list[dict]] = {b: [] for b in brand_ids}
    for r in rows:
        by_brand.setdefault(r["brand_id"], []).append(r)
    written = 0
    items = list(by_brand.items())
    for start in range(0, len(items), BRANDS_PER_TRANSACTION):
        chunk = items[start : start + BRANDS_PER_TRANSACTION]
        try:
            # Fast path: many brands in one transaction.
            _replace(engine, [b for b, _ in chunk], [r for _, rs in chunk for r in rs])
        except Exception:
            # Something in the chunk failed: nothing of it was written. Redo brand by brand
            # so only the brand at fault fails (and is recorded by ``isolate``).
            for brand_id, brand_rows in chunk:
                with isolate(brand_id):
                    written += _replace(engine, [brand_id], brand_rows)
            continue
        for brand_id, brand_rows in chunk:
            with isolate(brand_id):
                written += len(brand_rows)
    return written
