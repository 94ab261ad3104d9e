"""Queries on ``platform_accounts`` shared by the collectors and the publisher."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.store import schema

REASON_CHARS = 500


def mark_needs_reconnect(conn: Connection, account_row_id: str, reason: str) -> None:
    """The platform rejected the account's token: flag it for the app to ask the brand to
    reconnect it (the reason holds no token; it is shown to people)."""
    accounts = schema.platform_accounts
    conn.execute(
        sa.update(accounts)
        .where(accounts.c.id == account_row_id)
        .values(needs_reconnect=True, reconnect_reason=reason[:REASON_CHARS])
    )
