"""Checks of the analytics tables: counts never negative, one snapshot per post and day,
rates within bounds (the SQL is ``store.analytics``)."""

from datetime import date, timedelta

import dagster as dg

from marba_dagster.core.analytics import quality_problems
from marba_dagster.defs.analytics.assets import BRAND_DAILY_METRICS, PLATFORM_METRICS
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import analytics as store
from marba_dagster.store.types import utcnow

# Rows checked: the metric dates of this many last days.
CHECK_WINDOW_DAYS = 35
DAILY_COUNT_COLUMNS = ("posts", "impressions", "reach", "engagements", "clicks")


def _since() -> date:
    return utcnow().date() - timedelta(days=CHECK_WINDOW_DAYS)


@dg.asset_check(asset=PLATFORM_METRICS, description="No negative count in post or account metrics.")
def no_negative_counts(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    with marba_db.connect() as conn:
        bad_posts, bad_accounts = store.negative_counts(conn)
    return dg.AssetCheckResult(
        passed=bad_posts == 0 and bad_accounts == 0,
        metadata={"negative_post_metric_rows": bad_posts, "negative_follower_rows": bad_accounts},
    )


@dg.asset_check(
    asset=PLATFORM_METRICS,
    description="At most one post_metrics row per (post, date) and one post per platform id.",
)
def no_duplicate_post_dates(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    with marba_db.connect() as conn:
        dup_metrics, dup_posts = store.duplicate_counts(conn, _since())
    return dg.AssetCheckResult(
        passed=dup_metrics == 0 and dup_posts == 0,
        metadata={"duplicate_post_dates": dup_metrics, "duplicate_external_posts": dup_posts},
    )


@dg.asset_check(
    asset=BRAND_DAILY_METRICS,
    description="Rates within bounds: engagement rate and CTR in [0, 1], follower growth >= "
    "-100%, no negative counts.",
)
def rates_within_bounds(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    with marba_db.connect() as conn:
        daily = store.daily_metrics_since(conn, _since())
    problems = quality_problems(daily) if not daily.empty else []
    if not daily.empty:
        for c in DAILY_COUNT_COLUMNS:
            n = int((daily[c] < 0).sum())
            if n:
                problems.append(f"{n} rows with negative {c}")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"rows_checked": len(daily), "problems": dg.MetadataValue.json(problems)},
    )
