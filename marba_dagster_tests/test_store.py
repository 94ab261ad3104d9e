"""The MARBA schema: migrations on both databases, drift, portable writes."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from marba_dagster.store import migrate
from marba_dagster.store import schema as s
from marba_dagster.store.db import (
    DatabaseError,
    check_connection,
    make_engine,
    normalise_url,
    redact_url,
    upsert,
)
from marba_dagster_tests.conftest import create_pg_database, drop_pg_database, require_postgres

CONTRACT = {
    "brands": {
        "id",
        "name",
        "industry",
        "country_code",
        "subdivision",
        "city",
        "latitude",
        "longitude",
        "timezone",
        "keywords",
        "is_active",
        "monthly_ai_budget_usd",
    },
    "competitors": {
        "id",
        "brand_id",
        "name",
        "website_url",
        "watch_urls",
        "feed_url",
        "social_accounts",
        "is_active",
    },
    "platform_accounts": {
        "id",
        "brand_id",
        "platform",
        "external_account_id",
        "access_token",
        "token_expires_at",
        "is_active",
    },
    "scheduled_content": {
        "id",
        "brand_id",
        "platform",
        "body",
        "media_urls",
        "scheduled_at",
        "status",
        "attempts",
        "next_attempt_at",
        "external_post_id",
        "published_at",
        "last_error",
    },
    "brand_objectives": {"brand_id", "metric", "target_value", "deadline"},
    "content_posts": {
        "id",
        "brand_id",
        "platform",
        "external_post_id",
        "body",
        "format",
        "published_at",
    },
    "post_metrics": {
        "post_id",
        "metric_date",
        "impressions",
        "reach",
        "likes",
        "comments",
        "shares",
        "saves",
        "clicks",
        "video_views",
    },
    "account_metrics": {"brand_id", "platform", "metric_date", "followers"},
    "enrichment_cache": {
        "brand_id",
        "section",
        "payload",
        "generated_by",
        "input_fingerprint",
        "created_at",
        "expires_at",
    },
    "enrichment_schedule": {"brand_id", "section", "next_refresh_at", "refresh_requested_at"},
    "enrichment_logs": {
        "brand_id",
        "section",
        "status",
        "generated_by",
        "tokens",
        "cost_usd",
        "error",
        "started_at",
        "finished_at",
    },
    "intelligence_signals": {
        "id",
        "brand_id",
        "signal_type",
        "source",
        "title",
        "payload",
        "observed_at",
        "valid_until",
        "strength",
    },
    "intelligence_opportunities": {
        "id",
        "brand_id",
        "opportunity_type",
        "title",
        "description",
        "urgency",
        "score",
        "detected_at",
        "expires_at",
        "status",
        "dedup_key",
        "evidence",
        "suggested_actions",
    },
    "learning_patterns": {
        "brand_id",
        "platform",
        "pattern_type",
        "pattern_key",
        "lift",
        "data_points",
        "confidence",
        "computed_at",
    },
    "competitive_intelligence_snapshots": set(),
    "messaging_shifts": set(),
    "competitive_gaps": set(),
    "publish_events": {
        "scheduled_content_id",
        "brand_id",
        "platform",
        "attempt",
        "status",
        "external_post_id",
        "error",
        "occurred_at",
    },
    "engagement_inbox": {
        "brand_id",
        "platform",
        "item_type",
        "external_id",
        "author",
        "body",
        "rating",
        "received_at",
        "sentiment_score",
        "sentiment_label",
        "priority",
        "priority_score",
        "status",
    },
    "background_jobs": {"name", "status", "cron"},
    "job_executions": {
        "job_name",
        "run_id",
        "status",
        "started_at",
        "finished_at",
        "brands_processed",
        "brands_failed",
        "error",
    },
    "job_logs": {"job_name", "run_id", "level", "brand_id", "message", "created_at"},
    "api_billing_tracker": {
        "brand_id",
        "provider",
        "operation",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "occurred_at",
    },
}


def test_schema_holds_the_design_contract():
    for table, columns in CONTRACT.items():
        assert table in s.metadata.tables, table
        missing = columns - set(s.metadata.tables[table].c.keys())
        assert not missing, f"{table} lacks {missing}"


def _fresh_url(backend: str, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    require_postgres()
    return create_pg_database("marba_migr")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_migrations_upgrade_from_empty_match_tables_and_downgrade_to_base(backend, tmp_path):
    url = _fresh_url(backend, tmp_path)
    engine = make_engine(url)
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.is_up_to_date(engine)
        assert set(s.metadata.tables) <= set(migrate.table_names(engine))
        # Drift: the migrated database must equal the table definitions.
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, s.metadata)
        assert diff == [], f"migrations and schema.py drifted apart: {diff}"
        migrate.downgrade(engine, "base")
        assert migrate.table_names(engine) == ["alembic_version"]
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)  # and back up again
        assert migrate.is_up_to_date(engine)
    finally:
        engine.dispose()
        if backend == "postgresql":
            drop_pg_database(url)


def _brand(i: int, **kw) -> dict:
    row = {
        "id": f"b{i}",
        "name": f"Brand {i}",
        "industry": "coffee shop",
        "timezone": "Europe/Oslo",
        "keywords": ["coffee", "latte"],
        "monthly_ai_budget_usd": 10,
    }
    row.update(kw)
    return row


def test_upsert_inserts_then_updates_identically(engine):
    with engine.begin() as conn:
        assert upsert(conn, s.brands, [_brand(1), _brand(2)], ["id"]) == 2
        upsert(conn, s.brands, [_brand(1, name="Renamed"), _brand(3)], ["id"], ["name"])
        upsert(conn, s.brands, [_brand(2, name="Ignored")], ["id"], [])
    with engine.connect() as conn:
        names = dict(conn.execute(sa.select(s.brands.c.id, s.brands.c.name)).all())
        keywords = conn.execute(
            sa.select(s.brands.c.keywords).where(s.brands.c.id == "b1")
        ).scalar()
    assert names == {"b1": "Renamed", "b2": "Brand 2", "b3": "Brand 3"}
    assert keywords == ["coffee", "latte"]


def test_upsert_chunks_large_batches(engine):
    rows = [_brand(i) for i in range(2500)]
    with engine.begin() as conn:
        upsert(conn, s.brands, rows, ["id"])
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.brands)).scalar() == 2500


def test_timestamps_round_trip_as_aware_utc(engine):
    oslo_noon = datetime(2026, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        upsert(conn, s.brands, [_brand(1)], ["id"])
        conn.execute(
            s.scheduled_content.insert().values(
                id="p1", brand_id="b1", platform="x", body="hi", scheduled_at=oslo_noon
            )
        )
    with engine.connect() as conn:
        value = conn.execute(sa.select(s.scheduled_content.c.scheduled_at)).scalar()
    assert value.tzinfo is not None
    assert value == oslo_noon
    assert value.utcoffset() == timedelta(0)
    with engine.begin() as conn, pytest.raises(Exception, match="naive"):
        conn.execute(
            s.scheduled_content.insert().values(
                id="p2", brand_id="b1", platform="x", body="hi", scheduled_at=datetime(2026, 1, 1)
            )
        )


def test_constraints_reject_values_outside_the_contract(engine):
    with engine.begin() as conn:
        upsert(conn, s.brands, [_brand(1)], ["id"])
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(
            s.scheduled_content.insert().values(
                id="p1",
                brand_id="b1",
                platform="myspace",
                body="x",
                scheduled_at=datetime.now(timezone.utc),
            )
        )
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:  # foreign key to brands
        conn.execute(s.competitors.insert().values(id="c1", brand_id="nope", name="C"))


def test_deleting_a_brand_cascades(engine):
    with engine.begin() as conn:
        upsert(conn, s.brands, [_brand(1)], ["id"])
        conn.execute(s.competitors.insert().values(id="c1", brand_id="b1", name="C"))
        conn.execute(s.brands.delete().where(s.brands.c.id == "b1"))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(s.competitors)).scalar() == 0


def test_bad_urls_give_clear_errors_without_secrets():
    with pytest.raises(DatabaseError, match="unsupported database"):
        make_engine("mysql://u:pw@localhost/x")
    engine = make_engine(
        "postgresql://marba:hunter2@127.0.0.1:1/none", connect_args={"connect_timeout": 2}
    )
    with pytest.raises(DatabaseError) as err:
        check_connection(engine)
    assert "hunter2" not in str(err.value)
    assert "cannot connect" in str(err.value)
    assert normalise_url("postgres://a@h/db") == "postgresql+psycopg2://a@h/db"
    assert "hunter2" not in redact_url("postgresql://marba:hunter2@h/db")
