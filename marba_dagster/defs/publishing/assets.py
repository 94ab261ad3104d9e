"""auto_publisher: publishes due scheduled content exactly once (``publishing/published_posts``).

The publisher is :mod:`marba_dagster.services.publishing`; this module wires it to Dagster:
the asset and its ``all_brands_processed`` check (a brand with a post that failed, was
missed or became unknown in the run is named with those posts and their reasons, read from
the run's ``publish_events``). The check that surfaces posts needing a person is in
``checks.py``, the ``publisher_settings`` resource in ``resources.py``.
"""

import dagster as dg

from marba_dagster.core.markdown import markdown_table
from marba_dagster.defs import execution
from marba_dagster.defs.batches import (
    BrandBatch,
    completeness_check_specs,
    is_narrowed,
    scoped_brand_ids,
)
from marba_dagster.defs.execution import PLATFORM_RETRY
from marba_dagster.defs.publishing.resources import PublisherSettings
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.services.publishing import (
    publish_due_posts,
    single_attempt_client,
    unpublished_by_brand,
)
from marba_dagster.store import publishing as store_publishing

DOMAIN = "publishing"  # the asset key's prefix and the asset group
PUBLISHED_POSTS = dg.AssetKey([DOMAIN, "published_posts"])
# Unpublished posts listed in the materialization's metadata.
UNPUBLISHED_LISTED = 50


@dg.asset(
    key=PUBLISHED_POSTS,
    group_name=DOMAIN,
    kinds={"python", "sql"},
    pool=execution.PLATFORM_PUBLISH_POOL,
    check_specs=completeness_check_specs(PUBLISHED_POSTS),
    retry_policy=PLATFORM_RETRY,
)
def published_posts(
    context: dg.AssetExecutionContext,
    marba_db: MarbaDatabase,
    graph_api: ApiEndpoint,
    x_api: ApiEndpoint,
    gbp_api: ApiEndpoint,
    notifier: Notifier,
    publisher_settings: PublisherSettings,
) -> dg.MaterializeResult:
    """Publishes every due scheduled post (scheduled_at up to 5 minutes ahead, including
    catch-up) exactly once to Facebook, Instagram, X and Google Business Profile (local
    posts: standard, event, offer); posts a platform would refuse (length, media URL,
    format) fail before they are claimed; per-account and per-app limits and 429s defer
    only that account's posts; records every attempt in
    publish_events. Posts later than the maximum lateness fail as missed; unknowable
    outcomes become 'unknown' and are alerted, never retried automatically. A brand with a
    post that failed, was missed or became unknown in the run is named, with those posts
    and their reasons, by the all_brands_processed check (WARN)."""
    brand_ids = scoped_brand_ids(context, marba_db) if is_narrowed(context) else None
    with (
        single_attempt_client(graph_api.base_url, graph_api.policy(), "graph_publish") as graph,
        single_attempt_client(x_api.base_url, x_api.policy(), "x_publish") as x,
        single_attempt_client(gbp_api.base_url, gbp_api.policy(), "gbp_publish") as gbp,
    ):
        summary = publish_due_posts(
            marba_db.engine,
            graph,
            x,
            publisher_settings.config(),
            gbp=gbp,
            run_id=context.run.run_id,
            brand_ids=brand_ids,
            webhook_url=notifier.webhook_url,
            logger=context.log,
        )
    with marba_db.connect() as conn:
        posts = unpublished_by_brand(store_publishing.run_post_outcomes(conn, context.run.run_id))
        backlog = store_publishing.backlog(conn)
    batch = BrandBatch(context, marba_db)
    for brand_id, problem in posts.problems.items():
        if problem:
            # Not raised: the other brands' posts are out; the check names these.
            batch.record_failure(brand_id, problem)
        else:
            batch.succeeded.append(brand_id)
    context.log.info(f"publisher run: {summary.as_metadata()}")
    return dg.MaterializeResult(
        metadata={
            **summary.as_metadata(),
            **batch.metadata(),
            "still_scheduled": backlog.get("scheduled", 0),
            "unpublished_posts": dg.MetadataValue.json(posts.unpublished[:UNPUBLISHED_LISTED]),
            "unknown_total": backlog.get("unknown", 0),
            "preview": dg.MetadataValue.md(
                markdown_table(
                    summary.rows,
                    ["id", "platform", "status", "external_post_id", "lateness_s", "error"],
                )
            ),
        },
        check_results=batch.check_results(PUBLISHED_POSTS),
    )
