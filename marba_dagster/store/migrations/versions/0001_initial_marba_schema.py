"""initial MARBA schema

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import marba_dagster.store.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "background_jobs",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("status", sa.String(length=20), server_default="active", nullable=False),
        sa.Column("cron", sa.String(length=64), nullable=False),
        sa.Column("circuit_opened_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("circuit_reason", sa.Text(), nullable=True),
        sa.Column("probe_run_id", sa.String(length=64), nullable=True),
        sa.Column("circuit_reset_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("health", sa.String(length=20), nullable=True),
        sa.Column(
            "updated_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('active', 'paused', 'circuit_open')", name=op.f("ck_background_jobs_status")
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_background_jobs")),
        sa.UniqueConstraint("alias", name=op.f("uq_background_jobs_alias")),
    )
    op.create_table(
        "brands",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("industry", sa.String(length=100), nullable=False),
        sa.Column("country_code", sa.String(length=2), nullable=True),
        sa.Column("subdivision", sa.String(length=10), nullable=True),
        sa.Column("city", sa.String(length=120), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False),
        sa.Column(
            "keywords",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "monthly_ai_budget_usd",
            sa.Numeric(precision=12, scale=4),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brands")),
    )
    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_brands_is_active"), ["is_active"], unique=False)

    op.create_table(
        "job_executions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("trigger", sa.String(length=40), nullable=True),
        sa.Column("partition_key", sa.String(length=200), nullable=True),
        sa.Column("started_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("finished_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("duration_seconds", sa.Float(), nullable=True),
        sa.Column("brands_processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("brands_failed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_executions")),
        sa.UniqueConstraint("run_id", name=op.f("uq_job_executions_run_id")),
    )
    with op.batch_alter_table("job_executions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_job_executions_job_name_started_at"),
            ["job_name", "started_at"],
            unique=False,
        )

    op.create_table(
        "account_metrics",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("metric_date", sa.Date(), nullable=False),
        sa.Column("followers", sa.Integer(), nullable=False),
        sa.Column(
            "collected_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_account_metrics_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "brand_id", "platform", "metric_date", name=op.f("pk_account_metrics")
        ),
    )
    op.create_table(
        "api_billing_tracker",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=True),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=100), nullable=False),
        sa.Column("model", sa.String(length=100), nullable=True),
        sa.Column("input_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column("output_tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "cost_usd", sa.Numeric(precision=14, scale=6), server_default="0", nullable=False
        ),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_api_billing_tracker_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_billing_tracker")),
    )
    with op.batch_alter_table("api_billing_tracker", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_api_billing_tracker_brand_id_occurred_at"),
            ["brand_id", "occurred_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_api_billing_tracker_occurred_at"), ["occurred_at"], unique=False
        )

    op.create_table(
        "brand_daily_metrics",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("metric_date", sa.Date(), nullable=False),
        sa.Column("posts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("impressions", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("reach", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("engagements", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("clicks", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("engagement_rate", sa.Float(), nullable=True),
        sa.Column("click_through_rate", sa.Float(), nullable=True),
        sa.Column("followers", sa.Integer(), nullable=True),
        sa.Column("follower_growth_1d", sa.Float(), nullable=True),
        sa.Column("follower_growth_7d", sa.Float(), nullable=True),
        sa.Column("follower_growth_30d", sa.Float(), nullable=True),
        sa.Column(
            "computed_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_brand_daily_metrics_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "brand_id", "platform", "metric_date", name=op.f("pk_brand_daily_metrics")
        ),
    )
    with op.batch_alter_table("brand_daily_metrics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_brand_daily_metrics_metric_date"), ["metric_date"], unique=False
        )

    op.create_table(
        "brand_objectives",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=True),
        sa.Column("baseline_value", sa.Float(), nullable=True),
        sa.Column("target_value", sa.Float(), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=True),
        sa.Column("deadline", sa.Date(), nullable=False),
        sa.Column(
            "created_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_brand_objectives_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_brand_objectives")),
    )
    with op.batch_alter_table("brand_objectives", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_brand_objectives_brand_id"), ["brand_id"], unique=False
        )

    op.create_table(
        "competitive_gaps",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("gap_type", sa.String(length=20), nullable=False),
        sa.Column("gap_key", sa.String(length=200), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("detected_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=12), server_default="open", nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_competitive_gaps_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_competitive_gaps")),
        sa.UniqueConstraint(
            "brand_id",
            "gap_type",
            "gap_key",
            name=op.f("uq_competitive_gaps_brand_id_gap_type_gap_key"),
        ),
    )
    op.create_table(
        "competitors",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("website_url", sa.Text(), nullable=True),
        sa.Column(
            "watch_urls",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("feed_url", sa.Text(), nullable=True),
        sa.Column(
            "social_accounts",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("reachability", sa.String(length=20), server_default="ok", nullable=False),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_checked_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column(
            "created_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_competitors_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_competitors")),
    )
    with op.batch_alter_table("competitors", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_competitors_brand_id"), ["brand_id"], unique=False)

    op.create_table(
        "content_posts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_post_id", sa.String(length=128), nullable=False),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("format", sa.String(length=20), server_default="text", nullable=False),
        sa.Column("published_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column(
            "collected_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "format IN ('text', 'image', 'video', 'carousel', 'link', 'story', 'reel')",
            name=op.f("ck_content_posts_format"),
        ),
        sa.CheckConstraint(
            "platform IN ('facebook', 'instagram', 'x', 'google_business')",
            name=op.f("ck_content_posts_platform"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_content_posts_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_content_posts")),
        sa.UniqueConstraint(
            "platform", "external_post_id", name=op.f("uq_content_posts_platform_external_post_id")
        ),
    )
    with op.batch_alter_table("content_posts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_content_posts_brand_id_platform_published_at"),
            ["brand_id", "platform", "published_at"],
            unique=False,
        )

    op.create_table(
        "engagement_inbox",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("item_type", sa.String(length=20), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("parent_external_id", sa.String(length=200), nullable=True),
        sa.Column("author", sa.String(length=200), nullable=True),
        sa.Column("author_followers", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), server_default="", nullable=False),
        sa.Column("rating", sa.Integer(), nullable=True),
        sa.Column("received_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("sentiment_score", sa.Float(), nullable=True),
        sa.Column("sentiment_label", sa.String(length=10), nullable=True),
        sa.Column("priority", sa.String(length=10), nullable=True),
        sa.Column("priority_score", sa.Float(), nullable=True),
        sa.Column("status", sa.String(length=20), server_default="new", nullable=False),
        sa.Column("notified_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column(
            "collected_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "item_type IN ('comment', 'mention', 'direct_message', 'review')",
            name=op.f("ck_engagement_inbox_item_type"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_engagement_inbox_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engagement_inbox")),
        sa.UniqueConstraint(
            "platform", "external_id", name=op.f("uq_engagement_inbox_platform_external_id")
        ),
    )
    with op.batch_alter_table("engagement_inbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_engagement_inbox_brand_id_status_priority_score"),
            ["brand_id", "status", "priority_score"],
            unique=False,
        )

    op.create_table(
        "enrichment_cache",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("section", sa.String(length=20), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("generated_by", sa.String(length=100), nullable=False),
        sa.Column("input_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("created_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "section IN ('measure', 'intend', 'reimagine', 'reach', 'optimize', 'reflect')",
            name=op.f("ck_enrichment_cache_section"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_enrichment_cache_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("brand_id", "section", name=op.f("pk_enrichment_cache")),
    )
    with op.batch_alter_table("enrichment_cache", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrichment_cache_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "enrichment_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("section", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("generated_by", sa.String(length=100), nullable=True),
        sa.Column("tokens", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "cost_usd", sa.Numeric(precision=12, scale=6), server_default="0", nullable=False
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("finished_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_enrichment_logs_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrichment_logs")),
    )
    with op.batch_alter_table("enrichment_logs", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrichment_logs_brand_id_section_started_at"),
            ["brand_id", "section", "started_at"],
            unique=False,
        )

    op.create_table(
        "enrichment_schedule",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("section", sa.String(length=20), nullable=False),
        sa.Column("next_refresh_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("refresh_requested_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("invalidated_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("invalidated_reason", sa.Text(), nullable=True),
        sa.Column("last_refreshed_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "section IN ('measure', 'intend', 'reimagine', 'reach', 'optimize', 'reflect')",
            name=op.f("ck_enrichment_schedule_section"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_enrichment_schedule_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("brand_id", "section", name=op.f("pk_enrichment_schedule")),
    )
    with op.batch_alter_table("enrichment_schedule", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_enrichment_schedule_refresh_requested_at"),
            ["refresh_requested_at"],
            unique=False,
        )

    op.create_table(
        "intelligence_opportunities",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("opportunity_type", sa.String(length=32), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("urgency", sa.String(length=10), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("predicted_score", sa.Float(), nullable=True),
        sa.Column("detected_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("updated_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("expires_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=12), server_default="active", nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "suggested_actions",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("notified_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "opportunity_type IN ('weather', 'trending_topic', 'seasonal_event', 'competitor_activity', 'local_news')",
            name=op.f("ck_intelligence_opportunities_opportunity_type"),
        ),
        sa.CheckConstraint(
            "status IN ('active', 'expired', 'dismissed', 'acted')",
            name=op.f("ck_intelligence_opportunities_status"),
        ),
        sa.CheckConstraint(
            "urgency IN ('critical', 'high', 'medium', 'low')",
            name=op.f("ck_intelligence_opportunities_urgency"),
        ),
        sa.CheckConstraint(
            "score >= 0 AND score <= 1", name=op.f("ck_intelligence_opportunities_score_range")
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_intelligence_opportunities_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intelligence_opportunities")),
        sa.UniqueConstraint(
            "brand_id", "dedup_key", name=op.f("uq_intelligence_opportunities_brand_id_dedup_key")
        ),
    )
    with op.batch_alter_table("intelligence_opportunities", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intelligence_opportunities_brand_id_status_expires_at"),
            ["brand_id", "status", "expires_at"],
            unique=False,
        )

    op.create_table(
        "intelligence_signals",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("signal_type", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("observed_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("valid_until", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("strength", sa.Float(), server_default="0", nullable=False),
        sa.CheckConstraint(
            "signal_type IN ('weather', 'trend', 'seasonal', 'competitor', 'news')",
            name=op.f("ck_intelligence_signals_signal_type"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_intelligence_signals_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intelligence_signals")),
        sa.UniqueConstraint(
            "brand_id",
            "signal_type",
            "dedup_key",
            name=op.f("uq_intelligence_signals_brand_id_signal_type_dedup_key"),
        ),
    )
    with op.batch_alter_table("intelligence_signals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_intelligence_signals_brand_id_signal_type_observed_at"),
            ["brand_id", "signal_type", "observed_at"],
            unique=False,
        )

    op.create_table(
        "job_logs",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_name", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column(
            "context",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_job_logs_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_logs")),
    )
    with op.batch_alter_table("job_logs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_job_logs_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_job_logs_job_name_created_at"), ["job_name", "created_at"], unique=False
        )

    op.create_table(
        "learning_patterns",
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("pattern_type", sa.String(length=32), nullable=False),
        sa.Column("pattern_key", sa.String(length=120), nullable=False),
        sa.Column("lift", sa.Float(), nullable=False),
        sa.Column("data_points", sa.Integer(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("mean_engagement", sa.Float(), nullable=True),
        sa.Column("baseline_engagement", sa.Float(), nullable=True),
        sa.Column(
            "details",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("computed_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "pattern_type IN ('best_posting_time', 'content_format', 'topic', 'power_word', 'hashtag')",
            name=op.f("ck_learning_patterns_pattern_type"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_learning_patterns_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "brand_id", "platform", "pattern_type", "pattern_key", name=op.f("pk_learning_patterns")
        ),
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("dedup_key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_notifications_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_notifications_dedup_key")),
    )
    op.create_table(
        "platform_accounts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("external_account_id", sa.String(length=128), nullable=False),
        sa.Column("handle", sa.String(length=200), nullable=True),
        sa.Column("access_token", sa.Text(), nullable=True),
        sa.Column("token_expires_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("needs_reconnect", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("reconnect_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "platform IN ('facebook', 'instagram', 'x', 'google_business')",
            name=op.f("ck_platform_accounts_platform"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_platform_accounts_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_accounts")),
        sa.UniqueConstraint(
            "platform",
            "external_account_id",
            name=op.f("uq_platform_accounts_platform_external_account_id"),
        ),
    )
    with op.batch_alter_table("platform_accounts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_platform_accounts_brand_id_platform"),
            ["brand_id", "platform"],
            unique=False,
        )

    op.create_table(
        "scheduled_content",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "media_urls",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("format", sa.String(length=20), server_default="text", nullable=False),
        sa.Column("scheduled_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=20), server_default="scheduled", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("external_post_id", sa.String(length=128), nullable=True),
        sa.Column("published_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column("lease_expires_at", marba_dagster.store.types.UTCDateTime(), nullable=True),
        sa.Column(
            "created_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.CheckConstraint(
            "platform IN ('facebook', 'instagram', 'x', 'google_business')",
            name=op.f("ck_scheduled_content_platform"),
        ),
        sa.CheckConstraint(
            "status IN ('scheduled', 'publishing', 'published', 'failed', 'unknown', 'cancelled')",
            name=op.f("ck_scheduled_content_status"),
        ),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_scheduled_content_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduled_content")),
    )
    with op.batch_alter_table("scheduled_content", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_scheduled_content_brand_id"), ["brand_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_scheduled_content_status_scheduled_at"),
            ["status", "scheduled_at"],
            unique=False,
        )

    op.create_table(
        "competitive_intelligence_snapshots",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("competitor_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(length=20), server_default="page", nullable=False),
        sa.Column("fetched_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("meta_description", sa.Text(), nullable=True),
        sa.Column(
            "headlines",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "prices",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "products",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "feed_items",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("positioning_text", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_competitive_intelligence_snapshots_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["competitor_id"],
            ["competitors.id"],
            name=op.f("fk_competitive_intelligence_snapshots_competitor_id_competitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_competitive_intelligence_snapshots")),
    )
    with op.batch_alter_table("competitive_intelligence_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_competitive_intelligence_snapshots_brand_id_run_id"),
            ["brand_id", "run_id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_competitive_intelligence_snapshots_competitor_id_url_fetched_at"),
            ["competitor_id", "url", "fetched_at"],
            unique=False,
        )

    op.create_table(
        "messaging_shifts",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("competitor_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("shift_score", sa.Float(), nullable=False),
        sa.Column(
            "terms_gained",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column(
            "terms_lost",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            server_default="[]",
            nullable=False,
        ),
        sa.Column("before_text", sa.Text(), nullable=True),
        sa.Column("after_text", sa.Text(), nullable=True),
        sa.Column("detected_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_messaging_shifts_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["competitor_id"],
            ["competitors.id"],
            name=op.f("fk_messaging_shifts_competitor_id_competitors"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_messaging_shifts")),
    )
    with op.batch_alter_table("messaging_shifts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_messaging_shifts_brand_id_detected_at"),
            ["brand_id", "detected_at"],
            unique=False,
        )

    op.create_table(
        "post_metrics",
        sa.Column("post_id", sa.String(length=64), nullable=False),
        sa.Column("metric_date", sa.Date(), nullable=False),
        sa.Column("impressions", sa.Integer(), server_default="0", nullable=False),
        sa.Column("reach", sa.Integer(), server_default="0", nullable=False),
        sa.Column("likes", sa.Integer(), server_default="0", nullable=False),
        sa.Column("comments", sa.Integer(), server_default="0", nullable=False),
        sa.Column("shares", sa.Integer(), server_default="0", nullable=False),
        sa.Column("saves", sa.Integer(), server_default="0", nullable=False),
        sa.Column("clicks", sa.Integer(), server_default="0", nullable=False),
        sa.Column("video_views", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "collected_at",
            marba_dagster.store.types.UTCDateTime(),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["post_id"],
            ["content_posts.id"],
            name=op.f("fk_post_metrics_post_id_content_posts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("post_id", "metric_date", name=op.f("pk_post_metrics")),
    )
    with op.batch_alter_table("post_metrics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_post_metrics_metric_date"), ["metric_date"], unique=False
        )

    op.create_table(
        "publish_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scheduled_content_id", sa.String(length=64), nullable=False),
        sa.Column("brand_id", sa.String(length=64), nullable=False),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("external_post_id", sa.String(length=128), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("occurred_at", marba_dagster.store.types.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["brand_id"],
            ["brands.id"],
            name=op.f("fk_publish_events_brand_id_brands"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["scheduled_content_id"],
            ["scheduled_content.id"],
            name=op.f("fk_publish_events_scheduled_content_id_scheduled_content"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_publish_events")),
    )
    with op.batch_alter_table("publish_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_publish_events_scheduled_content_id"),
            ["scheduled_content_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("publish_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_publish_events_scheduled_content_id"))

    op.drop_table("publish_events")
    with op.batch_alter_table("post_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_post_metrics_metric_date"))

    op.drop_table("post_metrics")
    with op.batch_alter_table("messaging_shifts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_messaging_shifts_brand_id_detected_at"))

    op.drop_table("messaging_shifts")
    with op.batch_alter_table("competitive_intelligence_snapshots", schema=None) as batch_op:
        batch_op.drop_index(
            batch_op.f("ix_competitive_intelligence_snapshots_competitor_id_url_fetched_at")
        )
        batch_op.drop_index(batch_op.f("ix_competitive_intelligence_snapshots_brand_id_run_id"))

    op.drop_table("competitive_intelligence_snapshots")
    with op.batch_alter_table("scheduled_content", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_scheduled_content_status_scheduled_at"))
        batch_op.drop_index(batch_op.f("ix_scheduled_content_brand_id"))

    op.drop_table("scheduled_content")
    with op.batch_alter_table("platform_accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_platform_accounts_brand_id_platform"))

    op.drop_table("platform_accounts")
    op.drop_table("notifications")
    op.drop_table("learning_patterns")
    with op.batch_alter_table("job_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_logs_job_name_created_at"))
        batch_op.drop_index(batch_op.f("ix_job_logs_created_at"))

    op.drop_table("job_logs")
    with op.batch_alter_table("intelligence_signals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intelligence_signals_brand_id_signal_type_observed_at"))

    op.drop_table("intelligence_signals")
    with op.batch_alter_table("intelligence_opportunities", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_intelligence_opportunities_brand_id_status_expires_at"))

    op.drop_table("intelligence_opportunities")
    with op.batch_alter_table("enrichment_schedule", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrichment_schedule_refresh_requested_at"))

    op.drop_table("enrichment_schedule")
    with op.batch_alter_table("enrichment_logs", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrichment_logs_brand_id_section_started_at"))

    op.drop_table("enrichment_logs")
    with op.batch_alter_table("enrichment_cache", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_enrichment_cache_expires_at"))

    op.drop_table("enrichment_cache")
    with op.batch_alter_table("engagement_inbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_engagement_inbox_brand_id_status_priority_score"))

    op.drop_table("engagement_inbox")
    with op.batch_alter_table("content_posts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_content_posts_brand_id_platform_published_at"))

    op.drop_table("content_posts")
    with op.batch_alter_table("competitors", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_competitors_brand_id"))

    op.drop_table("competitors")
    op.drop_table("competitive_gaps")
    with op.batch_alter_table("brand_objectives", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_brand_objectives_brand_id"))

    op.drop_table("brand_objectives")
    with op.batch_alter_table("brand_daily_metrics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_brand_daily_metrics_metric_date"))

    op.drop_table("brand_daily_metrics")
    with op.batch_alter_table("api_billing_tracker", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_billing_tracker_occurred_at"))
        batch_op.drop_index(batch_op.f("ix_api_billing_tracker_brand_id_occurred_at"))

    op.drop_table("api_billing_tracker")
    op.drop_table("account_metrics")
    with op.batch_alter_table("job_executions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_job_executions_job_name_started_at"))

    op.drop_table("job_executions")
    with op.batch_alter_table("brands", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_brands_is_active"))

    op.drop_table("brands")
    op.drop_table("background_jobs")
