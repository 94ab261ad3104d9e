"""Every query of the auto-publisher (SQLAlchemy Core, both databases): claiming due posts,
recording each outcome on ``scheduled_content`` and in ``publish_events``, and reading what
a run did and what waits for a person.

Each update of a claimed post is conditional on its ``claim_token`` (and status), so only
the attempt that holds the claim can record its outcome; callers learn from the row count
whether it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, RowMapping

from marba_dagster.store import schema

ERROR_CHARS = 2000
# Posts that need a person (``unknown``) or are being published, and those still waiting.
BACKLOG_STATUSES = ("scheduled", "unknown", "publishing")


def _of_brands(brand_ids: Sequence[str] | None) -> sa.ColumnElement[bool]:
    """Posts of ``brand_ids``, or of every active brand when ``None``."""
    posts = schema.scheduled_content
    if brand_ids is not None:
        return posts.c.brand_id.in_(list(brand_ids) or [""])
    active = sa.select(schema.brands.c.id).where(schema.brands.c.is_active.is_(True))
    return posts.c.brand_id.in_(active.scalar_subquery())


def record_event(
    conn: Connection,
    *,
    post_id: str,
    brand_id: str,
    platform: str,
    attempt: int,
    status: str,
    at: datetime,
    run_id: str | None,
    claim_token: str | None,
    external_post_id: str | None = None,
    error: str | None = None,
) -> None:
    """A row of ``publish_events``: a claim or an outcome of one post."""
    conn.execute(
        schema.publish_events.insert().values(
            scheduled_content_id=post_id,
            brand_id=brand_id,
            platform=platform,
            attempt=attempt,
            status=status,
            external_post_id=external_post_id,
            error=(error or None) and error[:ERROR_CHARS],
            claim_token=claim_token,
            run_id=run_id,
            occurred_at=at,
        )
    )


# ------------------------------------------------------------- before a run claims


def expired_leases(
    conn: Connection, now: datetime, brand_ids: Sequence[str] | None
) -> list[RowMapping]:
    """Posts left in ``publishing`` past their lease (id, brand_id, platform, attempts,
    claim_token, send_started_at)."""
    posts = schema.scheduled_content
    return (
        conn.execute(
            sa.select(
                posts.c.id,
                posts.c.brand_id,
                posts.c.platform,
                posts.c.attempts,
                posts.c.claim_token,
                posts.c.send_started_at,
            ).where(
                posts.c.status == "publishing",
                posts.c.lease_expires_at < now,
                _of_brands(brand_ids),
            )
        )
        .mappings()
        .all()
    )


def mark_lease_unknown(
    conn: Connection, post_id: str, claim_token: str | None, reason: str, now: datetime
) -> int:
    """An expired claim whose send had started becomes ``unknown`` (1), unless another
    attempt moved it first (0)."""
    posts = schema.scheduled_content
    return conn.execute(
        sa.update(posts)
        .where(
            posts.c.id == post_id,
            posts.c.status == "publishing",
            posts.c.claim_token == claim_token,
            posts.c.send_started_at.is_not(None),
        )
        .values(status="unknown", last_error=reason, lease_expires_at=None, updated_at=now)
    ).rowcount


def requeue_unsent(
    conn: Connection,
    post_id: str,
    claim_token: str | None,
    reason: str,
    now: datetime,
    *,
    give_up: bool,
) -> int:
    """An expired claim that never started sending: ``scheduled`` again, due at once (1), or
    ``failed`` when ``give_up`` (its attempts are spent); 0 if another attempt moved it or
    its send had started after all."""
    posts = schema.scheduled_content
    values: dict[str, Any] = (
        {"status": "failed", "next_attempt_at": None}
        if give_up
        else {"status": "scheduled", "next_attempt_at": now}
    )
    return conn.execute(
        sa.update(posts)
        .where(
            posts.c.id == post_id,
            posts.c.status == "publishing",
            posts.c.claim_token == claim_token,
            posts.c.send_started_at.is_(None),
        )
        .values(
            claim_token=None, lease_expires_at=None, last_error=reason, updated_at=now, **values
        )
    ).rowcount


def mark_send_started(conn: Connection, post_id: str, held_token: str, now: datetime) -> int:
    """Record durably that the claiming attempt is about to call the platform (1), if its
    claim still holds (0: the lease was lost, nothing must be sent)."""
    posts = schema.scheduled_content
    return conn.execute(
        sa.update(posts)
        .where(
            posts.c.id == post_id,
            posts.c.status == "publishing",
            posts.c.claim_token == held_token,
        )
        .values(send_started_at=sa.func.coalesce(posts.c.send_started_at, now), updated_at=now)
    ).rowcount


def posts_scheduled_before(
    conn: Connection, cutoff: datetime, brand_ids: Sequence[str] | None
) -> list[RowMapping]:
    """Scheduled posts due before ``cutoff`` (id, brand_id, platform, attempts,
    claim_token, scheduled_at)."""
    posts = schema.scheduled_content
    return (
        conn.execute(
            sa.select(
                posts.c.id,
                posts.c.brand_id,
                posts.c.platform,
                posts.c.attempts,
                posts.c.claim_token,
                posts.c.scheduled_at,
            ).where(
                posts.c.status == "scheduled",
                posts.c.scheduled_at < cutoff,
                _of_brands(brand_ids),
            )
        )
        .mappings()
        .all()
    )


def due_posts(
    conn: Connection,
    *,
    due_by: datetime,
    not_before: datetime,
    brand_ids: Sequence[str] | None,
) -> list[RowMapping]:
    """Scheduled posts due by ``due_by`` and not before ``not_before`` (id, brand_id,
    platform, attempts, claim_token, body, media_urls, format, publish_options): what a run may
    claim, checked against the platforms' rules first."""
    posts = schema.scheduled_content
    return (
        conn.execute(
            sa.select(
                posts.c.id,
                posts.c.brand_id,
                posts.c.platform,
                posts.c.attempts,
                posts.c.claim_token,
                posts.c.body,
                posts.c.media_urls,
                posts.c.format,
                posts.c.publish_options,
            ).where(
                posts.c.status == "scheduled",
                posts.c.scheduled_at <= due_by,
                posts.c.scheduled_at >= not_before,
                _of_brands(brand_ids),
            )
        )
        .mappings()
        .all()
    )


def fail_invalid(
    conn: Connection, post_id: str, reason: str, now: datetime, *, seen: RowMapping
) -> int:
    """A scheduled post breaking a platform rule fails (1), unless it moved, or its text or
    format were edited, since it was read (``seen``: the row then) (0). (A media edit in
    between is caught by the publisher's second check of the claimed row.)"""
    posts = schema.scheduled_content
    return conn.execute(
        sa.update(posts)
        .where(
            posts.c.id == post_id,
            posts.c.status == "scheduled",
            posts.c.body == seen["body"],
            posts.c.format == seen["format"],
        )
        .values(status="failed", last_error=reason, next_attempt_at=None, updated_at=now)
    ).rowcount


def fail_missed(conn: Connection, post_id: str, reason: str, now: datetime) -> int:
    """A scheduled post too late to go out fails (1), unless it moved first (0)."""
    posts = schema.scheduled_content
    return conn.execute(
        sa.update(posts)
        .where(posts.c.id == post_id, posts.c.status == "scheduled")
        .values(status="failed", last_error=reason, next_attempt_at=None, updated_at=now)
    ).rowcount


# ------------------------------------------------------------------------ claiming


def claim_next(
    conn: Connection,
    *,
    now: datetime,
    due_by: datetime,
    not_before: datetime,
    brand_ids: Sequence[str] | None,
    exclude_platforms: Sequence[str],
    token: str,
    lease_expires_at: datetime,
) -> RowMapping | None:
    """Claim the most overdue due post (scheduled at or before ``due_by`` and not before
    ``not_before``, its next attempt due, its platform not excluded): status
    ``publishing``, ``token``, the lease, ``attempts + 1``. The claimed row (id, brand_id,
    platform, body, media_urls, format, publish_options, attempts, scheduled_at) or None.

    PostgreSQL picks with ``SELECT ... FOR UPDATE SKIP LOCKED``; SQLite with one atomic
    ``UPDATE ... WHERE id = (SELECT ...) RETURNING`` (SQLite serialises writers, so two
    claimers can never both match the row)."""
    posts = schema.scheduled_content
    due = [
        posts.c.status == "scheduled",
        posts.c.scheduled_at <= due_by,
        posts.c.scheduled_at >= not_before,
        sa.or_(posts.c.next_attempt_at.is_(None), posts.c.next_attempt_at <= now),
        _of_brands(brand_ids),
    ]
    if exclude_platforms:
        due.append(posts.c.platform.not_in(list(exclude_platforms)))
    first_due = sa.select(posts.c.id).where(*due).order_by(posts.c.scheduled_at).limit(1)
    if conn.dialect.name == "postgresql":
        picked = conn.execute(first_due.with_for_update(skip_locked=True)).scalar_one_or_none()
        if picked is None:
            return None
    else:
        picked = first_due.scalar_subquery()
    return (
        conn.execute(
            sa.update(posts)
            .where(posts.c.id == picked, posts.c.status == "scheduled")
            .values(
                status="publishing",
                claim_token=token,
                claimed_at=now,
                lease_expires_at=lease_expires_at,
                send_started_at=None,
                attempts=posts.c.attempts + 1,
                updated_at=now,
            )
            .returning(
                posts.c.id,
                posts.c.brand_id,
                posts.c.platform,
                posts.c.body,
                posts.c.media_urls,
                posts.c.format,
                posts.c.publish_options,
                posts.c.attempts,
                posts.c.scheduled_at,
            )
        )
        .mappings()
        .first()
    )


def _account_brands(platform: str, external_account_id: str) -> sa.ScalarSelect:
    accounts = schema.platform_accounts
    return (
        sa.select(accounts.c.brand_id)
        .where(
            accounts.c.platform == platform,
            accounts.c.external_account_id == external_account_id,
        )
        .scalar_subquery()
    )


def lock_account(conn: Connection, account_row_id: str) -> None:
    """Serialise the sends of one account across publishers (PostgreSQL row lock until the
    transaction ends; SQLite serialises every writer already)."""
    if conn.dialect.name != "postgresql":
        return
    accounts = schema.platform_accounts
    conn.execute(
        sa.select(accounts.c.id).where(accounts.c.id == account_row_id).with_for_update()
    ).first()


def nth_newest_send(
    conn: Connection,
    *,
    platforms: Sequence[str],
    since: datetime,
    n: int,
    external_account_id: str | None = None,
    exclude_post: str | None = None,
) -> datetime | None:
    """The ``n``-th newest send started since ``since`` on ``platforms`` (of one account when
    ``external_account_id`` is given, else of the whole app), other than ``exclude_post``;
    None when there were fewer. Sends are ``send_started_at`` (published, unknown or under
    way: whatever may count against the platform's limit)."""
    posts = schema.scheduled_content
    where = [posts.c.platform.in_(list(platforms)), posts.c.send_started_at >= since]
    if external_account_id is not None:
        (platform,) = platforms
        where.append(posts.c.brand_id.in_(_account_brands(platform, external_account_id)))
    if exclude_post is not None:
        where.append(posts.c.id != exclude_post)
    return conn.execute(
        sa.select(posts.c.send_started_at)
        .where(*where)
        .order_by(posts.c.send_started_at.desc())
        .offset(n - 1)
        .limit(1)
    ).scalar_one_or_none()


def defer_account_posts(
    conn: Connection,
    platform: str,
    external_account_id: str,
    until: datetime,
    now: datetime,
    reason: str,
) -> int:
    """The account's scheduled posts due by ``until`` wait until then (their next attempt,
    ``reason`` as their last error); how many."""
    posts = schema.scheduled_content
    return conn.execute(
        sa.update(posts)
        .where(
            posts.c.status == "scheduled",
            posts.c.platform == platform,
            posts.c.brand_id.in_(_account_brands(platform, external_account_id)),
            posts.c.scheduled_at <= until,
            sa.or_(posts.c.next_attempt_at.is_(None), posts.c.next_attempt_at < until),
        )
        .values(next_attempt_at=until, last_error=reason[:ERROR_CHARS], updated_at=now)
    ).rowcount


def publishing_account(conn: Connection, brand_id: str, platform: str) -> RowMapping | None:
    """The brand's active account on ``platform`` (one needing no reconnection first)."""
    accounts = schema.platform_accounts
    return (
        conn.execute(
            sa.select(
                accounts.c.id,
                accounts.c.external_account_id,
                accounts.c.access_token,
                accounts.c.needs_reconnect,
                accounts.c.reconnect_reason,
            )
            .where(
                accounts.c.brand_id == brand_id,
                accounts.c.platform == platform,
                accounts.c.is_active.is_(True),
            )
            .order_by(accounts.c.needs_reconnect, accounts.c.id)
            .limit(1)
        )
        .mappings()
        .first()
    )


def finish_claim(
    conn: Connection,
    post_id: str,
    held_token: str,
    now: datetime,
    values: dict[str, Any],
    *,
    published: bool = False,
    give_back_attempt: bool = False,
) -> int:
    """Record a claimed post's outcome (``values``: status, last_error, ...) and end its
    lease, if the claim ``held_token`` still holds (1; else 0). ``published``: also over an
    ``unknown`` the lease reaper set meanwhile (the platform's answer is the truth).
    ``give_back_attempt``: the attempt is not counted (a claim released unsent)."""
    posts = schema.scheduled_content
    values = dict(values)
    if give_back_attempt:
        values["attempts"] = posts.c.attempts - 1
    return conn.execute(
        sa.update(posts)
        .where(
            posts.c.id == post_id,
            posts.c.claim_token == held_token,
            posts.c.status.in_(("publishing", "unknown") if published else ("publishing",)),
        )
        .values(updated_at=now, lease_expires_at=None, **values)
    ).rowcount


# ----------------------------------------------------------------- what a run did


def run_post_outcomes(conn: Connection, run_id: str) -> dict[str, dict[str, dict]]:
    """``{brand: {post id: last event}}`` of every post the run touched (claimed, published,
    rescheduled, failed, missed or found unknown), from ``publish_events``: the publisher's
    record of each outcome, retries of the step included."""
    events = schema.publish_events
    out: dict[str, dict[str, dict]] = {}
    for row in conn.execute(
        sa.select(
            events.c.brand_id,
            events.c.scheduled_content_id,
            events.c.platform,
            events.c.status,
            events.c.error,
        )
        .where(events.c.run_id == run_id)
        .order_by(events.c.id)
    ).mappings():
        out.setdefault(row["brand_id"], {})[row["scheduled_content_id"]] = dict(row)
    return out


def backlog(conn: Connection) -> dict[str, int]:
    """How many posts are scheduled, unknown and being published, by status."""
    posts = schema.scheduled_content
    rows = conn.execute(
        sa.select(posts.c.status, sa.func.count())
        .where(posts.c.status.in_(BACKLOG_STATUSES))
        .group_by(posts.c.status)
    ).all()
    return dict(rows)


def unresolved_posts(conn: Connection) -> tuple[int, int]:
    """(posts in ``unknown``, posts in ``publishing``): what may wait for a person."""
    posts = schema.scheduled_content
    unknown = conn.execute(
        sa.select(sa.func.count()).where(posts.c.status == "unknown")
    ).scalar_one()
    publishing = conn.execute(
        sa.select(sa.func.count()).where(posts.c.status == "publishing")
    ).scalar_one()
    return unknown, publishing


def posts_by_platform(conn: Connection) -> dict[str, dict[str, int]]:
    """``{platform: {status: posts}}`` of ``scheduled_content``, and under ``"x_with_media"``
    the X posts published with media (``{"published": n}``): what the demo summary shows."""
    posts = schema.scheduled_content
    out: dict[str, dict[str, int]] = {}
    for platform, status, n in conn.execute(
        sa.select(posts.c.platform, posts.c.status, sa.func.count()).group_by(
            posts.c.platform, posts.c.status
        )
    ):
        out.setdefault(platform, {})[status] = n
    with_media = conn.execute(
        sa.select(posts.c.media_urls).where(posts.c.platform == "x", posts.c.status == "published")
    ).scalars()
    out["x_with_media"] = {"published": sum(1 for m in with_media if m)}
    return out
