"""Queries of competitive monitoring: competitors, their snapshots, messaging shifts, gaps.

SQLAlchemy Core, both databases. The monitoring service reads and writes these tables only
through here; so does the ``competitors_reachable`` check.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.store import schema
from marba_dagster.store.db import upsert

# Every snapshot column but the key ones, so one executemany inserts rows of every kind
# (a page, a feed, a failed fetch).
SNAPSHOT_DEFAULTS: dict[str, Any] = {
    "status_code": None,
    "content_hash": None,
    "title": None,
    "meta_description": None,
    "headlines": [],
    "prices": [],
    "products": [],
    "feed_items": [],
    "positioning_text": None,
    "text": None,
    "error": None,
    "run_id": None,
    "blocks": None,
}


# ---------------------------------------------------------------------------- competitors


def active_competitors(
    conn: Connection, brand_ids: Sequence[str]
) -> dict[str, list[dict[str, Any]]]:
    """Each brand's active competitors (every column), by brand then id."""
    competitors = schema.competitors
    out: dict[str, list[dict[str, Any]]] = {b: [] for b in brand_ids}
    if not brand_ids:
        return out
    rows = conn.execute(
        sa.select(competitors)
        .where(competitors.c.brand_id.in_(list(brand_ids)), competitors.c.is_active.is_(True))
        .order_by(competitors.c.brand_id, competitors.c.id)
    ).mappings()
    for row in rows:
        out[row["brand_id"]].append(dict(row))
    return out


def set_reachability(
    conn: Connection,
    competitor_id: str,
    *,
    consecutive_failures: int,
    reachability: str,
    last_error: str | None,
    checked_at: datetime,
) -> None:
    """A competitor's reachability after a run: ``ok``, ``failing`` or ``unreachable``."""
    competitors = schema.competitors
    conn.execute(
        competitors.update()
        .where(competitors.c.id == competitor_id)
        .values(
            consecutive_failures=consecutive_failures,
            reachability=reachability,
            last_error=last_error,
            last_checked_at=checked_at,
        )
    )


def unreachable_competitors(conn: Connection, limit: int = 200) -> list[dict[str, Any]]:
    """Active competitors marked unreachable (id, brand, failures, last error), by id."""
    competitors = schema.competitors
    rows = conn.execute(
        sa.select(
            competitors.c.id,
            competitors.c.brand_id,
            competitors.c.consecutive_failures,
            competitors.c.last_error,
        )
        .where(competitors.c.is_active.is_(True), competitors.c.reachability == "unreachable")
        .order_by(competitors.c.id)
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]


# ------------------------------------------------------------------------------ snapshots


def run_snapshot_errors(conn: Connection, brand_id: str, run_id: str) -> list[tuple[str, Any]]:
    """(competitor id, error) of each snapshot an earlier attempt of ``run_id`` wrote."""
    snapshots = schema.competitive_intelligence_snapshots
    rows = conn.execute(
        sa.select(snapshots.c.competitor_id, snapshots.c.error).where(
            snapshots.c.brand_id == brand_id, snapshots.c.run_id == run_id
        )
    )
    return [(row[0], row[1]) for row in rows]


def delete_run_snapshots(conn: Connection, brand_id: str, run_id: str) -> None:
    snapshots = schema.competitive_intelligence_snapshots
    conn.execute(
        snapshots.delete().where(snapshots.c.brand_id == brand_id, snapshots.c.run_id == run_id)
    )


def recent_snapshots(
    conn: Connection,
    competitor_id: str,
    url: str,
    kind: str,
    limit: int,
    run_id: str | None = None,
) -> list[dict[str, Any]]:
    """Latest good snapshots first, from earlier runs only (never the run's own)."""
    snapshots = schema.competitive_intelligence_snapshots
    earlier = (
        sa.true()
        if run_id is None
        else sa.or_(snapshots.c.run_id.is_(None), snapshots.c.run_id != run_id)
    )
    rows = conn.execute(
        sa.select(
            snapshots.c.content_hash,
            snapshots.c.text,
            snapshots.c.prices,
            snapshots.c.products,
            snapshots.c.positioning_text,
            snapshots.c.feed_items,
            snapshots.c.fetched_at,
            snapshots.c.blocks,
        )
        .where(
            snapshots.c.competitor_id == competitor_id,
            snapshots.c.url == url,
            snapshots.c.kind == kind,
            snapshots.c.error.is_(None),
            earlier,
        )
        .order_by(snapshots.c.fetched_at.desc())
        .limit(limit)
    ).mappings()
    return [dict(row) for row in rows]


def latest_good_snapshot(
    conn: Connection, competitor_id: str, url: str, kind: str, since: datetime
) -> dict[str, Any] | None:
    """Headlines, positioning and feed items of the latest good snapshot since ``since``."""
    snapshots = schema.competitive_intelligence_snapshots
    row = (
        conn.execute(
            sa.select(snapshots.c.headlines, snapshots.c.positioning_text, snapshots.c.feed_items)
            .where(
                snapshots.c.competitor_id == competitor_id,
                snapshots.c.url == url,
                snapshots.c.kind == kind,
                snapshots.c.error.is_(None),
                snapshots.c.fetched_at >= since,
            )
            .order_by(snapshots.c.fetched_at.desc())
            .limit(1)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def insert_snapshots(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert snapshot rows of any kind (missing columns take ``SNAPSHOT_DEFAULTS``)."""
    if not rows:
        return 0
    conn.execute(
        schema.competitive_intelligence_snapshots.insert(),
        [{**SNAPSHOT_DEFAULTS, **row} for row in rows],
    )
    return len(rows)


# ----------------------------------------------------------------------------- page noise


def page_noise(conn: Connection, url_ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The learned noise masks of ``url_ids`` (url -> row id), by URL; unknown URLs absent."""
    noise = schema.competitive_page_noise
    if not url_ids:
        return {}
    by_id = {row_id: url for url, row_id in url_ids.items()}
    out: dict[str, dict[str, Any]] = {}
    ids = list(by_id)
    for start in range(0, len(ids), 500):
        rows = conn.execute(
            sa.select(noise.c.id, noise.c.mask).where(noise.c.id.in_(ids[start : start + 500]))
        )
        for row_id, mask in rows:
            out[by_id[row_id]] = mask or {}
    return out


def save_page_noise(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert masks by URL id (the caller merged what was learned with what was stored)."""
    if not rows:
        return 0
    return upsert(
        conn,
        schema.competitive_page_noise,
        list(rows),
        ["id"],
        ["mask", "loads", "updated_at"],
    )


# -------------------------------------------------------------------- signals and shifts


def upsert_competitor_signals(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """One row per event: the same signal seen again (a retried run) updates its row."""
    return upsert(
        conn,
        schema.intelligence_signals,
        list(rows),
        ["brand_id", "signal_type", "dedup_key"],
        ["title", "payload", "valid_until", "strength"],
    )


def upsert_messaging_shifts(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """By id: a retry's result replaces its own."""
    if not rows:
        return 0
    return upsert(conn, schema.messaging_shifts, list(rows), ["id"])


def invalidate_section(
    conn: Connection, brand_id: str, section: str, invalidated_at: datetime, reason: str
) -> None:
    """Ask enrichment to refresh the brand's ``section`` now (a significant change)."""
    upsert(
        conn,
        schema.enrichment_schedule,
        [
            {
                "brand_id": brand_id,
                "section": section,
                "invalidated_at": invalidated_at,
                "invalidated_reason": reason[:1000],
            }
        ],
        ["brand_id", "section"],
        ["invalidated_at", "invalidated_reason"],
    )


# ----------------------------------------------------------------------------------- gaps


def brand_profile(conn: Connection, brand_id: str) -> dict[str, Any] | None:
    """The brand's name, industry and keywords."""
    brands = schema.brands
    row = (
        conn.execute(
            sa.select(brands.c.name, brands.c.industry, brands.c.keywords).where(
                brands.c.id == brand_id
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def recent_post_bodies(
    conn: Connection, brand_id: str, since: datetime, limit: int = 2000
) -> list[str]:
    """The brand's own post texts published since ``since``, newest first."""
    posts = schema.content_posts
    rows = conn.execute(
        sa.select(posts.c.body)
        .where(posts.c.brand_id == brand_id, posts.c.published_at >= since)
        .order_by(posts.c.published_at.desc())
        .limit(limit)
    )
    return [row[0] for row in rows]


def brand_formats(conn: Connection, brand_id: str) -> set[str]:
    """Formats the brand has posted or scheduled."""
    posts = schema.content_posts
    scheduled = schema.scheduled_content
    formats = {
        row[0]
        for row in conn.execute(
            sa.select(posts.c.format).where(posts.c.brand_id == brand_id).distinct()
        )
    }
    formats |= {
        row[0]
        for row in conn.execute(
            sa.select(scheduled.c.format).where(scheduled.c.brand_id == brand_id).distinct()
        )
    }
    return formats


def brand_channels(conn: Connection, brand_id: str) -> set[str]:
    """Platforms the brand has an active account on."""
    accounts = schema.platform_accounts
    return {
        row[0]
        for row in conn.execute(
            sa.select(accounts.c.platform)
            .where(accounts.c.brand_id == brand_id, accounts.c.is_active.is_(True))
            .distinct()
        )
    }


def save_gaps(conn: Connection, brand_id: str, rows: Sequence[dict[str, Any]]) -> int:
    """Upsert the brand's gaps found now; its open gaps not among them are closed.
    Returns how many were closed."""
    gaps = schema.competitive_gaps
    upsert(
        conn,
        gaps,
        list(rows),
        ["brand_id", "gap_type", "gap_key"],
        ["score", "evidence", "detected_at", "status"],
    )
    current = {(row["gap_type"], row["gap_key"]) for row in rows}
    stale = [
        row["id"]
        for row in conn.execute(
            sa.select(gaps.c.id, gaps.c.gap_type, gaps.c.gap_key).where(
                gaps.c.brand_id == brand_id, gaps.c.status == "open"
            )
        ).mappings()
        if (row["gap_type"], row["gap_key"]) not in current
    ]
    if stale:
        conn.execute(gaps.update().where(gaps.c.id.in_(stale)).values(status="closed"))
    return len(stale)
