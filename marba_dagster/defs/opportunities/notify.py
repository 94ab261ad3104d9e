"""Critical opportunities pushed once to the Slack-compatible webhook.

Each push is a row in ``notifications`` keyed ``opportunity:<brand>:<dedup key>``: a row
already ``sent`` is never pushed again, however many runs see the opportunity; a failed
push is retried on the next run. The webhook URL is a secret (Slack puts the token in the
path), so it never appears in messages: failures report the error class and status only.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marba_dagster.connectors.http import ApiClient, HttpError, HttpPolicy
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert
from marba_dagster.store.types import utcnow

WEBHOOK_POLICY = HttpPolicy(connect_timeout=5, read_timeout=10, deadline=20, max_attempts=2)
KIND = "opportunity_critical"


def notification_key(brand_id: str, dedup_key: str) -> str:
    return f"opportunity:{brand_id}:{dedup_key}"[:200]


def message(brand_name: str, opp: dict, now: datetime) -> str:
    left = ""
    if opp.get("expires_at"):
        minutes = max(0, int((opp["expires_at"] - now).total_seconds() // 60))
        left = f" (expires in {minutes // 60}h{minutes % 60:02d})"
    return f":rotating_light: Critical opportunity for {brand_name}: {opp['title']}{left}\n{opp.get('description', '')}"


def push_critical(
    marba_db: MarbaDatabase,
    webhook_url: str | None,
    brand_id: str,
    brand_name: str,
    opps: list[dict],
    now: datetime,
    client: ApiClient | None = None,
) -> dict[str, int]:
    """Push each opportunity not yet pushed; returns counts (sent, skipped, failed, logged)."""
    counts = {"sent": 0, "already_sent": 0, "failed": 0, "logged": 0}
    n = s.notifications
    o = s.intelligence_opportunities
    for opp in opps:
        key = notification_key(brand_id, opp["dedup_key"])
        text = message(brand_name, opp, now)
        with marba_db.begin() as conn:
            status = conn.execute(sa.select(n.c.status).where(n.c.dedup_key == key)).scalar()
            if status in ("sent", "logged"):
                conn.execute(sa.update(o).where(o.c.id == opp["id"]).values(notified_at=now))
                counts["already_sent"] += 1
                continue
            upsert(
                conn,
                n,
                [
                    {
                        "dedup_key": key,
                        "kind": KIND,
                        "brand_id": brand_id,
                        "text": text,
                        "status": "pending",
                        "error": None,
                        "created_at": utcnow(),
                    }
                ],
                ["dedup_key"],
                ["text", "status", "error"],
            )
        error = None
        if not webhook_url:
            result = "logged"
        else:
            try:
                if client is not None:
                    client.post(webhook_url, json={"text": text})
                else:
                    with ApiClient(webhook_url, policy=WEBHOOK_POLICY, name="notify_webhook") as c:
                        c.post("", json={"text": text})
                result = "sent"
            except HttpError as exc:
                result = "failed"
                error = f"{type(exc).__name__}" + (f" (HTTP {exc.status})" if exc.status else "")
        with marba_db.begin() as conn:
            conn.execute(
                sa.update(n).where(n.c.dedup_key == key).values(status=result, error=error)
            )
            if result != "failed":
                conn.execute(sa.update(o).where(o.c.id == opp["id"]).values(notified_at=now))
        counts[result] += 1
    return counts
