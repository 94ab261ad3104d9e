"""Alerts pushed once: a row in ``notifications`` keyed by the event, then the webhook.

The row is inserted first (``dedup_key`` is unique); only the process whose insert wins
sends, so an event seen by several runs, or by runs racing each other, is pushed once.
A push that failed stays ``failed`` with its error for the app to show; it is not re-sent
automatically (the event is still visible where it lives: the post, the inbox item).
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marba_dagster.connectors.http import ApiClient, HttpError, HttpPolicy
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert
from marba_dagster.store.types import utcnow

log = logging.getLogger(__name__)

_WEBHOOK_POLICY = HttpPolicy(connect_timeout=5, read_timeout=10, deadline=20, max_attempts=2)


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

    Returns ``duplicate`` (already pushed or being pushed), ``sent``, ``failed`` or
    ``logged`` (no webhook configured: recorded only).
    """
    with engine.begin() as conn:
        before = conn.execute(
            sa.select(sa.func.count()).select_from(s.notifications).where(s.notifications.c.dedup_key == dedup_key)
        ).scalar_one()
        if before:
            return "duplicate"
        upsert(
            conn, s.notifications,
            [{"dedup_key": dedup_key, "kind": kind, "brand_id": brand_id, "text": text[:4000],
              "status": "pending", "created_at": utcnow()}],
            ["dedup_key"], [],
        )
        mine = conn.execute(
            sa.update(s.notifications)
            .where(s.notifications.c.dedup_key == dedup_key, s.notifications.c.status == "pending")
            .values(status="sending")
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
            status, error = "failed", str(err)[:500]
            log.warning("alert push failed: %s", error)
    with engine.begin() as conn:
        conn.execute(
            sa.update(s.notifications).where(s.notifications.c.dedup_key == dedup_key).values(status=status, error=error)
        )
    return status
