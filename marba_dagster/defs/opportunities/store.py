"""Reads and writes of the opportunity detector (SQLAlchemy Core, portable)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert

_NS = uuid.UUID("6f1c1d52-5a4e-4c53-9d0e-5b0f6c2a7e11")


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_NS, "\x1f".join(parts)))


def write_signals(
    conn: Connection, brand_id: str, signal_type: str, rows: Sequence[dict[str, Any]]
) -> int:
    """Upsert the brand's signals of one type by (brand, type, dedup key)."""
    full = []
    for r in rows:
        full.append(
            {
                "id": stable_id(brand_id, signal_type, r["dedup_key"]),
                "brand_id": brand_id,
                "signal_type": signal_type,
                "source": r["source"],
                "title": r["title"][:2000],
                "payload": r["payload"],
                "dedup_key": r["dedup_key"][:200],
                "observed_at": r["observed_at"],
                "valid_until": r["valid_until"],
                "strength": float(r["strength"]),
            }
        )
    return upsert(
        conn,
        s.intelligence_signals,
        full,
        ["brand_id", "signal_type", "dedup_key"],
        ["source", "title", "payload", "observed_at", "valid_until", "strength"],
    )


def withdraw_signals(
    conn: Connection, brand_id: str, signal_type: str, keep: Iterable[str], now: datetime
) -> int:
    """Signals of a fully re-computed source (weather, calendar) that are no longer there:
    valid until now, so their opportunities expire."""
    t = s.intelligence_signals
    keep = list(keep)
    cond = [
        t.c.brand_id == brand_id,
        t.c.signal_type == signal_type,
        sa.or_(t.c.valid_until.is_(None), t.c.valid_until > now),
    ]
    if keep:
        cond.append(t.c.dedup_key.not_in(keep))
    return conn.execute(sa.update(t).where(*cond).values(valid_until=now)).rowcount or 0


def current_signals(
    conn: Connection, brand_ids: Sequence[str], signal_type: str | None, since: datetime
) -> dict[str, list[dict]]:
    """Signals still valid after ``since`` (or with no end), per brand."""
    t = s.intelligence_signals
    q = sa.select(t).where(
        t.c.brand_id.in_(list(brand_ids)),
        sa.or_(t.c.valid_until.is_(None), t.c.valid_until > since),
    )
    if signal_type:
        q = q.where(t.c.signal_type == signal_type)
    out: dict[str, list[dict]] = {b: [] for b in brand_ids}
    for r in conn.execute(q.order_by(t.c.brand_id, t.c.observed_at)).mappings():
        out.setdefault(r["brand_id"], []).append(dict(r))
    return out


def decided_history(conn: Connection, brand_id: str, limit: int = 2000) -> list[tuple[dict, bool]]:
    """(model features, acted) of the brand's decided opportunities, newest first."""
    t = s.intelligence_opportunities
    rows = conn.execute(
        sa.select(t.c.status, t.c.evidence, t.c.opportunity_type, t.c.urgency, t.c.score)
        .where(t.c.brand_id == brand_id, t.c.status.in_(["acted", "dismissed", "expired"]))
        .order_by(t.c.updated_at.desc())
        .limit(limit)
    ).mappings()
    out = []
    for r in rows:
        ev = r["evidence"] or {}
        f = dict(ev.get("model_features") or {})
        f.setdefault("type", r["opportunity_type"])
        f.setdefault("urgency", r["urgency"])
        f.setdefault("score", r["score"])
        out.append((f, r["status"] == "acted"))
    return out


def save_opportunities(
    conn: Connection, brand_id: str, rows: Sequence[dict[str, Any]], now: datetime
) -> dict[str, int]:
    """Upsert by (brand, dedup key) — the same event stays one row — then expire what has
    passed or is no longer detected. Dismissed and acted rows keep their status."""
    t = s.intelligence_opportunities
    full = []
    for r in rows:
        full.append(
            {
                "id": stable_id(brand_id, r["dedup_key"]),
                "brand_id": brand_id,
                "opportunity_type": r["opportunity_type"],
                "title": r["title"],
                "description": r["description"],
                "urgency": r["urgency"],
                "score": r["score"],
                "predicted_score": r.get("predicted_score"),
                "detected_at": now,
                "updated_at": now,
                "expires_at": r["expires_at"],
                "status": "active",
                "dedup_key": r["dedup_key"],
                "evidence": r["evidence"],
                "suggested_actions": r["suggested_actions"],
            }
        )
    before = {k for (k,) in conn.execute(sa.select(t.c.dedup_key).where(t.c.brand_id == brand_id))}
    upsert(
        conn,
        t,
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
    keys = [r["dedup_key"] for r in full]
    revived = 0
    if keys:
        revived = (
            conn.execute(
                sa.update(t)
                .where(
                    t.c.brand_id == brand_id,
                    t.c.dedup_key.in_(keys),
                    t.c.status == "expired",
                    sa.or_(t.c.expires_at.is_(None), t.c.expires_at > now),
                )
                .values(status="active", updated_at=now)
            ).rowcount
            or 0
        )
    gone = [t.c.expires_at <= now]
    if keys:
        gone.append(t.c.dedup_key.not_in(keys))
    else:
        gone.append(sa.true())
    expired = (
        conn.execute(
            sa.update(t)
            .where(t.c.brand_id == brand_id, t.c.status == "active", sa.or_(*gone))
            .values(status="expired", updated_at=now)
        ).rowcount
        or 0
    )
    return {
        "inserted": len([k for k in keys if k not in before]),
        "updated": len([k for k in keys if k in before]),
        "expired": expired,
        "revived": revived,
    }


def pending_critical(conn: Connection, brand_id: str) -> list[dict]:
    t = s.intelligence_opportunities
    rows = conn.execute(
        sa.select(
            t.c.id, t.c.title, t.c.description, t.c.expires_at, t.c.dedup_key, t.c.score
        ).where(
            t.c.brand_id == brand_id,
            t.c.status == "active",
            t.c.urgency == "critical",
            t.c.notified_at.is_(None),
        )
    ).mappings()
    return [dict(r) for r in rows]
