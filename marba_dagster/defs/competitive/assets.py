"""competitive_monitoring: competitor snapshots, change signals, messaging shifts and gaps.

Every six hours (``defs/jobs``), for every active brand in the run's scope: each active
competitor's website, watch URLs and feed are fetched through the safe fetcher
(concurrently, within its global and per-host limits), snapshotted without their noise and
compared with the previous snapshot (``services.competitive``). Changes become
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

from marba_dagster.core.competitive.monitoring import chunk_brands, chunk_urls, signal_counts
from marba_dagster.core.markdown import markdown_table
from marba_dagster.defs import execution
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.competitive.resources import SafeFetchSettings
from marba_dagster.defs.execution import SITES_RETRY
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.services.competitive import (
    BrandOutcome,
    compute_brand_gaps,
    fetch_urls,
    process_brand,
)
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
    fetched = failed = 0
    now = utcnow()
    with safe_fetch.fetcher() as fetcher:
        for chunk in chunk_brands(brands, competitors):
            results = fetch_urls(fetcher, chunk_urls(chunk, competitors))
            fetched += len(results)
            failed += sum(1 for result in results.values() if isinstance(result, Exception))
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
                        )
                    _report_brand(context, batch, brand_id, outcome)
                    totals.add(outcome)
            del results  # the chunk's bodies, before the next chunk is fetched
        fetch = {**fetcher.metrics(), "fetched": fetched, "failed": failed}
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
