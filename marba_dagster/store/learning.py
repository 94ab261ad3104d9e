"""Reads and writes of the learning engine: its inputs (posts with their latest metrics,
brands' timezones and keywords) and ``learning_patterns`` (SQLAlchemy Core, both
databases).

The engine (``services.learning``), the ``learning`` asset and check, the Python API and the
benchmark reach these tables only through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.core.learning import (
    ALPHA,
    MIN_RECOMMEND_CONFIDENCE,
    POST_COLUMNS,
    POWER_WORDS,
    WEEKDAYS,
    LearningInput,
)
from marba_dagster.store import schema
from marba_dagster.store.quality import count_problems

POST_FIELDS = list(POST_COLUMNS)  # the learning engine's input, in its order
CHUNK_ROWS = 100_000
INSERT_CHUNK = 5000
_CATEGORICAL = ("brand_id", "platform", "format")
_COUNTS = ("impressions", "reach", "likes", "comments", "shares", "saves")


# ------------------------------------------------------------------------ inputs


def posts_query(brand_ids: Sequence[str] | None, since: datetime) -> sa.Select:
    """Each post of the window with its latest metrics snapshot.

    The latest-snapshot subquery is restricted to the same posts (brands and window), so
    the database only reads the snapshots of the posts asked for, not all of post_metrics.
    """
    cp, pm = schema.content_posts, schema.post_metrics
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
    return (
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


def _compact(rows: list, columns: list[str]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for c in _CATEGORICAL:
        df[c] = df[c].astype("category")
    for c in _COUNTS:
        df[c] = pd.to_numeric(df[c], errors="coerce").fillna(0).astype("int64")
    df["published_at"] = pd.to_datetime(df["published_at"], utc=True)
    return df


def no_posts() -> pd.DataFrame:
    """An empty frame of ``read_posts``' columns and dtypes."""
    return _compact([], POST_FIELDS)


def read_posts(conn: Connection, brand_ids: Sequence[str] | None, since: datetime) -> pd.DataFrame:
    """The posts with their latest metrics, streamed in chunks into compact dtypes
    (categories for ids, int64 counts), so a million posts stay well under a gigabyte."""
    result = conn.execution_options(stream_results=True, yield_per=CHUNK_ROWS).execute(
        posts_query(brand_ids, since)
    )
    chunks = [_compact(part, POST_FIELDS) for part in result.partitions(CHUNK_ROWS)]
    if not chunks:
        return no_posts()
    if len(chunks) == 1:
        return chunks[0]
    cats = {c: pd.api.types.union_categoricals([ch[c] for ch in chunks]) for c in _CATEGORICAL}
    df = pd.concat([ch.drop(columns=list(_CATEGORICAL)) for ch in chunks], ignore_index=True)
    for c in _CATEGORICAL:
        df[c] = cats[c]
    return df[POST_FIELDS]


def learning_inputs(conn: Connection, brand_ids: Sequence[str] | None) -> LearningInput:
    """The brands' timezones (UTC when unset) and keywords."""
    q = sa.select(schema.brands.c.id, schema.brands.c.timezone, schema.brands.c.keywords)
    if brand_ids is not None:
        q = q.where(schema.brands.c.id.in_(list(brand_ids)))
    tz, kw = {}, {}
    for bid, zone, keywords in conn.execute(q):
        tz[bid] = zone or "UTC"
        kw[bid] = [str(k) for k in keywords] if isinstance(keywords, list) else []
    return LearningInput(timezones=tz, keywords=kw)


def brand_timezone(conn: Connection, brand_id: str) -> str:
    """The timezone the brand's posting-time patterns are expressed in (UTC when unset)."""
    tz = conn.execute(
        sa.select(schema.brands.c.timezone).where(schema.brands.c.id == brand_id)
    ).scalar()
    return tz or "UTC"


# ---------------------------------------------------------------------- patterns


def replace_patterns(
    conn: Connection, brand_ids: Sequence[str], rows: Sequence[dict[str, Any]]
) -> int:
    """Replace the patterns of ``brand_ids`` with ``rows`` (stale ones disappear)."""
    lp = schema.learning_patterns
    conn.execute(lp.delete().where(lp.c.brand_id.in_(list(brand_ids))))
    for start in range(0, len(rows), INSERT_CHUNK):
        conn.execute(lp.insert(), list(rows[start : start + INSERT_CHUNK]))
    return len(rows)


def brand_patterns(
    conn: Connection, brand_id: str, platform: str | None = None, pattern_type: str | None = None
) -> list[dict[str, Any]]:
    """The brand's patterns, by platform, type and lift (highest first)."""
    lp = schema.learning_patterns
    q = sa.select(lp).where(lp.c.brand_id == brand_id)
    if platform:
        q = q.where(lp.c.platform == platform)
    if pattern_type:
        q = q.where(lp.c.pattern_type == pattern_type)
    q = q.order_by(lp.c.platform, lp.c.pattern_type, lp.c.lift.desc())
    return [dict(r) for r in conn.execute(q).mappings()]


def recommendable_patterns(
    conn: Connection, brand_id: str, platform: str | None = None
) -> list[dict[str, Any]]:
    """The brand's patterns that may be recommended: confidence above
    ``MIN_RECOMMEND_CONFIDENCE``, a lift above 1 and an adjusted p-value under ``ALPHA``."""
    lp = schema.learning_patterns
    q = sa.select(lp).where(
        lp.c.brand_id == brand_id,
        lp.c.confidence > MIN_RECOMMEND_CONFIDENCE,
        lp.c.lift > 1.0,
        lp.c.p_value.is_not(None),
        lp.c.p_value < ALPHA,
    )
    if platform:
        q = q.where(lp.c.platform == platform)
    return [dict(r) for r in conn.execute(q).mappings()]


# ------------------------------------------------------------------------ checks

PROBLEM_EXAMPLES = 10
_HOUR = "([01][0-9]|2[0-3])"
# The form of each pattern type's keys: hours ``18`` or ``tue-18``, ``#tag``, a trimmed topic.
TIME_KEY = f"^(({'|'.join(WEEKDAYS)})-)?{_HOUR}$"
HASHTAG_KEY = r"^#[^\s#]+$"
TRIMMED_KEY = r"^\S(.*\S)?$"


def pattern_problems(
    conn: Connection, since: datetime, examples: int = PROBLEM_EXAMPLES
) -> tuple[int, dict[str, int], list[dict]]:
    """(patterns checked, count per problem, examples) for the patterns computed since
    ``since``: confidence not the tier of its data points (100+ -> 0.9, 30-99 -> 0.7,
    10-29 -> 0.5, else 0.3), a negative lift (0 is a pattern whose posts had no engagement at
    all), data points not positive, p-value outside [0, 1], and
    keys not of their type's form (hours ``18`` or ``tue-18``, a post format, ``#tag``, a
    known power word, a trimmed topic)."""
    lp = schema.learning_patterns
    tier = sa.case(
        (lp.c.data_points >= 100, 0.9),
        (lp.c.data_points >= 30, 0.7),
        (lp.c.data_points >= 10, 0.5),
        else_=0.3,
    )
    key, kind = lp.c.pattern_key, lp.c.pattern_type
    problems = {
        "confidence_not_its_tier": sa.func.abs(lp.c.confidence - tier) > 1e-9,
        "lift_negative": lp.c.lift < 0,
        "data_points_not_positive": lp.c.data_points < 1,
        "p_value_out_of_range": sa.and_(
            lp.c.p_value.is_not(None), sa.or_(lp.c.p_value < 0, lp.c.p_value > 1)
        ),
        "malformed_key": sa.or_(
            sa.and_(kind == "best_posting_time", sa.not_(key.regexp_match(TIME_KEY))),
            sa.and_(kind == "content_format", key.not_in(schema.POST_FORMATS)),
            sa.and_(kind == "hashtag", sa.not_(key.regexp_match(HASHTAG_KEY))),
            sa.and_(kind == "power_word", key.not_in(sorted(POWER_WORDS))),
            sa.and_(kind == "topic", sa.not_(key.regexp_match(TRIMMED_KEY))),
        ),
    }
    return count_problems(
        conn,
        [lp.c.computed_at >= since],
        problems,
        [
            lp.c.brand_id,
            lp.c.platform,
            lp.c.pattern_type,
            key,
            lp.c.lift,
            lp.c.data_points,
            lp.c.confidence,
            lp.c.p_value,
        ],
        [lp.c.brand_id, lp.c.platform, lp.c.pattern_type, key],
        examples,
    )
