"""Reads and writes of the engagement collector: the accounts and recent posts it asks the
platforms about, and ``engagement_inbox`` (SQLAlchemy Core, both databases).

The collector (``services.engagement``), the ``engagement`` asset and its check reach these
tables only through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.core import priority as prio_rules
from marba_dagster.core import sentiment as sentiment_rules
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert
from marba_dagster.store.quality import count_problems

# Columns a new collection may change; status (the app's) and notified_at are left alone.
UPDATE_COLUMNS = [
    "body",
    "author",
    "author_followers",
    "rating",
    "sentiment_score",
    "sentiment_label",
    "priority",
    "priority_score",
    "parent_external_id",
    "collected_at",
]


# ------------------------------------------------------------------- collection


def engagement_accounts(conn: Connection, brand_id: str) -> list[dict]:
    """The brand's active accounts with a token that need no reconnection (id, platform,
    external_account_id, access_token)."""
    pa = s.platform_accounts
    rows = conn.execute(
        sa.select(pa.c.id, pa.c.platform, pa.c.external_account_id, pa.c.access_token).where(
            pa.c.brand_id == brand_id,
            pa.c.is_active.is_(True),
            pa.c.needs_reconnect.is_(False),
            pa.c.access_token.is_not(None),
        )
    ).mappings()
    return [dict(r) for r in rows]


def recent_post_ids(
    conn: Connection, brand_id: str, platforms: Sequence[str], since: datetime, until: datetime
) -> dict[str, set[str]]:
    """``{platform: external post ids}`` of the brand's posts published in [since, until):
    those collected by analytics and those the publisher sent."""
    cp, sc = s.content_posts, s.scheduled_content
    posts: dict[str, set[str]] = {p: set() for p in platforms}
    for platform, ext in conn.execute(
        sa.select(cp.c.platform, cp.c.external_post_id).where(
            cp.c.brand_id == brand_id,
            cp.c.platform.in_(list(platforms)),
            cp.c.published_at >= since,
            cp.c.published_at < until,
        )
    ):
        posts[platform].add(ext)
    for platform, ext in conn.execute(
        sa.select(sc.c.platform, sc.c.external_post_id).where(
            sc.c.brand_id == brand_id,
            sc.c.platform.in_(list(platforms)),
            sc.c.status == "published",
            sc.c.external_post_id.is_not(None),
            sc.c.published_at >= since,
            sc.c.published_at < until,
        )
    ):
        posts[platform].add(ext)
    return posts


def upsert_items(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or refresh inbox items by (platform, external id); never their status or
    ``notified_at``."""
    return upsert(conn, s.engagement_inbox, rows, ["platform", "external_id"], UPDATE_COLUMNS)


def urgent_unnotified(conn: Connection, brand_id: str) -> list[dict]:
    """The brand's urgent items not yet notified, highest priority score first."""
    ei = s.engagement_inbox
    rows = conn.execute(
        sa.select(
            ei.c.id,
            ei.c.platform,
            ei.c.item_type,
            ei.c.external_id,
            ei.c.author,
            ei.c.body,
            ei.c.rating,
            ei.c.priority_score,
        )
        .where(
            ei.c.brand_id == brand_id,
            ei.c.priority == prio_rules.URGENT,
            ei.c.notified_at.is_(None),
        )
        .order_by(ei.c.priority_score.desc())
    ).mappings()
    return [dict(r) for r in rows]


def direct_message_counts(conn: Connection) -> dict[str, int]:
    """Direct messages in the inbox per platform (the demo's summary)."""
    ei = s.engagement_inbox
    rows = conn.execute(
        sa.select(ei.c.platform, sa.func.count())
        .where(ei.c.item_type == "direct_message")
        .group_by(ei.c.platform)
    ).all()
    return {platform: int(count) for platform, count in rows}


def mark_notified(conn: Connection, item_id: str, at: datetime) -> None:
    ei = s.engagement_inbox
    conn.execute(
        sa.update(ei).where(ei.c.id == item_id, ei.c.notified_at.is_(None)).values(notified_at=at)
    )


# ------------------------------------------------------------------------ checks

PROBLEM_EXAMPLES = 10
# Scores are stored rounded to 4 decimals; a label decided on the unrounded value may sit
# this close to a threshold on the other side.
LABEL_TOLERANCE = 1e-3


def inbox_problems(
    conn: Connection, since: datetime, examples: int = PROBLEM_EXAMPLES
) -> tuple[int, dict[str, int], list[dict]]:
    """(items checked, count per problem, examples) for the items collected since ``since``:
    a sentiment score outside [-1, 1], a sentiment label that is not the one its score
    implies, a priority that is not the band of its score, a rating outside 1..5."""
    ei = s.engagement_inbox
    score, label = ei.c.sentiment_score, ei.c.sentiment_label
    pscore, plabel = ei.c.priority_score, ei.c.priority
    pos, neg, tol = (
        sentiment_rules.POSITIVE_THRESHOLD,
        sentiment_rules.NEGATIVE_THRESHOLD,
        LABEL_TOLERANCE,
    )
    bands = dict(prio_rules.THRESHOLDS)
    problems = {
        "sentiment_out_of_range": sa.or_(score.is_(None), score < -1, score > 1),
        "sentiment_label_invalid": sa.or_(
            label.is_(None),
            label.not_in(sentiment_rules.LABELS),
            sa.and_(label == "positive", score < pos - tol),
            sa.and_(label == "negative", score > neg + tol),
            sa.and_(label == "neutral", sa.or_(score > pos + tol, score < neg - tol)),
        ),
        "priority_invalid": sa.or_(
            plabel.is_(None),
            plabel.not_in(s.INBOX_PRIORITIES),
            pscore.is_(None),
            pscore < 0,
            pscore > 1,
            sa.and_(plabel == prio_rules.URGENT, pscore < bands[prio_rules.URGENT] - tol),
            sa.and_(
                plabel == prio_rules.HIGH,
                sa.or_(
                    pscore < bands[prio_rules.HIGH] - tol, pscore > bands[prio_rules.URGENT] + tol
                ),
            ),
            sa.and_(
                plabel == prio_rules.NORMAL,
                sa.or_(
                    pscore < bands[prio_rules.NORMAL] - tol, pscore > bands[prio_rules.HIGH] + tol
                ),
            ),
            sa.and_(plabel == prio_rules.LOW, pscore > bands[prio_rules.NORMAL] + tol),
        ),
        "rating_out_of_range": sa.and_(
            ei.c.rating.is_not(None), sa.or_(ei.c.rating < 1, ei.c.rating > 5)
        ),
    }
    return count_problems(
        conn,
        [ei.c.collected_at >= since],
        problems,
        [ei.c.brand_id, ei.c.platform, ei.c.external_id, score, label, plabel, pscore],
        [ei.c.id],
        examples,
    )
