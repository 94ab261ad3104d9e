"""competitive_monitoring: competitor snapshots, change signals, messaging shifts and gaps.

Every six hours (``defs/jobs``), for every active brand in the run's scope: each active
competitor's website, watch URLs and feed are fetched through the safe fetcher
(concurrently, within its global and per-host limits), snapshotted without their noise and
compared with the previous snapshot (``services.competitive``). A page seen for the first
time, or whose text changed enough to matter, is loaded a second time so the noise it shows
by itself (rotating bars, live counters, ids) is learned into its mask and left out. Changes become
``intelligence_signals`` of type ``competitor``; a pricing change or a messaging shift
invalidates the brand's ``reimagine`` enrichment section. A competitor whose every URL keeps
failing is marked unreachable after ``failure_limit`` runs and reported, while the others
are processed as usual. Each site or feed that could not be read in a run is a lost source
of the ``sources_available`` check, which names the competitor, the cause and the brand.
"""

from collections import Counter
from operator import itemgetter
from typing import Any

import dagster as dg

from marba_dagster import settings
from marba_dagster.connectors.competitor_social import BusinessDiscovery, XTimeline
from marba_dagster.core.competitive.monitoring import chunk_brands, chunk_urls, signal_counts
from marba_dagster.core.markdown import markdown_table
from marba_dagster.defs import execution
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.competitive.resources import SafeFetchSettings
from marba_dagster.defs.execution import PLATFORM_RETRY, SITES_RETRY
from marba_dagster.defs.resources import ApiEndpoint, MarbaDatabase
from marba_dagster.services.competitive import (
    BrandOutcome,
    compute_brand_gaps,
    fetch_second_loads,
    fetch_urls,
    plan_second_loads,
    process_brand,
)
from marba_dagster.services.competitor_social import SocialSources, platforms_off
from marba_dagster.services.competitor_social import collect_brand as collect_social
from marba_dagster.services.rows import checked_competitors
from marba_dagster.store import competitive as store_competitive
from marba_dagster.store.schema import COMPETITOR_CHANGE_TYPES
from marba_dagster.store.types import utcnow

GROUP = "competitive"
SNAPSHOTS = dg.AssetKey([GROUP, "competitor_snapshots"])
GAPS = dg.AssetKey([GROUP, "competitive_gaps"])
GAP_TYPES = ("topic", "channel", "format")


def _report_brand(
    context: dg.AssetExecutionContext, batch: BrandBatch, brand_id: str, outcome: BrandOutcome
) -> None:
    """The brand's lost sources for ``sources_available``, a warning per newly unreachable
    competitor."""
    for source, cause in outcome.lost:
        batch.lose_source(source, cause, [brand_id])
    for info in outcome.newly_unreachable:
        batch.log(
            brand_id,
            "warning",
            f"competitor {info['name']} ({info['competitor_id']}) is unreachable after "
            f"{info['consecutive_failures']} failed runs: {info['last_error']}",
            competitor_id=info["competitor_id"],
        )
        context.log.warning(f"competitor {info['competitor_id']} unreachable: {info['last_error']}")


def _snapshot_metadata(
    totals: BrandOutcome, fetch: dict[str, int], competitors: int
) -> dict[str, Any]:
    counts = signal_counts(totals.signals)
    return {
        "competitors": competitors,
        "urls_fetched": fetch["fetched"],
        "urls_failed": fetch["failed"],
        "urls_refused": fetch["refused"],
        "bytes_fetched": fetch["bytes"],
        "bodies_truncated": fetch["truncated"],
        "urls_loaded_again": fetch["loaded_again"],
        "pages_noise_learned": totals.noise_learned,
        "snapshots_written": totals.snapshots,
        "signals": len(totals.signals),
        **{f"signals_{kind}": counts.get(kind, 0) for kind in COMPETITOR_CHANGE_TYPES},
        "messaging_shifts": totals.messaging_shifts,
        "competitors_failing": totals.failures,
        "competitors_unreachable": len(totals.unreachable),
        "unreachable": dg.MetadataValue.json(totals.unreachable),
        "preview": dg.MetadataValue.md(
            markdown_table(
                [
                    {
                        "brand_id": row["brand_id"],
                        "change_type": row["payload"]["change_type"],
                        "title": row["title"],
                        "strength": row["strength"],
                    }
                    for row in totals.signals
                ],
                ["brand_id", "change_type", "title", "strength"],
            )
        ),
    }


@dg.asset(
    key_prefix=[GROUP],
    group_name=GROUP,
    kinds={"python", "html", "rss"},
    pool=execution.COMPETITOR_SITES_POOL,
    retry_policy=SITES_RETRY,
    check_specs=completeness_check_specs(SNAPSHOTS, sources=True),
)
def competitor_snapshots(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase, safe_fetch: SafeFetchSettings
) -> dg.MaterializeResult:
    """Noise-free snapshots of every watched competitor page and feed, the changes since the
    previous snapshot (website_change, pricing_change, product_launch, messaging_shift,
    social_activity) as competitor signals, messaging shifts, and competitor reachability.
    A site or feed that could not be read is named in ``sources_available``."""
    brands = scoped_brand_ids(context, marba_db)
    batch = BrandBatch(context, marba_db)
    with marba_db.connect() as conn:
        # Checked at the boundary (core.rows): watch URLs stored as one string or social
        # accounts stored as a list are ignored with a warning naming brand and competitor.
        competitors, problems = checked_competitors(
            store_competitive.active_competitors(conn, brands)
        )
    batch.row_problems(problems)
    totals = BrandOutcome()
    fetched = failed = loaded_again = 0
    now = utcnow()
    with safe_fetch.fetcher() as fetcher:
        for chunk in chunk_brands(brands, competitors):
            results = fetch_urls(fetcher, chunk_urls(chunk, competitors))
            fetched += len(results)
            failed += sum(1 for result in results.values() if isinstance(result, Exception))
            with marba_db.connect() as conn:
                second = plan_second_loads(
                    conn,
                    [c for brand_id in chunk for c in competitors[brand_id]],
                    results,
                    run_id=context.run.run_id,
                )
            loaded_again += fetch_second_loads(fetcher, second)
            for brand_id in chunk:
                with batch.brand(brand_id):
                    with marba_db.begin() as conn:
                        outcome = process_brand(
                            conn,
                            brand_id,
                            competitors[brand_id],
                            results,
                            now,
                            failure_limit=safe_fetch.failure_limit,
                            run_id=context.run.run_id,
                            second_loads=second,
                        )
                    _report_brand(context, batch, brand_id, outcome)
                    totals.add(outcome)
            del results, second  # the chunk's bodies, before the next chunk is fetched
        fetch = {
            **fetcher.metrics(),
            "fetched": fetched,
            "failed": failed,
            "loaded_again": loaded_again,
        }
    metadata = {
        **batch.metadata(),
        "brands": len(brands),
        **_snapshot_metadata(totals, fetch, sum(len(v) for v in competitors.values())),
    }
    batch.finish()
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results(SNAPSHOTS, sources=True)
    )


@dg.asset(
    key_prefix=[GROUP],
    group_name=GROUP,
    deps=[SNAPSHOTS],
    kinds={"python"},
    check_specs=completeness_check_specs(GAPS),
)
def competitive_gaps(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase
) -> dg.MaterializeResult:
    """Topics competitors push that the brand's own content does not cover, channels where
    they are active and the brand is not, and formats they use that it does not; each with
    its evidence and a 0..1 score. Gaps no longer found are closed."""
    brands = scoped_brand_ids(context, marba_db)
    batch = BrandBatch(context, marba_db)
    now = utcnow()
    found: list[dict] = []
    for brand_id in brands:
        with batch.brand(brand_id), marba_db.begin() as conn:
            found += compute_brand_gaps(conn, brand_id, now)
    by_type = Counter(row["gap_type"] for row in found)
    top = sorted(found, key=itemgetter("score"), reverse=True)[:20]
    metadata = {
        **batch.metadata(),
        "gaps_open": len(found),
        **{f"gaps_{gap_type}": by_type.get(gap_type, 0) for gap_type in GAP_TYPES},
        "preview": dg.MetadataValue.md(
            markdown_table(top, ["brand_id", "gap_type", "gap_key", "score"])
        ),
    }
    batch.finish()
    return dg.MaterializeResult(metadata=metadata, check_results=batch.check_results(GAPS))


# --------------------------------------------------------------- competitors' social accounts

SOCIAL = dg.AssetKey([GROUP, "social_activity"])


@dg.asset(
    key=SOCIAL,
    group_name=GROUP,
    kinds={"python", "sql"},
    pool=execution.PLATFORM_READS_POOL,
    retry_policy=PLATFORM_RETRY,
    check_specs=completeness_check_specs(SOCIAL, sources=True),
)
def social_activity(
    context: dg.AssetExecutionContext,
    marba_db: MarbaDatabase,
    graph_api: ApiEndpoint,
    x_app_api: ApiEndpoint,
) -> dg.MaterializeResult:
    """Competitors' own Instagram accounts (Business Discovery, with the brand's Instagram
    business account) and X accounts (user timeline, app-only bearer token
    MARBA_X_BEARER_TOKEN), as their ``social_accounts`` name them: a snapshot per account
    and run, and posting-frequency changes, new-hashtag campaigns and engagement spikes as
    ``social_activity`` competitor signals for the opportunity detector. A platform without
    credentials is off and named once (``platforms_off``); an account that could not be read
    is named in ``sources_available``."""
    brands = scoped_brand_ids(context, marba_db)
    batch = BrandBatch(context, marba_db)
    with marba_db.connect() as conn:
        competitors = store_competitive.active_competitors(conn, brands)
    now = utcnow()
    totals = {"snapshots": 0, "accounts_read": 0, "x_accounts_skipped": 0}
    signals: list[dict[str, Any]] = []
    instagram_off: dict[str, list[str]] = {}
    with (
        graph_api.client("business_discovery") as graph,
        x_app_api.client("x_app") as x_client,
    ):
        sources = SocialSources(
            BusinessDiscovery(graph),
            XTimeline(x_client, x_app_api.api_key) if x_app_api.api_key else None,
            None if x_app_api.api_key else f"{settings.X_BEARER_TOKEN.name} is not set",
        )
        for brand_id in brands:
            with batch.brand(brand_id):
                outcome = collect_social(
                    marba_db.engine,
                    brand_id,
                    competitors[brand_id],
                    sources,
                    now,
                    run_id=context.run.run_id,
                )
                for note in outcome.notes:
                    batch.log(brand_id, "warning", note)
                if outcome.instagram_off:
                    instagram_off.setdefault(outcome.instagram_off, []).append(brand_id)
                for source, cause in outcome.lost:
                    batch.lose_source(source, cause, [brand_id])
                totals["snapshots"] += outcome.snapshots
                totals["accounts_read"] += outcome.accounts_read
                totals["x_accounts_skipped"] += outcome.skipped_x
                signals += outcome.signals
    off = platforms_off(sources.x_off, totals["x_accounts_skipped"], instagram_off)
    for line in off:  # once per run, not per competitor
        batch.log(None, "warning", f"competitor social activity: {line}")
        context.log.warning(line)
    metadata = {
        **batch.metadata(),
        **totals,
        "signals": len(signals),
        "platforms_off": dg.MetadataValue.json(off),
        "preview": dg.MetadataValue.md(
            markdown_table(
                [
                    {
                        "brand_id": row["brand_id"],
                        "kind": row["payload"].get("kind"),
                        "title": row["title"],
                        "strength": row["strength"],
                    }
                    for row in signals[:50]
                ],
                ["brand_id", "kind", "title", "strength"],
            )
        ),
    }
    batch.finish()
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results(SOCIAL, sources=True)
    )
