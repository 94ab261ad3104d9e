"""The MARBA schema: the table contract with the app (docs/architecture.md), as SQLAlchemy Core.

Column names and meanings listed in docs/architecture.md are binding; extra columns carry the state
the jobs need (leases, failure counters, notification marks). Alembic migrations under
``store/migrations`` must produce exactly this metadata; a test compares them.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from marba_dagster.core.competitive.social import SOCIAL_PLATFORMS
from marba_dagster.core.enrichment.sections import SECTIONS
from marba_dagster.core.learning import PATTERN_TYPES
from marba_dagster.core.opportunities.urgency import URGENCY_RANK

from .types import JSONType, UTCDateTime

# Stable constraint names so migrations are identical on every database.
metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

PLATFORMS = ("facebook", "instagram", "x", "google_business")
POST_FORMATS = ("text", "image", "video", "carousel", "link", "story", "reel")
SCHEDULED_STATUSES = ("scheduled", "publishing", "published", "failed", "unknown", "cancelled")
SIGNAL_TYPES = ("weather", "trend", "seasonal", "competitor", "news")
COMPETITOR_CHANGE_TYPES = (
    "website_change",
    "pricing_change",
    "product_launch",
    "messaging_shift",
    "social_activity",
)
OPPORTUNITY_TYPES = (
    "weather",
    "trending_topic",
    "seasonal_event",
    "competitor_activity",
    "local_news",
)
URGENCIES = tuple(sorted(URGENCY_RANK, key=URGENCY_RANK.get))  # most urgent first
OPPORTUNITY_STATUSES = ("active", "expired", "dismissed", "acted")
INBOX_ITEM_TYPES = ("comment", "mention", "direct_message", "review")
INBOX_PRIORITIES = ("urgent", "high", "normal", "low")
JOB_STATES = ("active", "paused", "circuit_open")


def _id() -> sa.Column:
    return sa.Column("id", sa.String(64), primary_key=True)


def _brand_fk(nullable: bool = False, **kw) -> sa.Column:
    return sa.Column(
        "brand_id",
        sa.String(64),
        sa.ForeignKey("brands.id", ondelete="CASCADE"),
        nullable=nullable,
        **kw,
    )


def _created() -> sa.Column:
    return sa.Column("created_at", UTCDateTime(), nullable=False, server_default=sa.func.now())


def _in(column: str, values: tuple[str, ...], name: str) -> sa.CheckConstraint:
    quoted = ", ".join(f"'{v}'" for v in values)
    return sa.CheckConstraint(f"{column} IN ({quoted})", name=name)


# --------------------------------------------------------------------------- app inputs

brands = sa.Table(
    "brands",
    metadata,
    _id(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("industry", sa.String(100), nullable=False),
    sa.Column("country_code", sa.String(2), nullable=True),
    sa.Column("subdivision", sa.String(10), nullable=True),
    sa.Column("city", sa.String(120), nullable=True),
    sa.Column("latitude", sa.Float(), nullable=True),
    sa.Column("longitude", sa.Float(), nullable=True),
    sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
    sa.Column("keywords", JSONType, nullable=False, server_default="[]"),
    sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("monthly_ai_budget_usd", sa.Numeric(12, 4), nullable=False, server_default="0"),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    sa.Index(None, "is_active"),
)

competitors = sa.Table(
    "competitors",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("website_url", sa.Text(), nullable=True),
    sa.Column("watch_urls", JSONType, nullable=False, server_default="[]"),
    sa.Column("feed_url", sa.Text(), nullable=True),
    sa.Column("social_accounts", JSONType, nullable=False, server_default="{}"),
    sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
    # Monitoring state: a competitor that keeps failing is marked unreachable and reported.
    sa.Column("reachability", sa.String(20), nullable=False, server_default="ok"),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("last_checked_at", UTCDateTime(), nullable=True),
    _created(),
    sa.Index(None, "brand_id"),
)

platform_accounts = sa.Table(
    "platform_accounts",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("external_account_id", sa.String(128), nullable=False),
    sa.Column("handle", sa.String(200), nullable=True),
    sa.Column("access_token", sa.Text(), nullable=True),
    sa.Column("token_expires_at", UTCDateTime(), nullable=True),
    sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
    # Set when the platform rejects the token (401, Graph error 190): the app asks the user
    # to reconnect; collectors skip the account until then.
    sa.Column("needs_reconnect", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("reconnect_reason", sa.Text(), nullable=True),
    _created(),
    _in("platform", PLATFORMS, "platform"),
    sa.UniqueConstraint("platform", "external_account_id"),
    sa.Index(None, "brand_id", "platform"),
)

scheduled_content = sa.Table(
    "scheduled_content",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("media_urls", JSONType, nullable=False, server_default="[]"),
    sa.Column("format", sa.String(20), nullable=False, server_default="text"),
    # Platform-specific options: a Google Business post's topic_type, event, offer and
    # call_to_action (core.publishing, "Google Business Profile posts"); NULL for none.
    sa.Column(
        "publish_options",
        sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql"),
        nullable=True,
    ),
    sa.Column("scheduled_at", UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="scheduled"),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
    sa.Column("external_post_id", sa.String(128), nullable=True),
    sa.Column("published_at", UTCDateTime(), nullable=True),
    sa.Column("last_error", sa.Text(), nullable=True),
    # Publishing lease: the claim token of the attempt that owns the row, and until when.
    sa.Column("claim_token", sa.String(64), nullable=True),
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
    # Committed just before the claiming attempt calls the platform with a request that can
    # publish: an expired claim without it was never sent (scheduled again), one with it
    # may have reached the platform (unknown).
    sa.Column("send_started_at", UTCDateTime(), nullable=True),
    _created(),
    sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    _in("platform", PLATFORMS, "platform"),
    _in("status", SCHEDULED_STATUSES, "status"),
    sa.Index(None, "status", "scheduled_at"),
    sa.Index(None, "brand_id"),
    sa.Index(None, "platform", "send_started_at"),
)

brand_objectives = sa.Table(
    "brand_objectives",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column("metric", sa.String(64), nullable=False),
    sa.Column("platform", sa.String(32), nullable=True),
    sa.Column("baseline_value", sa.Float(), nullable=True),
    sa.Column("target_value", sa.Float(), nullable=False),
    sa.Column("start_date", sa.Date(), nullable=True),
    sa.Column("deadline", sa.Date(), nullable=False),
    _created(),
    sa.Index(None, "brand_id"),
)

# ------------------------------------------------------------------- platform analytics

content_posts = sa.Table(
    "content_posts",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("external_post_id", sa.String(128), nullable=False),
    sa.Column("body", sa.Text(), nullable=False, server_default=""),
    sa.Column("format", sa.String(20), nullable=False, server_default="text"),
    sa.Column("published_at", UTCDateTime(), nullable=False),
    sa.Column("permalink", sa.Text(), nullable=True),
    sa.Column("collected_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    _in("platform", PLATFORMS, "platform"),
    _in("format", POST_FORMATS, "format"),
    sa.UniqueConstraint("platform", "external_post_id"),
    sa.Index(None, "brand_id", "platform", "published_at"),
)

post_metrics = sa.Table(
    "post_metrics",
    metadata,
    sa.Column(
        "post_id",
        sa.String(64),
        sa.ForeignKey("content_posts.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("metric_date", sa.Date(), primary_key=True),
    sa.Column("impressions", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("reach", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("likes", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("comments", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("shares", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("saves", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("clicks", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("video_views", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("collected_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    sa.Index(None, "metric_date"),
)

account_metrics = sa.Table(
    "account_metrics",
    metadata,
    _brand_fk(primary_key=True),
    sa.Column("platform", sa.String(32), primary_key=True),
    sa.Column("metric_date", sa.Date(), primary_key=True),
    sa.Column("followers", sa.Integer(), nullable=False),
    sa.Column("collected_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
)

# Derived per brand, platform and day by the analytics collector.
brand_daily_metrics = sa.Table(
    "brand_daily_metrics",
    metadata,
    _brand_fk(primary_key=True),
    sa.Column("platform", sa.String(32), primary_key=True),
    sa.Column("metric_date", sa.Date(), primary_key=True),
    sa.Column("posts", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("impressions", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("reach", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("engagements", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("clicks", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("engagement_rate", sa.Float(), nullable=True),
    sa.Column("click_through_rate", sa.Float(), nullable=True),
    sa.Column("followers", sa.Integer(), nullable=True),
    sa.Column("follower_growth_1d", sa.Float(), nullable=True),
    sa.Column("follower_growth_7d", sa.Float(), nullable=True),
    sa.Column("follower_growth_30d", sa.Float(), nullable=True),
    sa.Column("computed_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    sa.Index(None, "metric_date"),
)

# ------------------------------------------------------------------------- enrichment

enrichment_cache = sa.Table(
    "enrichment_cache",
    metadata,
    _brand_fk(primary_key=True),
    sa.Column("section", sa.String(20), primary_key=True),
    sa.Column("payload", JSONType, nullable=False),
    sa.Column("generated_by", sa.String(100), nullable=False),
    sa.Column("input_fingerprint", sa.String(64), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=False),
    _in("section", SECTIONS, "section"),
    sa.Index(None, "expires_at"),
)

enrichment_schedule = sa.Table(
    "enrichment_schedule",
    metadata,
    _brand_fk(primary_key=True),
    sa.Column("section", sa.String(20), primary_key=True),
    sa.Column("next_refresh_at", UTCDateTime(), nullable=True),
    sa.Column("refresh_requested_at", UTCDateTime(), nullable=True),
    # Set by a job that detected a significant change (e.g. a competitor price move).
    sa.Column("invalidated_at", UTCDateTime(), nullable=True),
    sa.Column("invalidated_reason", sa.Text(), nullable=True),
    sa.Column("last_refreshed_at", UTCDateTime(), nullable=True),
    _in("section", SECTIONS, "section"),
    sa.Index(None, "refresh_requested_at"),
)

enrichment_logs = sa.Table(
    "enrichment_logs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    _brand_fk(),
    sa.Column("section", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("generated_by", sa.String(100), nullable=True),
    sa.Column("tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("cost_usd", sa.Numeric(12, 6), nullable=False, server_default="0"),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Index(None, "brand_id", "section", "started_at"),
)

# ----------------------------------------------------------------------- intelligence

intelligence_signals = sa.Table(
    "intelligence_signals",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column("signal_type", sa.String(20), nullable=False),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("payload", JSONType, nullable=False, server_default="{}"),
    # Same event seen again updates its row instead of adding one.
    sa.Column("dedup_key", sa.String(200), nullable=False),
    sa.Column("observed_at", UTCDateTime(), nullable=False),
    sa.Column("valid_until", UTCDateTime(), nullable=True),
    sa.Column("strength", sa.Float(), nullable=False, server_default="0"),
    _in("signal_type", SIGNAL_TYPES, "signal_type"),
    sa.UniqueConstraint("brand_id", "signal_type", "dedup_key"),
    sa.Index(None, "brand_id", "signal_type", "observed_at"),
)

intelligence_opportunities = sa.Table(
    "intelligence_opportunities",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column("opportunity_type", sa.String(32), nullable=False),
    sa.Column("title", sa.Text(), nullable=False),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("urgency", sa.String(10), nullable=False),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("predicted_score", sa.Float(), nullable=True),
    sa.Column("detected_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime(), nullable=True),
    sa.Column("status", sa.String(12), nullable=False, server_default="active"),
    sa.Column("dedup_key", sa.String(200), nullable=False),
    sa.Column("evidence", JSONType, nullable=False, server_default="{}"),
    sa.Column("suggested_actions", JSONType, nullable=False, server_default="[]"),
    sa.Column("notified_at", UTCDateTime(), nullable=True),
    _in("opportunity_type", OPPORTUNITY_TYPES, "opportunity_type"),
    _in("urgency", URGENCIES, "urgency"),
    _in("status", OPPORTUNITY_STATUSES, "status"),
    sa.CheckConstraint("score >= 0 AND score <= 1", name="score_range"),
    sa.UniqueConstraint("brand_id", "dedup_key"),
    sa.Index(None, "brand_id", "status", "expires_at"),
)

learning_patterns = sa.Table(
    "learning_patterns",
    metadata,
    _brand_fk(primary_key=True),
    sa.Column("platform", sa.String(32), primary_key=True),
    sa.Column("pattern_type", sa.String(32), primary_key=True),
    sa.Column("pattern_key", sa.String(120), primary_key=True),
    sa.Column("lift", sa.Float(), nullable=False),
    sa.Column("data_points", sa.Integer(), nullable=False),
    sa.Column("confidence", sa.Float(), nullable=False),
    # Beyond the tiers: a significance measure so a big sample with no effect isn't advised.
    sa.Column("p_value", sa.Float(), nullable=True),
    sa.Column("mean_engagement", sa.Float(), nullable=True),
    sa.Column("baseline_engagement", sa.Float(), nullable=True),
    sa.Column("details", JSONType, nullable=False, server_default="{}"),
    sa.Column("computed_at", UTCDateTime(), nullable=False),
    _in("pattern_type", PATTERN_TYPES, "pattern_type"),
)

# ------------------------------------------------------------------------ competitive

competitive_intelligence_snapshots = sa.Table(
    "competitive_intelligence_snapshots",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column(
        "competitor_id",
        sa.String(64),
        sa.ForeignKey("competitors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False, server_default="page"),
    sa.Column("fetched_at", UTCDateTime(), nullable=False),
    sa.Column("status_code", sa.Integer(), nullable=True),
    sa.Column("content_hash", sa.String(64), nullable=True),
    sa.Column("title", sa.Text(), nullable=True),
    sa.Column("meta_description", sa.Text(), nullable=True),
    sa.Column("headlines", JSONType, nullable=False, server_default="[]"),
    sa.Column("prices", JSONType, nullable=False, server_default="[]"),
    sa.Column("products", JSONType, nullable=False, server_default="[]"),
    sa.Column("feed_items", JSONType, nullable=False, server_default="[]"),
    sa.Column("positioning_text", sa.Text(), nullable=True),
    sa.Column("text", sa.Text(), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    # The Dagster run that took it: a retried run replaces its own rows (see monitor.py).
    sa.Column("run_id", sa.String(64), nullable=True),
    # The page's text blocks: [key, kind, text, card] (core.competitive.noise.Block), so a
    # noise mask learned later applies to this snapshot too.
    sa.Column("blocks", JSONType, nullable=True),
    sa.Index(None, "competitor_id", "url", "fetched_at"),
    sa.Index(None, "brand_id", "run_id"),
)

# The noise each watched URL shows by itself (core.competitive.noise.NoiseMask), learned
# from loads of the page taken close together; one row per URL (id: a hash of the URL).
competitive_page_noise = sa.Table(
    "competitive_page_noise",
    metadata,
    _id(),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("mask", JSONType, nullable=False, server_default="{}"),
    sa.Column("loads", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("learned_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

messaging_shifts = sa.Table(
    "messaging_shifts",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column(
        "competitor_id",
        sa.String(64),
        sa.ForeignKey("competitors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("shift_score", sa.Float(), nullable=False),
    sa.Column("terms_gained", JSONType, nullable=False, server_default="[]"),
    sa.Column("terms_lost", JSONType, nullable=False, server_default="[]"),
    sa.Column("before_text", sa.Text(), nullable=True),
    sa.Column("after_text", sa.Text(), nullable=True),
    sa.Column("detected_at", UTCDateTime(), nullable=False),
    sa.Index(None, "brand_id", "detected_at"),
)

competitive_gaps = sa.Table(
    "competitive_gaps",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column("gap_type", sa.String(20), nullable=False),
    sa.Column("gap_key", sa.String(200), nullable=False),
    sa.Column("score", sa.Float(), nullable=False),
    sa.Column("evidence", JSONType, nullable=False, server_default="{}"),
    sa.Column("detected_at", UTCDateTime(), nullable=False),
    sa.Column("status", sa.String(12), nullable=False, server_default="open"),
    sa.UniqueConstraint("brand_id", "gap_type", "gap_key"),
)

# Competitors' own social accounts (Instagram Business Discovery, X user timeline): one row
# per account and run, the recent posts as read (``core.competitive.social.SocialPost``).
competitor_social_snapshots = sa.Table(
    "competitor_social_snapshots",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column(
        "competitor_id",
        sa.String(64),
        sa.ForeignKey("competitors.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("platform", sa.String(20), nullable=False),
    sa.Column("account", sa.String(200), nullable=False),
    sa.Column("fetched_at", UTCDateTime(), nullable=False),
    sa.Column("followers", sa.Integer(), nullable=True),
    sa.Column("post_count", sa.Integer(), nullable=True),
    sa.Column("posts", JSONType, nullable=False, server_default="[]"),
    sa.Column("error", sa.Text(), nullable=True),
    # The Dagster run that took it: a retried run replaces its own row (same id).
    sa.Column("run_id", sa.String(64), nullable=True),
    _in("platform", SOCIAL_PLATFORMS, "platform"),
    sa.Index(None, "competitor_id", "platform", "fetched_at"),
    sa.Index(None, "brand_id", "run_id"),
)

# ------------------------------------------------------------------------- publishing

publish_events = sa.Table(
    "publish_events",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column(
        "scheduled_content_id",
        sa.String(64),
        sa.ForeignKey("scheduled_content.id", ondelete="CASCADE"),
        nullable=False,
    ),
    _brand_fk(),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("attempt", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("external_post_id", sa.String(128), nullable=True),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Column("claim_token", sa.String(64), nullable=True),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Index(None, "scheduled_content_id"),
)

# ------------------------------------------------------------------------- engagement

engagement_inbox = sa.Table(
    "engagement_inbox",
    metadata,
    _id(),
    _brand_fk(),
    sa.Column("platform", sa.String(32), nullable=False),
    sa.Column("item_type", sa.String(20), nullable=False),
    sa.Column("external_id", sa.String(200), nullable=False),
    sa.Column("parent_external_id", sa.String(200), nullable=True),
    sa.Column("author", sa.String(200), nullable=True),
    sa.Column("author_followers", sa.Integer(), nullable=True),
    sa.Column("body", sa.Text(), nullable=False, server_default=""),
    sa.Column("rating", sa.Integer(), nullable=True),
    sa.Column("received_at", UTCDateTime(), nullable=False),
    sa.Column("sentiment_score", sa.Float(), nullable=True),
    sa.Column("sentiment_label", sa.String(10), nullable=True),
    sa.Column("priority", sa.String(10), nullable=True),
    sa.Column("priority_score", sa.Float(), nullable=True),
    sa.Column("status", sa.String(20), nullable=False, server_default="new"),
    sa.Column("notified_at", UTCDateTime(), nullable=True),
    sa.Column("collected_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    _in("item_type", INBOX_ITEM_TYPES, "item_type"),
    sa.UniqueConstraint("platform", "external_id"),
    sa.Index(None, "brand_id", "status", "priority_score"),
)

# ----------------------------------------------------------------------- job tracking

background_jobs = sa.Table(
    "background_jobs",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("alias", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.Text(), nullable=False, server_default=""),
    sa.Column("status", sa.String(20), nullable=False, server_default="active"),
    sa.Column("cron", sa.String(64), nullable=False),
    sa.Column("circuit_opened_at", UTCDateTime(), nullable=True),
    sa.Column("circuit_reason", sa.Text(), nullable=True),
    sa.Column("probe_run_id", sa.String(64), nullable=True),
    # The circuit breaker counts only runs started after this (set when a probe closes it).
    sa.Column("circuit_reset_at", UTCDateTime(), nullable=True),
    sa.Column("health", sa.String(20), nullable=True),
    # The newest execution of the job (kept with job_executions, whichever way it started).
    sa.Column("last_run_id", sa.String(64), nullable=True),
    sa.Column("last_run_status", sa.String(20), nullable=True),
    sa.Column("last_run_started_at", UTCDateTime(), nullable=True),
    sa.Column("last_run_finished_at", UTCDateTime(), nullable=True),
    sa.Column("last_run_error", sa.Text(), nullable=True),
    sa.Column("last_success_at", UTCDateTime(), nullable=True),
    sa.Column("updated_at", UTCDateTime(), nullable=False, server_default=sa.func.now()),
    _in("status", JOB_STATES, "status"),
)

job_executions = sa.Table(
    "job_executions",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("job_name", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("trigger", sa.String(40), nullable=True),
    sa.Column("partition_key", sa.String(200), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("duration_seconds", sa.Float(), nullable=True),
    sa.Column("brands_processed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("brands_failed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Index(None, "job_name", "started_at"),
)

# One row per run of a tick split into brand shards (core/shards.py): the per-shard detail of
# the tick's one job_executions row (whose run_id is the tick's id, ``<job>:<tick time>``).
job_execution_shards = sa.Table(
    "job_execution_shards",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("execution_id", sa.String(64), nullable=False),
    sa.Column("job_name", sa.String(64), nullable=False),
    sa.Column("shard_index", sa.Integer(), nullable=False),
    sa.Column("shard_count", sa.Integer(), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("trigger", sa.String(40), nullable=True),
    sa.Column("partition_key", sa.String(200), nullable=True),
    sa.Column("started_at", UTCDateTime(), nullable=True),
    sa.Column("finished_at", UTCDateTime(), nullable=True),
    sa.Column("duration_seconds", sa.Float(), nullable=True),
    sa.Column("brands_processed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("brands_failed", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("error", sa.Text(), nullable=True),
    sa.Index(None, "execution_id", "shard_index"),
)

job_logs = sa.Table(
    "job_logs",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("job_name", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("level", sa.String(10), nullable=False),
    _brand_fk(nullable=True),
    sa.Column("message", sa.Text(), nullable=False),
    sa.Column("context", JSONType, nullable=False, server_default="{}"),
    _created(),
    sa.Index(None, "job_name", "created_at"),
    sa.Index(None, "created_at"),
)

api_billing_tracker = sa.Table(
    "api_billing_tracker",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    _brand_fk(nullable=True),
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("operation", sa.String(100), nullable=False),
    sa.Column("model", sa.String(100), nullable=True),
    sa.Column("input_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("output_tokens", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("cost_usd", sa.Numeric(14, 6), nullable=False, server_default="0"),
    sa.Column("run_id", sa.String(64), nullable=True),
    sa.Column("occurred_at", UTCDateTime(), nullable=False),
    sa.Index(None, "brand_id", "occurred_at"),
    sa.Index(None, "occurred_at"),
)

# Every outbound alert, keyed so the same event is pushed once however often it is seen.
notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("dedup_key", sa.String(200), nullable=False, unique=True),
    sa.Column("kind", sa.String(40), nullable=False),
    _brand_fk(nullable=True),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("error", sa.Text(), nullable=True),
    # Webhook pushes tried so far; a failed push is tried again up to a bound (alerts.py).
    sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    # When the current push was claimed: a ``sending`` row older than the lease belongs to a
    # worker that stopped mid-push, and is released for another attempt (alerts.py).
    sa.Column("claimed_at", UTCDateTime(), nullable=True),
    _created(),
)
