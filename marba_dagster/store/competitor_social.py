"""Queries of competitors' social activity: the brand's Instagram business account (whose
token Business Discovery uses) and ``competitor_social_snapshots``.

SQLAlchemy Core, both databases. ``services.competitor_social`` reaches these tables only
through here; the signals go through ``store.competitive.upsert_competitor_signals``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.store import schema
from marba_dagster.store.db import upsert

SNAPSHOT_COLUMNS = (
    "brand_id",
    "competitor_id",
    "platform",
    "account",
    "fetched_at",
    "followers",
    "post_count",
    "posts",
    "error",
    "run_id",
)


def instagram_business_account(conn: Connection, brand_id: str) -> dict[str, Any] | None:
    """The brand's active Instagram account with a token that needs no reconnection (id,
    external_account_id, access_token), the first by id; None without one."""
    accounts = schema.platform_accounts
    row = (
        conn.execute(
            sa.select(accounts.c.id, accounts.c.external_account_id, accounts.c.access_token)
            .where(
                accounts.c.brand_id == brand_id,
                accounts.c.platform == "instagram",
                accounts.c.is_active.is_(True),
                accounts.c.needs_reconnect.is_(False),
                accounts.c.access_token.is_not(None),
            )
            .order_by(accounts.c.id)
            .limit(1)
        )
        .mappings()
        .first()
    )
    return dict(row) if row else None


def earlier_posts(
    conn: Connection,
    competitor_id: str,
    platform: str,
    account: str,
    since: datetime,
    run_id: str | None,
) -> list[list[dict[str, Any]]]:
    """The ``posts`` of the account's good snapshots fetched since ``since``, newest first,
    but the run's own (a retried run compares with the runs before it)."""
    snapshots = schema.competitor_social_snapshots
    query = sa.select(snapshots.c.posts).where(
        snapshots.c.competitor_id == competitor_id,
        snapshots.c.platform == platform,
        snapshots.c.account == account,
        snapshots.c.fetched_at >= since,
        snapshots.c.error.is_(None),
    )
    if run_id is not None:
        query = query.where(sa.or_(snapshots.c.run_id.is_(None), snapshots.c.run_id != run_id))
    rows = conn.execute(query.order_by(snapshots.c.fetched_at.desc())).scalars()
    return [list(posts or []) for posts in rows]


def save_snapshots(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the snapshots, or replace a retried run's own (same id)."""
    return upsert(
        conn,
        schema.competitor_social_snapshots,
        list(rows),
        ["id"],
        [c for c in SNAPSHOT_COLUMNS if c not in ("brand_id", "competitor_id", "platform")],
    )


def snapshot_counts(conn: Connection) -> dict[str, int]:
    """Good snapshots per platform (the demo's summary)."""
    snapshots = schema.competitor_social_snapshots
    rows = conn.execute(
        sa.select(snapshots.c.platform, sa.func.count())
        .where(snapshots.c.error.is_(None))
        .group_by(snapshots.c.platform)
    ).all()
    return {platform: int(count) for platform, count in rows}


def social_signal_counts(conn: Connection) -> dict[str, int]:
    """Competitor signals from competitors' social accounts, per source (the demo's
    summary): ``{"competitor_instagram": n, "competitor_x": n}``."""
    signals = schema.intelligence_signals
    rows = conn.execute(
        sa.select(signals.c.source, sa.func.count())
        .where(
            signals.c.signal_type == "competitor",
            signals.c.source.in_(["competitor_instagram", "competitor_x"]),
        )
        .group_by(signals.c.source)
    ).all()
    return {source: int(count) for source, count in rows}
