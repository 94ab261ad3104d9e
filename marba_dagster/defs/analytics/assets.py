"""analytics_collector: platform posts and metrics per UTC day, and derived brand metrics.

``analytics/platform_metrics`` fetches every connected Facebook Page, Instagram account and
X account of the run's brands through the Graph API and X API v2 and upserts
``content_posts``, ``post_metrics`` (one lifetime snapshot per post and day, for posts of the
last ``LOOKBACK_DAYS`` days) and ``account_metrics``. ``analytics/brand_daily_metrics``
derives engagement rate, click-through rate and follower growth per brand, platform and day
(definitions in ``core.analytics``). Both are daily-partitioned with a single-run backfill
policy: a date range is collected in one run (one fetch per account for the whole range).
The work itself is ``services.analytics``; the checks are in ``checks.py``.
"""

from datetime import date, timedelta
from functools import partial

import dagster as dg

from marba_dagster.connectors.graph import GraphClient
from marba_dagster.connectors.x import XClient
from marba_dagster.core.markdown import markdown_table
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.execution import PLATFORM_READS_POOL, PLATFORM_RETRY
from marba_dagster.defs.partitions import daily_partitions
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase
from marba_dagster.services.analytics import (
    derive_daily_metrics,
    fetch_brand,
    lost_apis,
    write_brand,
)
from marba_dagster.services.prefetch import prefetch
from marba_dagster.store.types import utcnow

GROUP = "analytics"
PLATFORM_METRICS = dg.AssetKey([GROUP, "platform_metrics"])
BRAND_DAILY_METRICS = dg.AssetKey([GROUP, "brand_daily_metrics"])


def preview_order(row: dict) -> tuple:
    """Daily metrics rows by day, brand and platform."""
    return str(row["metric_date"]), row["brand_id"], row["platform"]


def run_days(context: dg.AssetExecutionContext) -> list[date]:
    """The UTC days this run covers (one partition, or a whole backfill range)."""
    window = context.partition_time_window
    days, d = [], window.start.date()
    while d < window.end.date():
        days.append(d)
        d += timedelta(days=1)
    return days


@dg.asset(
    key=PLATFORM_METRICS,
    group_name=GROUP,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=PLATFORM_RETRY,
    kinds={"python", "sql"},
    pool=PLATFORM_READS_POOL,
    check_specs=completeness_check_specs(PLATFORM_METRICS, sources=True),
)
def platform_metrics(
    context: dg.AssetExecutionContext,
    marba_db: MarbaDatabase,
    graph_api: ApiEndpoint,
    x_api: ApiEndpoint,
) -> dg.MaterializeResult:
    """Posts, post metrics and followers from Facebook, Instagram and X for the run's days.

    A brand with an account that could not be collected shows in ``all_brands_processed``
    (its other accounts are written); a platform API that failed for every account asked
    shows in ``sources_available``."""
    days = run_days(context)
    brands = scoped_brand_ids(context, marba_db)
    batch = BrandBatch(context, marba_db)
    engine = marba_db.engine
    today = utcnow().date()
    outcomes = []
    with graph_api.client("graph") as gclient, x_api.client("x") as xclient:
        fetch = partial(
            fetch_brand, engine=engine, graph=GraphClient(gclient), x=XClient(xclient), days=days
        )
        # The platform calls of several brands overlap (I/O-bound); writes and bookkeeping
        # stay on this thread, brand by brand, in order.
        for brand_id, fetched in prefetch(brands, fetch):
            with batch.brand(brand_id):
                answer = fetched.result()
                batch.row_problems(answer.problems)  # account rows unusable as stored
                outcome = write_brand(answer, engine=engine, days=days, today=today, log=batch.log)
                outcomes.append(outcome)
                outcome.raise_if_failed()
        for api, (error, brand_ids) in lost_apis(outcomes).items():
            batch.lose_source(api, error, brand_ids)
        requests = gclient.metrics().get("requests_sent", 0) + xclient.metrics().get(
            "requests_sent", 0
        )
        rate_limited = gclient.rate_limited() + xclient.rate_limited()
    accounts = [a for o in outcomes for a in o.accounts]
    rows = [
        {
            "brand": o.brand_id,
            "platform": a.platform,
            "status": a.status,
            "posts": a.posts,
            "metric_rows": a.metric_rows,
            "followers": a.followers if a.followers is not None else "",
        }
        for o in outcomes
        for a in o.accounts
    ]
    metadata = {
        **batch.metadata(),
        "days": len(days),
        "first_day": str(days[0]),
        "last_day": str(days[-1]),
        "brands": len(brands),
        "accounts": len(accounts),
        "accounts_needing_reconnect": sum(a.status == "reconnect" for a in accounts),
        "accounts_failed": sum(a.status == "failed" for a in accounts),
        "posts": sum(a.posts for a in accounts),
        "rows": sum(a.metric_rows for a in accounts),
        "requests": int(requests),
        "preview": dg.MetadataValue.md(
            markdown_table(
                rows, ["brand", "platform", "status", "posts", "metric_rows", "followers"]
            )
        ),
    }
    batch.finish(rate_limited=rate_limited)  # a rate-limited step waits, never hammers
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results(PLATFORM_METRICS, sources=True)
    )


@dg.asset(
    key=BRAND_DAILY_METRICS,
    group_name=GROUP,
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[PLATFORM_METRICS],
    kinds={"python", "pandas", "sql"},
    check_specs=completeness_check_specs(BRAND_DAILY_METRICS),
)
def brand_daily_metrics(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase
) -> dg.MaterializeResult:
    """Engagement rate ((likes+comments+shares+saves)/reach, else /impressions), click-through
    rate (clicks/impressions) and follower growth over 1, 7 and 30 days, per brand, platform
    and UTC day (posts count for the day they were published, with their latest metrics)."""
    days = run_days(context)
    brands = scoped_brand_ids(context, marba_db)
    batch = BrandBatch(context, marba_db)
    all_rows: list[dict] = []
    for brand_id in brands:
        with batch.brand(brand_id):
            all_rows.extend(derive_daily_metrics(marba_db.engine, brand_id, days))
    rates = [r["engagement_rate"] for r in all_rows if r["engagement_rate"] is not None]
    ctrs = [r["click_through_rate"] for r in all_rows if r["click_through_rate"] is not None]
    preview = sorted(all_rows, key=preview_order)
    metadata = {
        **batch.metadata(),
        "rows": len(all_rows),
        "brands": len({r["brand_id"] for r in all_rows}),
        "days": len(days),
        "posts": int(sum(r["posts"] for r in all_rows)),
        "mean_engagement_rate": float(sum(rates) / len(rates)) if rates else 0.0,
        "mean_click_through_rate": float(sum(ctrs) / len(ctrs)) if ctrs else 0.0,
        "preview": dg.MetadataValue.md(
            markdown_table(
                preview,
                [
                    "metric_date",
                    "brand_id",
                    "platform",
                    "posts",
                    "engagement_rate",
                    "click_through_rate",
                    "followers",
                    "follower_growth_7d",
                ],
            )
        ),
    }
    batch.finish()
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results(BRAND_DAILY_METRICS)
    )
