"""engagement_collector: comments, mentions, direct messages and reviews into
``engagement_inbox`` with sentiment and priority (group ``engagement``, hourly partitions).

Each hourly partition collects what the platforms hold up to the end of its hour
(``services.engagement``: what is read, how it is scored and stored, the urgent pushes).

A brand with an account that could not be read shows in ``all_brands_processed``; a platform
API that failed for every account asked shows in ``sources_available``; ``inbox_items_valid``
(``checks.py``) checks the sentiment and priority of the items collected in the last day.
"""

from functools import partial
from operator import itemgetter

import dagster as dg

from marba_dagster.connectors.engagement import (
    GbpReviews,
    GraphConversations,
    GraphEngagement,
    XEngagement,
)
from marba_dagster.core.markdown import markdown_table
from marba_dagster.defs import execution
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.execution import ENGAGEMENT_RETRY
from marba_dagster.defs.partitions import hourly_partitions
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase, Notifier
from marba_dagster.services.engagement import (
    ApiTally,
    Collectors,
    collect_brand,
    record_brand,
)
from marba_dagster.services.prefetch import prefetch

GROUP = "engagement"
ENGAGEMENT_INBOX = dg.AssetKey([GROUP, "engagement_inbox"])


@dg.asset(
    key=ENGAGEMENT_INBOX,
    group_name=GROUP,
    partitions_def=hourly_partitions,
    kinds={"python", "sql"},
    pool=execution.PLATFORM_READS_POOL,
    description=(
        "Comments (Facebook, Instagram), direct messages (Facebook Pages, Instagram, X), X "
        "mentions and Google Business Profile reviews, upserted into engagement_inbox by "
        "external id, with VADER sentiment (emoji-aware) and a priority; urgent items are "
        "pushed to the webhook once. Brands with an account that could not be read, and "
        "platform APIs that failed for every account asked, are named by WARN checks; an "
        "account whose token lacks the messaging permission is listed under `unavailable` "
        "(its other items are still collected)."
    ),
    check_specs=completeness_check_specs(ENGAGEMENT_INBOX, sources=True),
    retry_policy=ENGAGEMENT_RETRY,
)
def engagement_inbox(
    context: dg.AssetExecutionContext,
    marba_db: MarbaDatabase,
    graph_api: ApiEndpoint,
    x_api: ApiEndpoint,
    gbp_api: ApiEndpoint,
    notifier: Notifier,
) -> dg.MaterializeResult:
    window_end = context.partition_time_window.end
    engine = marba_db.engine
    brands = scoped_brand_ids(context, marba_db)
    batch = BrandBatch(context, marba_db)
    totals = {"items": 0, "urgent": 0, "negative": 0, "pushed": 0}
    tally = ApiTally()
    preview: list[dict] = []
    unavailable: list[str] = []
    with (
        graph_api.client("graph_engagement") as g,
        x_api.client("x_engagement") as x,
        gbp_api.client("gbp_reviews") as gb,
    ):
        collectors = Collectors(
            GraphEngagement(g), XEngagement(x), GbpReviews(gb), GraphConversations(g)
        )

        fetch = partial(collect_brand, engine, window_end=window_end, c=collectors, log=batch.log)
        # The platform calls of several brands overlap (threads); storing, pushing and the
        # per-brand bookkeeping run here, one brand at a time, in the brands' order.
        for brand_id, fetched in prefetch(brands, fetch):
            with batch.brand(brand_id):
                collected = fetched.result()
                batch.row_problems(collected.problems)  # account rows unusable as stored
                tally.add(brand_id, collected)
                unavailable += [f"brand {brand_id}: {gap}" for gap in collected.unavailable]
                stored = record_brand(engine, notifier.webhook_url, brand_id, collected, batch.log)
                totals["items"] += stored.items
                totals["urgent"] += stored.urgent
                totals["negative"] += stored.negative
                totals["pushed"] += stored.pushed
                preview.extend(collected.rows)
                collected.raise_if_failed()
        for api, (cause, brand_ids) in tally.lost().items():
            batch.lose_source(api, cause, brand_ids)
        rate_limited = g.rate_limited() + x.rate_limited() + gb.rate_limited()
    batch.finish(rate_limited=rate_limited)  # a rate-limited step waits, never hammers
    preview.sort(key=itemgetter("priority_score"), reverse=True)
    return dg.MaterializeResult(
        metadata={
            **batch.metadata(),
            "items": totals["items"],
            "urgent_items": totals["urgent"],
            "negative_items": totals["negative"],
            "urgent_pushed": totals["pushed"],
            "capabilities_unavailable": len(unavailable),
            "unavailable": dg.MetadataValue.json(unavailable),
            "preview": dg.MetadataValue.md(
                markdown_table(
                    preview,
                    [
                        "platform",
                        "item_type",
                        "priority",
                        "priority_score",
                        "sentiment_label",
                        "body",
                    ],
                )
            ),
        },
        check_results=batch.check_results(ENGAGEMENT_INBOX, sources=True),
    )
