"""Critical opportunities pushed once to the Slack-compatible webhook.

Each push goes through ``services.notifications.push_once`` keyed
``opportunity:<brand>:<dedup key>``: claimed before it is sent (two runs seeing the same
opportunity push it once), retried by later runs while attempts remain, never sent again
once delivered, and the webhook URL (a credential) never appears in an error.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.services.notifications import push_once, settled
from marba_dagster.store import schema as s

KIND = "opportunity_critical"


def notification_key(brand_id: str, dedup_key: str) -> str:
    return f"opportunity:{brand_id}:{dedup_key}"[:200]


def message(brand_name: str, opp: dict, now: datetime) -> str:
    left = ""
    if opp.get("expires_at"):
        minutes = max(0, int((opp["expires_at"] - now).total_seconds() // 60))
        left = f" (expires in {minutes // 60}h{minutes % 60:02d})"
    return (
        f":rotating_light: Critical opportunity for {brand_name}: {opp['title']}{left}\n"
        f"{opp.get('description', '')}"
    )


def push_critical(
    marba_db: MarbaDatabase,
    webhook_url: str | None,
    brand_id: str,
    brand_name: str,
    opps: list[dict],
    now: datetime,
) -> dict[str, int]:
    """Push each critical opportunity once; an opportunity whose alert is delivered (or
    recorded, with no webhook) is marked notified. Returns counts by outcome: sent, logged,
    failed (the next run tries again) and already_sent (another run has it)."""
    counts = {"sent": 0, "already_sent": 0, "failed": 0, "logged": 0}
    o = s.intelligence_opportunities
    for opp in opps:
        key = notification_key(brand_id, opp["dedup_key"])
        status = push_once(
            marba_db.engine,
            webhook_url,
            dedup_key=key,
            kind=KIND,
            text=message(brand_name, opp, now),
            brand_id=brand_id,
        )
        counts["already_sent" if status == "duplicate" else status] += 1
        if status in ("sent", "logged") or (
            status == "duplicate" and settled(marba_db.engine, key)
        ):
            with marba_db.begin() as conn:
                conn.execute(sa.update(o).where(o.c.id == opp["id"]).values(notified_at=now))
    return counts
