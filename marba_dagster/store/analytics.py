"""Reads and writes of the analytics collector: ``content_posts``, ``post_metrics``,
``account_metrics`` and ``brand_daily_metrics`` (SQLAlchemy Core, both databases).

The collector (``services.analytics``), the ``analytics`` assets and their checks reach
these tables only through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.core.analytics import COUNT_COLUMNS
from marba_dagster.store import schema
from marba_dagster.store.db import upsert

# The platforms the collector reads posts and followers from.
COLLECTED_PLATFORMS = ("facebook", "instagram", "x")
# Posts looked up per statement (bound parameters stay well under both databases' caps).
LOOKUP_CHUNK = 500
POST_UPDATE_COLUMNS = ["body", "format", "published_at", "permalink", "collected_at"]
FOLLOWER_COLUMNS = ["brand_id", "platform", "metric_date", "followers"]


# ------------------------------------------------------------------- collection


def collected_accounts(conn: Connection, brand_id: str) -> list[dict]:
    """The brand's active accounts on the collected platforms that need no reconnection
    (id, platform, external_account_id, access_token), by platform."""
    pa = schema.platform_accounts
    rows = conn.execute(
        sa.select(pa.c.id, pa.c.platform, pa.c.external_account_id, pa.c.access_token)
        .where(
            pa.c.brand_id == brand_id,
            pa.c.platform.in_(COLLECTED_PLATFORMS),
            pa.c.is_active.is_(True),
            pa.c.needs_reconnect.is_(False),
        )
        .order_by(pa.c.platform)
    ).mappings()
    return [dict(r) for r in rows]


def upsert_posts(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or refresh posts by (platform, external id); a post keeps its row id."""
    return upsert(
        conn, schema.content_posts, rows, ["platform", "external_post_id"], POST_UPDATE_COLUMNS
    )


def post_owners(conn: Connection, platform: str, external_ids: Sequence[str]) -> dict[str, tuple]:
    """``{external id: (row id, brand id)}`` of the stored posts of ``platform``."""
    cp = schema.content_posts
    out: dict[str, tuple] = {}
    for start in range(0, len(external_ids), LOOKUP_CHUNK):
        chunk = list(external_ids[start : start + LOOKUP_CHUNK])
        for ext, pid, owner in conn.execute(
            sa.select(cp.c.external_post_id, cp.c.id, cp.c.brand_id).where(
                cp.c.platform == platform, cp.c.external_post_id.in_(chunk)
            )
        ):
            out[ext] = (pid, owner)
    return out


def upsert_post_metrics(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """One snapshot per post and day: a day collected again replaces its snapshot."""
    return upsert(conn, schema.post_metrics, rows, ["post_id", "metric_date"])


def upsert_followers(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    return upsert(conn, schema.account_metrics, rows, ["brand_id", "platform", "metric_date"])


# ------------------------------------------------------------------ daily metrics


def posts_with_latest_metrics(
    conn: Connection, brand_ids: Sequence[str], start: datetime, end: datetime
) -> pd.DataFrame:
    """The brands' posts published in [start, end) with their latest metrics snapshot
    (brand_id, platform, published_at and ``COUNT_COLUMNS``)."""
    cp, pm = schema.content_posts, schema.post_metrics
    latest = (
        sa.select(pm.c.post_id, sa.func.max(pm.c.metric_date).label("d"))
        .join(cp, cp.c.id == pm.c.post_id)
        .where(
            cp.c.brand_id.in_(list(brand_ids)), cp.c.published_at >= start, cp.c.published_at < end
        )
        .group_by(pm.c.post_id)
        .subquery()
    )
    q = sa.select(
        cp.c.brand_id, cp.c.platform, cp.c.published_at, *[pm.c[c] for c in COUNT_COLUMNS]
    ).select_from(
        cp.join(latest, latest.c.post_id == cp.c.id).join(
            pm, sa.and_(pm.c.post_id == latest.c.post_id, pm.c.metric_date == latest.c.d)
        )
    )
    rows = conn.execute(q).all()
    return pd.DataFrame(rows, columns=["brand_id", "platform", "published_at", *COUNT_COLUMNS])


def follower_history(conn: Connection, brand_id: str, first: date, last: date) -> pd.DataFrame:
    """The brand's follower counts from ``first`` to ``last`` (both included)."""
    am = schema.account_metrics
    rows = conn.execute(
        sa.select(*[am.c[c] for c in FOLLOWER_COLUMNS]).where(
            am.c.brand_id == brand_id, am.c.metric_date >= first, am.c.metric_date <= last
        )
    ).all()
    return pd.DataFrame(rows, columns=FOLLOWER_COLUMNS)


def upsert_daily_metrics(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    return upsert(conn, schema.brand_daily_metrics, rows, ["brand_id", "platform", "metric_date"])


# ------------------------------------------------------------------------ checks


def negative_counts(conn: Connection) -> tuple[int, int]:
    """(post_metrics rows with a negative count, account_metrics rows with negative
    followers)."""
    pm, am = schema.post_metrics, schema.account_metrics
    bad_posts = conn.execute(
        sa.select(sa.func.count())
        .select_from(pm)
        .where(sa.or_(*[pm.c[c] < 0 for c in COUNT_COLUMNS]))
    ).scalar_one()
    bad_accounts = conn.execute(
        sa.select(sa.func.count()).select_from(am).where(am.c.followers < 0)
    ).scalar_one()
    return int(bad_posts), int(bad_accounts)


def duplicate_counts(conn: Connection, since: date) -> tuple[int, int]:
    """((post, date) pairs since ``since`` with more than one snapshot, (platform, external
    id) pairs with more than one post)."""
    pm, cp = schema.post_metrics, schema.content_posts
    dup_metrics = conn.execute(
        sa.select(sa.func.count()).select_from(
            sa.select(pm.c.post_id, pm.c.metric_date)
            .where(pm.c.metric_date >= since)
            .group_by(pm.c.post_id, pm.c.metric_date)
            .having(sa.func.count() > 1)
            .subquery()
        )
    ).scalar_one()
    dup_posts = conn.execute(
        sa.select(sa.func.count()).select_from(
            sa.select(cp.c.platform, cp.c.external_post_id)
            .group_by(cp.c.platform, cp.c.external_post_id)
            .having(sa.func.count() > 1)
            .subquery()
        )
    ).scalar_one()
    return int(dup_metrics), int(dup_posts)


def daily_metrics_since(conn: Connection, since: date) -> pd.DataFrame:
    """Every ``brand_daily_metrics`` row from ``since`` on."""
    bdm = schema.brand_daily_metrics
    return pd.DataFrame(
        conn.execute(sa.select(bdm).where(bdm.c.metric_date >= since)).mappings().all()
    )
