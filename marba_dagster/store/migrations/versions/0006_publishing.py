"""scheduled_content.send_started_at: the publisher's durable "about to send" record, indexed
with the platform for the publishing limits' windows; scheduled_content.publish_options: a
Google Business post's type, event, offer and call to action

Revision ID: 0006_publishing
Revises: 0005_competitive_page_noise
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import marba_dagster.store.types

revision = "0006_publishing"
down_revision = "0005_competitive_page_noise"
branch_labels = None
depends_on = None

_TS = marba_dagster.store.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("scheduled_content") as batch:
        batch.add_column(sa.Column("send_started_at", _TS(), nullable=True))
        batch.add_column(
            sa.Column(
                "publish_options",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
    # Counting an account's (and an app's) sends in a limit's window.
    op.create_index(
        "ix_scheduled_content_platform_send_started_at",
        "scheduled_content",
        ["platform", "send_started_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_scheduled_content_platform_send_started_at", "scheduled_content")
    with op.batch_alter_table("scheduled_content") as batch:
        batch.drop_column("publish_options")
        batch.drop_column("send_started_at")
