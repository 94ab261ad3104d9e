"""competitive_page_noise (the noise mask learned per watched URL) and
competitive_intelligence_snapshots.blocks (a snapshot's text blocks, so a mask learned later
applies to it)

Revision ID: 0005_competitive_page_noise
Revises: 0004_competitor_social
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import marba_dagster.store.types

revision = "0005_competitive_page_noise"
down_revision = "0004_competitor_social"
branch_labels = None
depends_on = None

_TS = marba_dagster.store.types.UTCDateTime
_JSON = marba_dagster.store.types.JSONType


def upgrade() -> None:
    op.create_table(
        "competitive_page_noise",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("mask", _JSON, nullable=False, server_default="{}"),
        sa.Column("loads", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("learned_at", _TS(), nullable=False),
        sa.Column("updated_at", _TS(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_competitive_page_noise")),
    )
    with op.batch_alter_table("competitive_intelligence_snapshots") as batch:
        batch.add_column(sa.Column("blocks", _JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("competitive_intelligence_snapshots") as batch:
        batch.drop_column("blocks")
    op.drop_table("competitive_page_noise")
