"""Alerts pushed once: a row in ``notifications`` keyed by the event, then the webhook.

The row is inserted first (``dedup_key`` is unique); a call sends only after claiming the
row (one conditional UPDATE, so exactly one of several racing callers wins), so an event
seen by several runs, or by runs racing each other, is pushed once. A push that failed
stays ``failed`` with its error and is tried again by the next call for the same key, up to
``MAX_PUSH_ATTEMPTS`` pushes in all (counted in ``attempts``); a push that succeeded is
never sent again. A row left ``sending`` for longer than ``SENDING_LEASE`` (its worker
stopped mid-push) counts as a failed attempt, so the alert is not lost; the push may then
reach the webhook twice, which beats never.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marba_dagster.connectors.http import ApiClient, HttpError, HttpPolicy
from marba_dagster.connectors.redaction import redact
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert
from marba_dagster.store.types import utcnow

log = logging.getLogger(__name__)

MAX_PUSH_ATTEMPTS = 3  # webhook pushes per alert, the first included
# Far above a push's own deadline (20 s): only a worker that died leaves a row this long.
SENDING_LEASE = timedelta(minutes=10)
_WEBHOOK_POLICY = HttpPolicy(connect_timeout=5, read_timeout=10, deadline=20, max_attempts=2)


def _describe(err: HttpError, webhook_url: str) -> str:
    """The failure without the webhook URL: a Slack-style URL is itself the credential."""
    text = f"webhook push failed: {err.message}"
    if err.status is not None and f"HTTP {err.status}" not in text:
        text += f" (HTTP {err.status})"
    path = urlsplit(webhook_url).path
    for secret in (webhook_url, path if len(path) > 1 else None):
        if secret:
            text = text.replace(secret, "<webhook>")
    return redact(text)[:500]


def push_once(
    engine: Engine,
    webhook_url: str | None,
    *,
    dedup_key: str,
    kind: str,
    text: str,
    brand_id: str | None = None,
) -> str:
    """Push ``text`` to the Slack-compatible webhook once per ``dedup_key``.

    Returns ``sent``, ``failed`` (this attempt failed; the next call tries again while
    attempts remain), ``logged`` (no webhook configured: recorded only) or ``duplicate``
    (nothing done: already sent or logged, being sent, or out of attempts).
    """
    # An alert quoting an error must not carry a credential the process has sent.
    text = redact(text)
    n = s.notifications
    with engine.begin() as conn:
        upsert(
            conn,
            n,
            [
                {
                    "dedup_key": dedup_key,
                    "kind": kind,
                    "brand_id": brand_id,
                    "text": text[:4000],
                    "status": "pending",
                    "attempts": 0,
                    "created_at": utcnow(),
                }
            ],
            ["dedup_key"],
            [],
        )
        now = utcnow()
        conn.execute(
            sa.update(n)
            .where(
                n.c.dedup_key == dedup_key,
                n.c.status == "sending",
                sa.or_(n.c.claimed_at.is_(None), n.c.claimed_at < now - SENDING_LEASE),
            )
            .values(status="failed", error="the push was interrupted (its worker stopped)")
        )
        claimable = sa.or_(
            n.c.status == "pending",
            sa.and_(n.c.status == "failed", n.c.attempts < MAX_PUSH_ATTEMPTS),
        )
        mine = conn.execute(
            sa.update(n)
            .where(n.c.dedup_key == dedup_key, claimable)
            .values(status="sending", attempts=n.c.attempts + 1, text=text[:4000], claimed_at=now)
        ).rowcount
    if not mine:
        return "duplicate"
    if not webhook_url:
        status, error = "logged", None
        # Recorded in `notifications` (status logged); the text stays out of stderr.
        log.info("alert (no webhook configured): %s", text)
    else:
        try:
            with ApiClient(webhook_url, policy=_WEBHOOK_POLICY, name="notify_webhook") as client:
                client.post("", json={"text": text})
            status, error = "sent", None
        except HttpError as err:
            status, error = "failed", _describe(err, webhook_url)
            log.warning("alert push failed: %s", error)
    with engine.begin() as conn:
        conn.execute(
            sa.update(n).where(n.c.dedup_key == dedup_key).values(status=status, error=error)
        )
    return status


def settled(engine: Engine, dedup_key: str) -> bool:
    """Whether the alert of ``dedup_key`` has been delivered (``sent``) or recorded with no
    webhook configured (``logged``): nothing further will be pushed for it."""
    n = s.notifications
    with engine.connect() as conn:
        status = conn.execute(sa.select(n.c.status).where(n.c.dedup_key == dedup_key)).scalar()
    return status in ("sent", "logged")
