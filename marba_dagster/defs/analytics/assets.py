"""analytics_collector: platform posts and metrics per UTC day, and derived brand metrics.

``platform_metrics`` fetches every connected Facebook Page, Instagram account and X account
of the run's brands through the Graph API and X API v2 and upserts ``content_posts``,
``post_metrics`` (one lifetime snapshot per post and day, for posts of the last
``LOOKBACK_DAYS`` days) and ``account_metrics``. ``brand_daily_metrics`` derives engagement
rate, click-through rate and follower growth per brand, platform and day (definitions in
``core.analytics``). Both are daily-partitioned with a single-run backfill policy: a date
range is collected in one run (one fetch per account for the whole range).
"""

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from marba_dagster.connectors.graph import GraphClient
from marba_dagster.connectors.x import XClient
from marba_dagster.core.analytics import COUNT_COLUMNS, daily_brand_metrics, quality_problems
from marba_dagster.defs import pools
from marba_dagster.defs.analytics.collect import AccountsFailed, fetch_brand, lost_apis, write_brand
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.metadata import markdown_table
from marba_dagster.defs.partitions import daily_partitions
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase
from marba_dagster.defs.retries import PLATFORM_RETRY
from marba_dagster.services.prefetch import prefetch
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert
from marba_dagster.store.types import utcnow

RETRY = PLATFORM_RETRY
CHECK_WINDOW_DAYS = 35


def run_days(context: dg.AssetExecutionContext) -> list[date]:
    """The UTC days this run covers (one partition, or a whole backfill range)."""
    window = context.partition_time_window
    days, d = [], window.start.date()
    while d < window.end.date():
        days.append(d)
        d += timedelta(days=1)
    return days


@dg.asset(
    group_name="analytics",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    retry_policy=RETRY,
    kinds={"python", "sql"},
    pool=pools.PLATFORM_READS,
    check_specs=completeness_check_specs("platform_metrics", sources=True),
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
    outcomes = []
    with graph_api.client("graph") as gclient, x_api.client("x") as xclient:
        graph, x = GraphClient(gclient), XClient(xclient)
        today = utcnow().date()

        def fetch(brand_id: str):
            return fetch_brand(brand_id, begin=marba_db.begin, graph=graph, x=x, days=days)

        def write(fut):
            outcome = write_brand(
                fut.result(), begin=marba_db.begin, days=days, today=today, log=batch.log
            )
            outcomes.append(outcome)
            if outcome.failed:
                # The brand's other accounts are written; the brand still shows as failed.
                raise AccountsFailed(
                    "; ".join(
                        f"{a.platform} account {a.account_id}: {a.cause}" for a in outcome.failed
                    )
                )
            return outcome

        # The platform calls of several brands overlap (I/O-bound); writes and bookkeeping
        # stay on this thread, brand by brand, in order.
        for brand_id, fut in prefetch(brands, fetch):
            batch.run(brand_id, lambda f=fut: write(f))
        for api, (error, brand_ids) in lost_apis(outcomes).items():
            batch.lose_source(api, error, brand_ids)
        http = {f"graph_{k}": v for k, v in gclient.metrics().items()}
        http.update({f"x_{k}": v for k, v in xclient.metrics().items()})
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
        "requests": int(http.get("graph_requests_sent", 0) + http.get("x_requests_sent", 0)),
        "preview": dg.MetadataValue.md(
            markdown_table(
                rows, ["brand", "platform", "status", "posts", "metric_rows", "followers"]
            )
        ),
    }
    batch.finish()
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results("platform_metrics", sources=True)
    )


def _posts_with_latest_metrics(conn, brand_ids: list[str], start, end) -> pd.DataFrame:
    cp, pm = s.content_posts, s.post_metrics
    latest = (
        sa.select(pm.c.post_id, sa.func.max(pm.c.metric_date).label("d"))
        .join(cp, cp.c.id == pm.c.post_id)
        .where(cp.c.brand_id.in_(brand_ids), cp.c.published_at >= start, cp.c.published_at < end)
        .group_by(pm.c.post_id)
        .subquery()
    )
    q = sa.select(
        cp.c.brand_id, cp.c.platform, cp.c.published_at, *[pm.c[c] for c in COUNT_COLUMNS]
    ).select_from(
        cp.join(latest, latest.c.post_id == cp.c.id).join(
            pm, sa.and_(pm.c.post_id == latest.c.post_id, pm.c.metric_date == latest.c.d)
        )
    )
    rows = conn.execute(q).all()
    return pd.DataFrame(rows, columns=["brand_id", "platform", "published_at", *COUNT_COLUMNS])


@dg.asset(
    group_name="analytics",
    partitions_def=daily_partitions,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[platform_metrics],
    kinds={"python", "pandas", "sql"},
    check_specs=completeness_check_specs("brand_daily_metrics"),
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
    start = pd.Timestamp(days[0], tz="UTC").to_pydatetime()
    end = pd.Timestamp(days[-1] + timedelta(days=1), tz="UTC").to_pydatetime()
    all_rows: list[dict] = []

    def one(brand_id: str) -> int:
        with marba_db.begin() as conn:
            posts = _posts_with_latest_metrics(conn, [brand_id], start, end)
            am = s.account_metrics
            fol = pd.DataFrame(
                conn.execute(
                    sa.select(am.c.brand_id, am.c.platform, am.c.metric_date, am.c.followers).where(
                        am.c.brand_id == brand_id,
                        am.c.metric_date >= days[0] - timedelta(days=30),
                        am.c.metric_date <= days[-1],
                    )
                ).all(),
                columns=["brand_id", "platform", "metric_date", "followers"],
            )
            daily = daily_brand_metrics(posts, fol, days)
            rows = [
                {k: (None if isinstance(v, float) and pd.isna(v) else v) for k, v in r.items()}
                | {"computed_at": utcnow()}
                for r in daily.to_dict("records")
            ]
            for r in rows:
                r["followers"] = None if r["followers"] is None else int(r["followers"])
            upsert(conn, s.brand_daily_metrics, rows, ["brand_id", "platform", "metric_date"])
            all_rows.extend(rows)
            return len(rows)

    for brand_id in brands:
        batch.run(brand_id, lambda b=brand_id: one(b))
    rates = [r["engagement_rate"] for r in all_rows if r["engagement_rate"] is not None]
    ctrs = [r["click_through_rate"] for r in all_rows if r["click_through_rate"] is not None]
    preview = sorted(all_rows, key=lambda r: (str(r["metric_date"]), r["brand_id"], r["platform"]))
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
        metadata=metadata, check_results=batch.check_results("brand_daily_metrics")
    )


# ------------------------------------------------------------------------ asset checks


def _since() -> date:
    return utcnow().date() - timedelta(days=CHECK_WINDOW_DAYS)


@dg.asset_check(asset=platform_metrics, description="No negative count in post or account metrics.")
def no_negative_counts(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    pm, am = s.post_metrics, s.account_metrics
    with marba_db.connect() as conn:
        bad_posts = conn.execute(
            sa.select(sa.func.count())
            .select_from(pm)
            .where(sa.or_(*[pm.c[c] < 0 for c in COUNT_COLUMNS]))
        ).scalar_one()
        bad_accounts = conn.execute(
            sa.select(sa.func.count()).select_from(am).where(am.c.followers < 0)
        ).scalar_one()
    return dg.AssetCheckResult(
        passed=bad_posts == 0 and bad_accounts == 0,
        metadata={"negative_post_metric_rows": bad_posts, "negative_follower_rows": bad_accounts},
    )


@dg.asset_check(
    asset=platform_metrics,
    description="At most one post_metrics row per (post, date) and one post per platform id.",
)
def no_duplicate_post_dates(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    pm, cp = s.post_metrics, s.content_posts
    with marba_db.connect() as conn:
        dup_metrics = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(pm.c.post_id, pm.c.metric_date)
                .where(pm.c.metric_date >= _since())
                .group_by(pm.c.post_id, pm.c.metric_date)
                .having(sa.func.count() > 1)
                .subquery()
            )
        ).scalar_one()
        dup_posts = conn.execute(
            sa.select(sa.func.count()).select_from(
                sa.select(cp.c.platform, cp.c.external_post_id)
                .group_by(cp.c.platform, cp.c.external_post_id)
                .having(sa.func.count() > 1)
                .subquery()
            )
        ).scalar_one()
    return dg.AssetCheckResult(
        passed=dup_metrics == 0 and dup_posts == 0,
        metadata={"duplicate_post_dates": dup_metrics, "duplicate_external_posts": dup_posts},
    )


@dg.asset_check(
    asset=brand_daily_metrics,
    description="Rates within bounds: engagement rate and CTR in [0, 1], follower growth >= -100%, no negative counts.",
)
def rates_within_bounds(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    bdm = s.brand_daily_metrics
    with marba_db.connect() as conn:
        daily = pd.DataFrame(
            conn.execute(sa.select(bdm).where(bdm.c.metric_date >= _since())).mappings().all()
        )
    problems = quality_problems(daily) if not daily.empty else []
    if not daily.empty:
        for c in ("posts", "impressions", "reach", "engagements", "clicks"):
            n = int((daily[c] < 0).sum())
            if n:
                problems.append(f"{n} rows with negative {c}")
    return dg.AssetCheckResult(
        passed=not problems,
        metadata={"rows_checked": len(daily), "problems": dg.MetadataValue.json(problems)},
    )
