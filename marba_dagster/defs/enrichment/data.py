"""Reading each section's inputs for a batch of brands (SQLAlchemy Core, portable).

One query per input table per section for the whole batch, split per brand afterwards, so a
run over a thousand brands makes a handful of queries, not thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.core.enrichment.analyzers import industry_kpis
from marba_dagster.core.enrichment.fingerprint import fingerprint
from marba_dagster.store import schema as s

CHUNK = 500
EMPTY = pd.DataFrame()


def _chunks(ids: Sequence[str]):
    ids = list(ids)
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def _frame(conn: Connection, stmt_for_chunk, ids: Sequence[str]) -> pd.DataFrame:
    parts = []
    for chunk in _chunks(ids):
        rows = conn.execute(stmt_for_chunk(chunk)).mappings().all()
        if rows:
            parts.append(pd.DataFrame([dict(r) for r in rows]))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _split(df: pd.DataFrame, brand_ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    if df.empty:
        return {b: EMPTY for b in brand_ids}
    groups = {k: g.reset_index(drop=True) for k, g in df.groupby("brand_id", sort=False)}
    return {b: groups.get(b, EMPTY) for b in brand_ids}


_DAILY_COLS = [
    s.brand_daily_metrics.c[c]
    for c in (
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
]
_PATTERN_COLS = [
    s.learning_patterns.c[c]
    for c in (
        "brand_id",
        "platform",
        "pattern_type",
        "pattern_key",
        "lift",
        "data_points",
        "confidence",
    )
]


def _daily(conn, ids, since) -> pd.DataFrame:
    t = s.brand_daily_metrics
    return _frame(
        conn,
        lambda c: sa.select(*_DAILY_COLS).where(t.c.brand_id.in_(c), t.c.metric_date > since),
        ids,
    )


def _account(conn, ids, since) -> pd.DataFrame:
    t = s.account_metrics
    return _frame(
        conn,
        lambda c: sa.select(t.c.brand_id, t.c.platform, t.c.metric_date, t.c.followers).where(
            t.c.brand_id.in_(c), t.c.metric_date > since
        ),
        ids,
    )


def _patterns(conn, ids) -> pd.DataFrame:
    t = s.learning_patterns
    return _frame(conn, lambda c: sa.select(*_PATTERN_COLS).where(t.c.brand_id.in_(c)), ids)


def load_section_inputs(
    conn: Connection,
    section: str,
    brands: dict[str, dict[str, Any]],
    now: datetime,
    peers: dict[str, tuple[str, pd.DataFrame]] | None = None,
) -> dict[str, tuple[dict[str, pd.DataFrame], str]]:
    """brand id -> (frames for the analyzer, input fingerprint).

    ``peers`` (industry -> (fingerprint, per-brand KPIs) of the industry's active brands)
    is filled as industries are first needed and reused by later calls, so a pass that reads
    its brands in slices loads each industry's peers once.
    """
    ids = list(brands)
    today = now.date()
    out: dict[str, tuple[dict[str, pd.DataFrame], str]] = {}
    if section == "measure":
        peers = {} if peers is None else peers
        since = today - timedelta(days=31)
        missing = sorted({b["industry"] for b in brands.values()} - set(peers))
        if missing:
            industry_of = dict(
                conn.execute(
                    sa.select(s.brands.c.id, s.brands.c.industry).where(
                        s.brands.c.industry.in_(missing), s.brands.c.is_active.is_(True)
                    )
                ).all()
            )
            daily = _daily(conn, sorted(industry_of), since)
            groups = (
                {
                    k: g.drop(columns=["industry"])
                    for k, g in daily.assign(industry=daily["brand_id"].map(industry_of)).groupby(
                        "industry", sort=False
                    )
                }
                if not daily.empty
                else {}
            )
            for ind in missing:
                frame = groups.get(ind, EMPTY)
                peers[ind] = (
                    fingerprint("measure-industry", {"daily": frame}),
                    industry_kpis(frame, today),
                )
        own_daily = _split(_daily(conn, ids, since), ids)
        account = _split(_account(conn, ids, since), ids)
        t = s.content_posts
        posts = _split(
            _frame(
                conn,
                lambda c: sa.select(
                    t.c.brand_id, t.c.id, t.c.platform, t.c.format, t.c.published_at
                ).where(t.c.brand_id.in_(c), t.c.published_at > now - timedelta(days=31)),
                ids,
            ),
            ids,
        )
        for b in ids:
            ind = brands[b]["industry"]
            industry_fp, peer_kpis = peers[ind]
            own = own_daily[b]
            frames = {
                "daily_metrics": own,
                "peer_kpis": peer_kpis,
                "account_metrics": account[b],
                "posts": posts[b],
            }
            fp = fingerprint(
                "measure",
                {"own_daily": own, "account": account[b], "posts": posts[b]},
                {"industry": ind, "peers": industry_fp},
            )
            out[b] = (frames, fp)
    elif section == "intend":
        t = s.brand_objectives
        objectives = _split(
            _frame(
                conn,
                lambda c: sa.select(
                    t.c.brand_id,
                    t.c.id,
                    t.c.metric,
                    t.c.platform,
                    t.c.baseline_value,
                    t.c.target_value,
                    t.c.start_date,
                    t.c.deadline,
                ).where(t.c.brand_id.in_(c)),
                ids,
            ),
            ids,
        )
        with_obj = [b for b in ids if not objectives[b].empty]
        daily = _split(_daily(conn, with_obj, today - timedelta(days=90)), ids)
        account = _split(_account(conn, with_obj, today - timedelta(days=90)), ids)
        for b in ids:
            frames = {
                "objectives": objectives[b],
                "daily_metrics": daily[b],
                "account_metrics": account[b],
            }
            out[b] = (frames, fingerprint("intend", frames))
    elif section == "reimagine":
        c_t, g_t, sig = s.competitors, s.competitive_gaps, s.intelligence_signals
        comps = _split(
            _frame(
                conn,
                lambda c: sa.select(
                    c_t.c.brand_id, c_t.c.id, c_t.c.name, c_t.c.is_active, c_t.c.reachability
                ).where(c_t.c.brand_id.in_(c)),
                ids,
            ),
            ids,
        )
        gaps = _split(
            _frame(
                conn,
                lambda c: sa.select(
                    g_t.c.brand_id,
                    g_t.c.id,
                    g_t.c.gap_type,
                    g_t.c.gap_key,
                    g_t.c.score,
                    g_t.c.status,
                ).where(g_t.c.brand_id.in_(c)),
                ids,
            ),
            ids,
        )
        sigs = _split(
            _frame(
                conn,
                lambda c: sa.select(
                    sig.c.brand_id,
                    sig.c.id,
                    sig.c.source,
                    sig.c.title,
                    sig.c.payload,
                    sig.c.observed_at,
                    sig.c.strength,
                ).where(
                    sig.c.brand_id.in_(c),
                    sig.c.signal_type == "competitor",
                    sig.c.observed_at > now - timedelta(days=30),
                ),
                ids,
            ),
            ids,
        )
        for b in ids:
            frames = {"competitors": comps[b], "gaps": gaps[b], "competitor_signals": sigs[b]}
            out[b] = (frames, fingerprint("reimagine", frames))
    elif section == "reach":
        patterns = _split(_patterns(conn, ids), ids)
        daily = _split(_daily(conn, ids, today - timedelta(days=31)), ids)
        for b in ids:
            frames = {"patterns": patterns[b], "daily_metrics": daily[b]}
            out[b] = (frames, fingerprint("reach", frames, {"timezone": brands[b].get("timezone")}))
    elif section == "optimize":
        patterns = _split(_patterns(conn, ids), ids)
        cp, pm = s.content_posts, s.post_metrics
        since = now - timedelta(days=60)

        def perf_stmt(c):
            # The latest snapshot of the chunk's recent posts only (not of all post_metrics).
            latest = (
                sa.select(pm.c.post_id, sa.func.max(pm.c.metric_date).label("d"))
                .join(cp, cp.c.id == pm.c.post_id)
                .where(cp.c.brand_id.in_(c), cp.c.published_at > since)
                .group_by(pm.c.post_id)
                .subquery()
            )
            return (
                sa.select(
                    cp.c.brand_id,
                    cp.c.id,
                    cp.c.platform,
                    cp.c.format,
                    cp.c.body,
                    cp.c.published_at,
                    pm.c.impressions,
                    pm.c.likes,
                    pm.c.comments,
                    pm.c.shares,
                    pm.c.saves,
                    pm.c.clicks,
                )
                .join(latest, latest.c.post_id == cp.c.id)
                .join(pm, sa.and_(pm.c.post_id == latest.c.post_id, pm.c.metric_date == latest.c.d))
                .where(cp.c.brand_id.in_(c), cp.c.published_at > since)
            )

        perf = _split(_frame(conn, perf_stmt, ids), ids)
        for b in ids:
            frames = {"patterns": patterns[b], "post_performance": perf[b]}
            out[b] = (frames, fingerprint("optimize", frames))
    elif section == "reflect":
        ib, op = s.engagement_inbox, s.intelligence_opportunities
        inbox = _split(
            _frame(
                conn,
                lambda c: sa.select(
                    ib.c.brand_id,
                    ib.c.id,
                    ib.c.platform,
                    ib.c.item_type,
                    ib.c.author,
                    ib.c.body,
                    ib.c.received_at,
                    ib.c.sentiment_score,
                    ib.c.sentiment_label,
                    ib.c.priority,
                    ib.c.priority_score,
                    ib.c.status,
                ).where(ib.c.brand_id.in_(c), ib.c.received_at > now - timedelta(days=30)),
                ids,
            ),
            ids,
        )
        opps = _split(
            _frame(
                conn,
                lambda c: sa.select(
                    op.c.brand_id,
                    op.c.id,
                    op.c.opportunity_type,
                    op.c.title,
                    op.c.urgency,
                    op.c.score,
                    op.c.expires_at,
                    op.c.status,
                ).where(
                    op.c.brand_id.in_(c),
                    op.c.status == "active",
                    sa.or_(op.c.expires_at.is_(None), op.c.expires_at > now),
                ),
                ids,
            ),
            ids,
        )
        for b in ids:
            frames = {"inbox": inbox[b], "opportunities": opps[b]}
            out[b] = (frames, fingerprint("reflect", frames))
    else:
        raise ValueError(f"unknown section {section!r}")
    return out


def entry_currency(
    conn: Connection, section: str, now: datetime, limit: int = 50
) -> dict[str, Any]:
    """Active brands without a current ``section`` entry: counts (``active``, ``missing``,
    ``expired``, ``deferred``: expired and waiting under budget throttling) and the first
    ``limit`` of them by id (``sample``: brand_id, state, expires_at)."""
    b, c, sch = s.brands, s.enrichment_cache, s.enrichment_schedule
    joined = b.outerjoin(c, sa.and_(c.c.brand_id == b.c.id, c.c.section == section)).outerjoin(
        sch, sa.and_(sch.c.brand_id == b.c.id, sch.c.section == section)
    )
    missing = c.c.brand_id.is_(None)
    expired = sa.and_(c.c.brand_id.is_not(None), c.c.expires_at <= now)
    deferred = sa.and_(expired, sch.c.next_refresh_at > now)

    def count(cond):
        return sa.func.coalesce(sa.func.sum(sa.case((cond, 1), else_=0)), 0)

    totals = conn.execute(
        sa.select(sa.func.count(), count(missing), count(expired), count(deferred))
        .select_from(joined)
        .where(b.c.is_active.is_(True))
    ).one()
    rows = conn.execute(
        sa.select(b.c.id, c.c.expires_at)
        .select_from(joined)
        .where(b.c.is_active.is_(True), sa.or_(missing, expired))
        .order_by(b.c.id)
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
