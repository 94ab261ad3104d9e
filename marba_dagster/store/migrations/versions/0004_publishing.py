"""scheduled_content.send_started_at: the publisher's durable "about to send" record

Revision ID: 0004_publishing
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import marba_dagster.store.types

revision = "0004_publishing"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = marba_dagster.store.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("scheduled_content") as batch:
        batch.add_column(sa.Column("send_started_at", _TS(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scheduled_content") as batch:
        batch.drop_column("send_started_at")
