"""Every query of the enrichment engine (SQLAlchemy Core, both databases).

Inputs: each section's input tables read for a batch of brands, one query per table per
chunk of ``CHUNK`` brands (a run over a thousand brands makes a handful of queries, not
thousands), as one frame with a ``brand_id`` column. State: ``enrichment_cache``,
``enrichment_schedule``, ``enrichment_logs`` and the AI spend in ``api_billing_tracker``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.core.learning import PATTERN_SUMMARY_COLUMNS
from marba_dagster.store import schema
from marba_dagster.store.db import upsert

CHUNK = 500
ERROR_CHARS = 2000
# The provider under which every model call is billed.
AI_PROVIDER = "llm"


def _chunks(ids: Sequence[str]):
    ids = list(ids)
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]


def _frame(
    conn: Connection, statement: Callable[..., sa.Select], ids: Sequence[str], *args: Any
) -> pd.DataFrame:
    """``statement(chunk, *args)`` for each chunk of ``ids``, as one frame."""
    parts = []
    for chunk in _chunks(ids):
        rows = conn.execute(statement(chunk, *args)).mappings().all()
        if rows:
            parts.append(pd.DataFrame([dict(r) for r in rows]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# ------------------------------------------------------------------------ section inputs

_DAILY_COLUMNS = (
    "brand_id",
    "platform",
    "metric_date",
    "posts",
    "impressions",
    "reach",
    "engagements",
    "clicks",
    "followers",
)


def _daily_statement(chunk: list[str], since: date) -> sa.Select:
    daily = schema.brand_daily_metrics
    return sa.select(*(daily.c[c] for c in _DAILY_COLUMNS)).where(
        daily.c.brand_id.in_(chunk), daily.c.metric_date > since
    )


def daily_metrics(conn: Connection, brand_ids: Sequence[str], since: date) -> pd.DataFrame:
    """``brand_daily_metrics`` after ``since``."""
    return _frame(conn, _daily_statement, brand_ids, since)


def _account_statement(chunk: list[str], since: date) -> sa.Select:
    account = schema.account_metrics
    return sa.select(
        account.c.brand_id, account.c.platform, account.c.metric_date, account.c.followers
    ).where(account.c.brand_id.in_(chunk), account.c.metric_date > since)


def account_followers(conn: Connection, brand_ids: Sequence[str], since: date) -> pd.DataFrame:
    """Followers per platform and day from ``account_metrics`` after ``since``."""
    return _frame(conn, _account_statement, brand_ids, since)


def _patterns_statement(chunk: list[str]) -> sa.Select:
    patterns = schema.learning_patterns
    return sa.select(*(patterns.c[c] for c in PATTERN_SUMMARY_COLUMNS)).where(
        patterns.c.brand_id.in_(chunk)
    )


def learning_patterns(conn: Connection, brand_ids: Sequence[str]) -> pd.DataFrame:
    return _frame(conn, _patterns_statement, brand_ids)


def active_brand_industries(conn: Connection, industries: Sequence[str]) -> dict[str, str]:
    """Active brands of ``industries``: brand id -> industry."""
    brands = schema.brands
    return dict(
        conn.execute(
            sa.select(brands.c.id, brands.c.industry).where(
                brands.c.industry.in_(list(industries)), brands.c.is_active.is_(True)
            )
        ).all()
    )


def _posts_statement(chunk: list[str], since: datetime) -> sa.Select:
    posts = schema.content_posts
    return sa.select(
        posts.c.brand_id, posts.c.id, posts.c.platform, posts.c.format, posts.c.published_at
    ).where(posts.c.brand_id.in_(chunk), posts.c.published_at > since)


def recent_posts(conn: Connection, brand_ids: Sequence[str], since: datetime) -> pd.DataFrame:
    """``content_posts`` published after ``since`` (no bodies)."""
    return _frame(conn, _posts_statement, brand_ids, since)


def _objectives_statement(chunk: list[str]) -> sa.Select:
    objectives = schema.brand_objectives
    return sa.select(
        objectives.c.brand_id,
        objectives.c.id,
        objectives.c.metric,
        objectives.c.platform,
        objectives.c.baseline_value,
        objectives.c.target_value,
        objectives.c.start_date,
        objectives.c.deadline,
    ).where(objectives.c.brand_id.in_(chunk))


def objectives(conn: Connection, brand_ids: Sequence[str]) -> pd.DataFrame:
    return _frame(conn, _objectives_statement, brand_ids)


def _competitors_statement(chunk: list[str]) -> sa.Select:
    competitors = schema.competitors
    return sa.select(
        competitors.c.brand_id,
        competitors.c.id,
        competitors.c.name,
        competitors.c.is_active,
        competitors.c.reachability,
    ).where(competitors.c.brand_id.in_(chunk))


def competitors(conn: Connection, brand_ids: Sequence[str]) -> pd.DataFrame:
    return _frame(conn, _competitors_statement, brand_ids)


def _gaps_statement(chunk: list[str]) -> sa.Select:
    gaps = schema.competitive_gaps
    return sa.select(
        gaps.c.brand_id,
        gaps.c.id,
        gaps.c.gap_type,
        gaps.c.gap_key,
        gaps.c.score,
        gaps.c.status,
    ).where(gaps.c.brand_id.in_(chunk))


def competitive_gaps(conn: Connection, brand_ids: Sequence[str]) -> pd.DataFrame:
    return _frame(conn, _gaps_statement, brand_ids)


def _competitor_signals_statement(chunk: list[str], since: datetime) -> sa.Select:
    signals = schema.intelligence_signals
    return sa.select(
        signals.c.brand_id,
        signals.c.id,
        signals.c.source,
        signals.c.title,
        signals.c.payload,
        signals.c.observed_at,
        signals.c.strength,
    ).where(
        signals.c.brand_id.in_(chunk),
        signals.c.signal_type == "competitor",
        signals.c.observed_at > since,
    )


def competitor_signals(conn: Connection, brand_ids: Sequence[str], since: datetime) -> pd.DataFrame:
    """Competitor signals observed after ``since``."""
    return _frame(conn, _competitor_signals_statement, brand_ids, since)


def _post_performance_statement(chunk: list[str], since: datetime) -> sa.Select:
    posts, metrics = schema.content_posts, schema.post_metrics
    # The latest snapshot of the chunk's recent posts only (not of all post_metrics).
    latest = (
        sa.select(metrics.c.post_id, sa.func.max(metrics.c.metric_date).label("d"))
        .join(posts, posts.c.id == metrics.c.post_id)
        .where(posts.c.brand_id.in_(chunk), posts.c.published_at > since)
        .group_by(metrics.c.post_id)
        .subquery()
    )
    return (
        sa.select(
            posts.c.brand_id,
            posts.c.id,
            posts.c.platform,
            posts.c.format,
            posts.c.body,
            posts.c.published_at,
            metrics.c.impressions,
            metrics.c.likes,
            metrics.c.comments,
            metrics.c.shares,
            metrics.c.saves,
            metrics.c.clicks,
        )
        .join(latest, latest.c.post_id == posts.c.id)
        .join(
            metrics,
            sa.and_(metrics.c.post_id == latest.c.post_id, metrics.c.metric_date == latest.c.d),
        )
        .where(posts.c.brand_id.in_(chunk), posts.c.published_at > since)
    )


def post_performance(conn: Connection, brand_ids: Sequence[str], since: datetime) -> pd.DataFrame:
    """Posts published after ``since`` with their latest metrics, one row per post."""
    return _frame(conn, _post_performance_statement, brand_ids, since)


def _inbox_statement(chunk: list[str], since: datetime) -> sa.Select:
    inbox = schema.engagement_inbox
    return sa.select(
        inbox.c.brand_id,
        inbox.c.id,
        inbox.c.platform,
        inbox.c.item_type,
        inbox.c.author,
        inbox.c.body,
        inbox.c.received_at,
        inbox.c.sentiment_score,
        inbox.c.sentiment_label,
        inbox.c.priority,
        inbox.c.priority_score,
        inbox.c.status,
    ).where(inbox.c.brand_id.in_(chunk), inbox.c.received_at > since)


def inbox_items(conn: Connection, brand_ids: Sequence[str], since: datetime) -> pd.DataFrame:
    """``engagement_inbox`` items received after ``since``."""
    return _frame(conn, _inbox_statement, brand_ids, since)


def _opportunities_statement(chunk: list[str], now: datetime) -> sa.Select:
    opportunities = schema.intelligence_opportunities
    return sa.select(
        opportunities.c.brand_id,
        opportunities.c.id,
        opportunities.c.opportunity_type,
        opportunities.c.title,
        opportunities.c.urgency,
        opportunities.c.score,
        opportunities.c.expires_at,
        opportunities.c.status,
    ).where(
        opportunities.c.brand_id.in_(chunk),
        opportunities.c.status == "active",
        sa.or_(opportunities.c.expires_at.is_(None), opportunities.c.expires_at > now),
    )


def active_opportunities(conn: Connection, brand_ids: Sequence[str], now: datetime) -> pd.DataFrame:
    """Active opportunities not expired at ``now``."""
    return _frame(conn, _opportunities_statement, brand_ids, now)


# ------------------------------------------------------------------- cache and schedule


def cache_entries(conn: Connection, section: str, brand_ids: Sequence[str]) -> dict[str, dict]:
    """The ``section`` entries of ``brand_ids`` (no payloads), by brand."""
    cache = schema.enrichment_cache
    rows = conn.execute(
        sa.select(
            cache.c.brand_id,
            cache.c.created_at,
            cache.c.expires_at,
            cache.c.input_fingerprint,
            cache.c.generated_by,
        ).where(cache.c.section == section, cache.c.brand_id.in_(list(brand_ids)))
    ).mappings()
    return {r["brand_id"]: dict(r) for r in rows}


def schedule_states(conn: Connection, section: str, brand_ids: Sequence[str]) -> dict[str, dict]:
    """The ``section`` rows of ``enrichment_schedule`` of ``brand_ids``, by brand."""
    schedule = schema.enrichment_schedule
    rows = conn.execute(
        sa.select(schedule).where(
            schedule.c.section == section, schedule.c.brand_id.in_(list(brand_ids))
        )
    ).mappings()
    return {r["brand_id"]: dict(r) for r in rows}


def cached_section(conn: Connection, brand_id: str, section: str) -> dict | None:
    """The whole cached entry (payload included), or None."""
    cache = schema.enrichment_cache
    row = (
        conn.execute(
            sa.select(cache).where(cache.c.brand_id == brand_id, cache.c.section == section)
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def store_entry(
    conn: Connection,
    brand_id: str,
    section: str,
    *,
    payload: dict,
    generated_by: str,
    fingerprint: str,
    created_at: datetime,
    expires_at: datetime,
) -> None:
    """Write a refreshed entry and schedule its next refresh at its expiry."""
    upsert(
        conn,
        schema.enrichment_cache,
        [
            {
                "brand_id": brand_id,
                "section": section,
                "payload": payload,
                "generated_by": generated_by,
                "input_fingerprint": fingerprint,
                "created_at": created_at,
                "expires_at": expires_at,
            }
        ],
        ["brand_id", "section"],
    )
    upsert(
        conn,
        schema.enrichment_schedule,
        [
            {
                "brand_id": brand_id,
                "section": section,
                "next_refresh_at": expires_at,
                "last_refreshed_at": created_at,
            }
        ],
        ["brand_id", "section"],
    )


def defer_refresh(conn: Connection, brand_id: str, section: str, until: datetime) -> None:
    """Keep an expired entry until ``until`` (budget throttling)."""
    upsert(
        conn,
        schema.enrichment_schedule,
        [{"brand_id": brand_id, "section": section, "next_refresh_at": until}],
        ["brand_id", "section"],
    )


def request_refresh(conn: Connection, brand_id: str, section: str, at: datetime) -> None:
    """Ask for a refresh of the entry, as the app does."""
    upsert(
        conn,
        schema.enrichment_schedule,
        [{"brand_id": brand_id, "section": section, "refresh_requested_at": at}],
        ["brand_id", "section"],
    )


def record_log(
    conn: Connection,
    brand_id: str,
    section: str,
    status: str,
    *,
    run_id: str | None,
    started_at: datetime,
    finished_at: datetime,
    generated_by: str | None = None,
    tokens: int = 0,
    cost_usd: Decimal = Decimal(0),
    error: str | None = None,
) -> None:
    """A row of ``enrichment_logs``: what happened to one (brand, section) in a run."""
    conn.execute(
        schema.enrichment_logs.insert().values(
            brand_id=brand_id,
            section=section,
            status=status,
            generated_by=generated_by,
            tokens=tokens,
            cost_usd=cost_usd,
            error=error[:ERROR_CHARS] if error else None,
            run_id=run_id,
            started_at=started_at,
            finished_at=finished_at,
        )
    )


def pending_refreshes(conn: Connection) -> list[dict]:
    """(brand, section) whose refresh the app requested, or another job invalidated, after
    the cached entry was made (or with no entry yet), for active brands."""
    schedule, cache, brands = (
        schema.enrichment_schedule,
        schema.enrichment_cache,
        schema.brands,
    )
    rows = (
        conn.execute(
            sa.select(
                schedule.c.brand_id,
                schedule.c.section,
                schedule.c.refresh_requested_at,
                schedule.c.invalidated_at,
                schedule.c.invalidated_reason,
                cache.c.created_at,
            )
            .select_from(
                schedule.join(brands, brands.c.id == schedule.c.brand_id).outerjoin(
                    cache,
                    sa.and_(
                        cache.c.brand_id == schedule.c.brand_id,
                        cache.c.section == schedule.c.section,
                    ),
                )
            )
            .where(
                brands.c.is_active.is_(True),
                sa.or_(
                    schedule.c.refresh_requested_at.is_not(None),
                    schedule.c.invalidated_at.is_not(None),
                ),
            )
            .order_by(schedule.c.brand_id, schedule.c.section)
        )
        .mappings()
        .all()
    )
    out = []
    for row in rows:
        made = row["created_at"]
        for trigger, at in (
            ("requested", row["refresh_requested_at"]),
            ("invalidated", row["invalidated_at"]),
        ):
            if at is not None and (made is None or at > made):
                out.append(
                    {
                        "brand_id": row["brand_id"],
                        "section": row["section"],
                        "trigger": trigger,
                        "at": at,
                        "reason": row["invalidated_reason"] if trigger == "invalidated" else None,
                    }
                )
                break
    return out


def entry_currency(
    conn: Connection, section: str, now: datetime, limit: int = 50
) -> dict[str, Any]:
    """Active brands without a current ``section`` entry: counts (``active``, ``missing``,
    ``expired``, ``deferred``: expired and waiting under budget throttling) and the first
    ``limit`` of them by id (``sample``: brand_id, state, expires_at)."""
    brands, cache, schedule = schema.brands, schema.enrichment_cache, schema.enrichment_schedule
    joined = brands.outerjoin(
        cache, sa.and_(cache.c.brand_id == brands.c.id, cache.c.section == section)
    ).outerjoin(
        schedule, sa.and_(schedule.c.brand_id == brands.c.id, schedule.c.section == section)
    )
    missing = cache.c.brand_id.is_(None)
    expired = sa.and_(cache.c.brand_id.is_not(None), cache.c.expires_at <= now)
    deferred = sa.and_(expired, schedule.c.next_refresh_at > now)
    totals = conn.execute(
        sa.select(sa.func.count(), _count(missing), _count(expired), _count(deferred))
        .select_from(joined)
        .where(brands.c.is_active.is_(True))
    ).one()
    rows = conn.execute(
        sa.select(brands.c.id, cache.c.expires_at)
        .select_from(joined)
        .where(brands.c.is_active.is_(True), sa.or_(missing, expired))
        .order_by(brands.c.id)
        .limit(limit)
    ).all()
    return {
        "active": int(totals[0]),
        "missing": int(totals[1]),
        "expired": int(totals[2]),
        "deferred": int(totals[3]),
        "sample": [
            {
                "brand_id": r[0],
                "state": "missing" if r[1] is None else "expired",
                "expires_at": r[1].isoformat() if r[1] is not None else None,
            }
            for r in rows
        ],
    }


def _count(condition) -> sa.ColumnElement:
    return sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0)


# ------------------------------------------------------------------------------ AI spend


def ai_spend(
    conn: Connection, brand_ids: Sequence[str], since: datetime
) -> tuple[dict[str, Any], Any]:
    """Model spend since ``since``: per brand of ``brand_ids``, and in all."""
    billing = schema.api_billing_tracker
    per_brand = (
        dict(
            conn.execute(
                sa.select(billing.c.brand_id, sa.func.coalesce(sa.func.sum(billing.c.cost_usd), 0))
                .where(
                    billing.c.provider == AI_PROVIDER,
                    billing.c.occurred_at >= since,
                    billing.c.brand_id.in_(list(brand_ids)),
                )
                .group_by(billing.c.brand_id)
            ).all()
        )
        if brand_ids
        else {}
    )
    total = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(billing.c.cost_usd), 0)).where(
            billing.c.provider == AI_PROVIDER, billing.c.occurred_at >= since
        )
    ).scalar()
    return per_brand, total


def record_ai_call(
    conn: Connection,
    brand_id: str,
    operation: str,
    *,
    model: str,
    input_tokens: int,
    output_tokens: int,
    cost_usd: Decimal,
    run_id: str | None,
    occurred_at: datetime,
) -> None:
    """A model call's tokens and cost in ``api_billing_tracker``."""
    conn.execute(
        schema.api_billing_tracker.insert().values(
            brand_id=brand_id,
            provider=AI_PROVIDER,
            operation=operation,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd,
            run_id=run_id,
            occurred_at=occurred_at,
        )
    )
