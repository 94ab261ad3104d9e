"""Queries of the opportunity detector: ``intelligence_signals`` and
``intelligence_opportunities``.

SQLAlchemy Core, both databases. The detector's service, its checks and the Python API
(``api.opportunities``) read and write these tables only through here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.store import schema
from marba_dagster.store.db import upsert
from marba_dagster.store.quality import count_problems
from marba_dagster.store.schema import COMPETITOR_CHANGE_TYPES

_NAMESPACE = uuid.UUID("6f1c1d52-5a4e-4c53-9d0e-5b0f6c2a7e11")
# The columns the Python API returns for an opportunity.
OPPORTUNITY_FIELDS = (
    "id",
    "brand_id",
    "opportunity_type",
    "title",
    "description",
    "urgency",
    "score",
    "predicted_score",
    "detected_at",
    "updated_at",
    "expires_at",
    "status",
    "dedup_key",
    "evidence",
    "suggested_actions",
)
DECIDED_STATUSES = ("acted", "dismissed", "expired")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join(parts)))


# -------------------------------------------------------------------------------- signals


def write_signals(
    conn: Connection, brand_id: str, signal_type: str, rows: Sequence[dict[str, Any]]
) -> int:
    """Upsert the brand's signals of one type by (brand, type, dedup key)."""
    full = [
        {
            "id": stable_id(brand_id, signal_type, row["dedup_key"]),
            "brand_id": brand_id,
            "signal_type": signal_type,
            "source": row["source"],
            "title": row["title"][:2000],
            "payload": row["payload"],
            "dedup_key": row["dedup_key"][:200],
            "observed_at": row["observed_at"],
            "valid_until": row["valid_until"],
            "strength": float(row["strength"]),
        }
        for row in rows
    ]
    return upsert(
        conn,
        schema.intelligence_signals,
        full,
        ["brand_id", "signal_type", "dedup_key"],
        ["source", "title", "payload", "observed_at", "valid_until", "strength"],
    )


def withdraw_signals(
    conn: Connection, brand_id: str, signal_type: str, keep: Iterable[str], now: datetime
) -> int:
    """Signals of a fully re-computed source (weather, calendar) that are no longer there:
    valid until now, so their opportunities expire."""
    signals = schema.intelligence_signals
    keep = list(keep)
    conditions = [
        signals.c.brand_id == brand_id,
        signals.c.signal_type == signal_type,
        sa.or_(signals.c.valid_until.is_(None), signals.c.valid_until > now),
    ]
    if keep:
        conditions.append(signals.c.dedup_key.not_in(keep))
    return conn.execute(sa.update(signals).where(*conditions).values(valid_until=now)).rowcount or 0


def current_signals(
    conn: Connection, brand_ids: Sequence[str], signal_type: str | None, since: datetime
) -> dict[str, list[dict]]:
    """Signals still valid after ``since`` (or with no end), per brand."""
    signals = schema.intelligence_signals
    query = sa.select(signals).where(
        signals.c.brand_id.in_(list(brand_ids)),
        sa.or_(signals.c.valid_until.is_(None), signals.c.valid_until > since),
    )
    if signal_type:
        query = query.where(signals.c.signal_type == signal_type)
    out: dict[str, list[dict]] = {b: [] for b in brand_ids}
    rows = conn.execute(query.order_by(signals.c.brand_id, signals.c.observed_at)).mappings()
    for row in rows:
        out.setdefault(row["brand_id"], []).append(dict(row))
    return out


def brand_signals(
    conn: Connection, brand_id: str, signal_type: str | None, now: datetime
) -> list[dict[str, Any]]:
    """The brand's signals still valid at ``now``, newest first."""
    signals = schema.intelligence_signals
    query = sa.select(signals).where(
        signals.c.brand_id == brand_id,
        sa.or_(signals.c.valid_until.is_(None), signals.c.valid_until > now),
    )
    if signal_type:
        query = query.where(signals.c.signal_type == signal_type)
    rows = conn.execute(query.order_by(signals.c.observed_at.desc())).mappings()
    return [dict(row) for row in rows]


def signal_problems(
    conn: Connection, signal_type: str, since: datetime, examples_limit: int = 10
) -> tuple[int, dict[str, int], list[dict]]:
    """(signals checked, count per problem key, examples) for the ``signal_type`` signals
    observed since ``since``: strength outside [0, 1], valid_until not after observed_at and,
    for competitor signals, a missing or unknown ``payload.change_type``."""
    signals = schema.intelligence_signals
    scope = [signals.c.signal_type == signal_type, signals.c.observed_at >= since]
    problems = {
        "strength_out_of_range": sa.or_(signals.c.strength < 0, signals.c.strength > 1),
        "valid_until_not_after_observed_at": sa.and_(
            signals.c.valid_until.is_not(None), signals.c.valid_until <= signals.c.observed_at
        ),
    }
    if signal_type == "competitor":
        change_type = signals.c.payload["change_type"].as_string()
        problems["unknown_change_type"] = sa.or_(
            change_type.is_(None), change_type.not_in(COMPETITOR_CHANGE_TYPES)
        )
    return count_problems(
        conn,
        scope,
        problems,
        [signals.c.id, signals.c.brand_id, signals.c.dedup_key, signals.c.strength],
        [signals.c.id],
        examples_limit,
    )


# -------------------------------------------------------------------------- opportunities


def decided_history(conn: Connection, brand_id: str, limit: int = 2000) -> list[tuple[dict, bool]]:
    """(model features, acted) of the brand's decided opportunities, newest first."""
    opportunities = schema.intelligence_opportunities
    rows = conn.execute(
        sa.select(
            opportunities.c.status,
            opportunities.c.evidence,
            opportunities.c.opportunity_type,
            opportunities.c.urgency,
            opportunities.c.score,
        )
        .where(
            opportunities.c.brand_id == brand_id,
            opportunities.c.status.in_(DECIDED_STATUSES),
        )
        .order_by(opportunities.c.updated_at.desc())
        .limit(limit)
    ).mappings()
    out = []
    for row in rows:
        evidence = row["evidence"] or {}
        features = dict(evidence.get("model_features") or {})
        features.setdefault("type", row["opportunity_type"])
        features.setdefault("urgency", row["urgency"])
        features.setdefault("score", row["score"])
        out.append((features, row["status"] == "acted"))
    return out


def save_opportunities(
    conn: Connection, brand_id: str, rows: Sequence[dict[str, Any]], now: datetime
) -> dict[str, int]:
    """Upsert by (brand, dedup key) — the same event stays one row — then expire what has
    passed or is no longer detected. Dismissed and acted rows keep their status."""
    opportunities = schema.intelligence_opportunities
    full = [
        {
            "id": stable_id(brand_id, row["dedup_key"]),
            "brand_id": brand_id,
            "opportunity_type": row["opportunity_type"],
            "title": row["title"],
            "description": row["description"],
            "urgency": row["urgency"],
            "score": row["score"],
            "predicted_score": row.get("predicted_score"),
            "detected_at": now,
            "updated_at": now,
            "expires_at": row["expires_at"],
            "status": "active",
            "dedup_key": row["dedup_key"],
            "evidence": row["evidence"],
            "suggested_actions": row["suggested_actions"],
        }
        for row in rows
    ]
    before = {
        key
        for (key,) in conn.execute(
            sa.select(opportunities.c.dedup_key).where(opportunities.c.brand_id == brand_id)
        )
    }
    upsert(
        conn,
        opportunities,
        full,
        ["brand_id", "dedup_key"],
        [
            "opportunity_type",
            "title",
            "description",
            "urgency",
            "score",
            "predicted_score",
            "updated_at",
            "expires_at",
            "evidence",
            "suggested_actions",
        ],
    )
    keys = [row["dedup_key"] for row in full]
    revived = 0
    if keys:
        revived = (
            conn.execute(
                sa.update(opportunities)
                .where(
                    opportunities.c.brand_id == brand_id,
                    opportunities.c.dedup_key.in_(keys),
                    opportunities.c.status == "expired",
                    sa.or_(opportunities.c.expires_at.is_(None), opportunities.c.expires_at > now),
                )
                .values(status="active", updated_at=now)
            ).rowcount
            or 0
        )
    gone = [opportunities.c.expires_at <= now]
    gone.append(opportunities.c.dedup_key.not_in(keys) if keys else sa.true())
    expired = (
        conn.execute(
            sa.update(opportunities)
            .where(
                opportunities.c.brand_id == brand_id,
                opportunities.c.status == "active",
                sa.or_(*gone),
            )
            .values(status="expired", updated_at=now)
        ).rowcount
        or 0
    )
    return {
        "inserted": len([key for key in keys if key not in before]),
        "updated": len([key for key in keys if key in before]),
        "expired": expired,
        "revived": revived,
    }


def pending_critical(conn: Connection, brand_id: str) -> list[dict]:
    """The brand's active critical opportunities no alert has been settled for yet."""
    opportunities = schema.intelligence_opportunities
    rows = conn.execute(
        sa.select(
            opportunities.c.id,
            opportunities.c.title,
            opportunities.c.description,
            opportunities.c.expires_at,
            opportunities.c.dedup_key,
            opportunities.c.score,
        ).where(
            opportunities.c.brand_id == brand_id,
            opportunities.c.status == "active",
            opportunities.c.urgency == "critical",
            opportunities.c.notified_at.is_(None),
        )
    ).mappings()
    return [dict(row) for row in rows]


def mark_notified(conn: Connection, opportunity_id: str, now: datetime) -> None:
    opportunities = schema.intelligence_opportunities
    conn.execute(
        sa.update(opportunities).where(opportunities.c.id == opportunity_id).values(notified_at=now)
    )


def count_invalid_active(conn: Connection, now: datetime, grace: timedelta) -> int:
    """Active opportunities with a score outside 0..1 or that expired more than ``grace``
    ago."""
    opportunities = schema.intelligence_opportunities
    return int(
        conn.execute(
            sa.select(sa.func.count())
            .select_from(opportunities)
            .where(
                opportunities.c.status == "active",
                sa.or_(
                    opportunities.c.score < 0,
                    opportunities.c.score > 1,
                    sa.and_(
                        opportunities.c.expires_at.is_not(None),
                        opportunities.c.expires_at <= now - grace,
                    ),
                ),
            )
        ).scalar_one()
    )


def active_opportunities(
    conn: Connection, brand_id: str, now: datetime, opportunity_type: str | None = None
) -> list[dict[str, Any]]:
    """The brand's active opportunities not yet expired at ``now`` (unsorted)."""
    opportunities = schema.intelligence_opportunities
    query = sa.select(*[opportunities.c[name] for name in OPPORTUNITY_FIELDS]).where(
        opportunities.c.brand_id == brand_id,
        opportunities.c.status == "active",
        sa.or_(opportunities.c.expires_at.is_(None), opportunities.c.expires_at > now),
    )
    if opportunity_type:
        query = query.where(opportunities.c.opportunity_type == opportunity_type)
    return [dict(row) for row in conn.execute(query).mappings()]


def opportunity(conn: Connection, opportunity_id: str) -> dict[str, Any] | None:
    opportunities = schema.intelligence_opportunities
    row = (
        conn.execute(
            sa.select(*[opportunities.c[name] for name in OPPORTUNITY_FIELDS]).where(
                opportunities.c.id == opportunity_id
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


def set_status(conn: Connection, opportunity_id: str, status: str, now: datetime) -> int:
    """A person's decision (``acted``, ``dismissed``); how many rows it changed (0 or 1)."""
    opportunities = schema.intelligence_opportunities
    return conn.execute(
        sa.update(opportunities)
        .where(opportunities.c.id == opportunity_id)
        .values(status=status, updated_at=now)
    ).rowcount
