"""competitor_social_snapshots: competitors' Instagram and X accounts as read each run (recent
posts, followers, post count), the history the social_activity rules compare against

Revision ID: 0004_competitor_social
Revises: 0003
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import marba_dagster.store.types

revision = "0004_competitor_social"
down_revision = "0003"
branch_labels = None
depends_on = None

_TS = marba_dagster.store.types.UTCDateTime
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "competitor_social_snapshots",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("competitor_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=20), nullable=False),
        sa.Column("account", sa.String(length=200), nullable=False),
        sa.Column("fetched_at", _TS(), nullable=False),
        sa.Column("followers", sa.Integer(), nullable=True),
        sa.Column("post_count", sa.Integer(), nullable=True),
        sa.Column("posts", _JSON, server_default="[]", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.CheckConstraint(
            "platform IN ('instagram', 'x')",
            name=op.f("ck_competitor_social_snapshots_platform"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_competitor_social_snapshots_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["competitor_id"],
            ["competitors.id"],
            name=op.f("fk_competitor_social_snapshots_competitor_id_competitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_competitor_social_snapshots")),
    )
    op.create_index(
        op.f("ix_competitor_social_snapshots_competitor_id_platform_fetched_at"),
        "competitor_social_snapshots",
        ["competitor_id", "platform", "fetched_at"],
    )
    op.create_index(
        op.f("ix_competitor_social_snapshots_brand_id_run_id"),
        "competitor_social_snapshots",
        ["brand_id", "run_id"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_competitor_social_snapshots_brand_id_run_id"),
        table_name="competitor_social_snapshots",
    )
    op.drop_index(
        op.f("ix_competitor_social_snapshots_competitor_id_platform_fetched_at"),
        table_name="competitor_social_snapshots",
    )
    op.drop_table("competitor_social_snapshots")
