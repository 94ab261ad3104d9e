"""competitive_monitoring: competitor snapshots, change signals, messaging shifts and gaps.

Every six hours (``defs/jobs``), for every active brand in the run's scope: each active
competitor's website, watch URLs and feed are fetched through the safe fetcher
(concurrently, within its global and per-host limits), snapshotted without their noise and
compared with the previous snapshot. Changes become ``intelligence_signals`` of type
``competitor``; a pricing change or a messaging shift invalidates the brand's ``reimagine``
enrichment section. A competitor whose every URL keeps failing is marked unreachable after
``failure_limit`` runs and reported, while the others are processed as usual. Each site or
feed that could not be read in a run is a lost source of the ``sources_available`` check,
which names the competitor, the cause and the brand.
"""

import os
from collections import Counter

import dagster as dg
import sqlalchemy as sa

from marba_dagster.defs import pools
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.competitive.monitor import (
    ALLOWED_HOSTS_ENV,
    PER_HOST_CONCURRENCY_ENV,
    PER_HOST_INTERVAL_ENV,
    BrandOutcome,
    SafeFetchSettings,
    chunk_brands,
    competitor_urls,
    compute_brand_gaps,
    fetch_urls,
    load_competitors,
    process_brand,
    signal_counts,
)
from marba_dagster.defs.metadata import markdown_table
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.defs.retries import SITES_RETRY
from marba_dagster.store import schema as s
from marba_dagster.store.types import utcnow

CHANGE_TYPES = (
    "website_change",
    "pricing_change",
    "product_launch",
    "messaging_shift",
    "social_activity",
)


@dg.asset(
    group_name="competitive",
    kinds={"python", "html", "rss"},
    pool=pools.COMPETITOR_SITES,
    retry_policy=SITES_RETRY,
    check_specs=completeness_check_specs("competitor_snapshots", sources=True),
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
        comps = load_competitors(conn, brands)
    totals = BrandOutcome()
    pages = failed_urls = 0
    now = utcnow()
    with safe_fetch.fetcher() as fetcher:
        for chunk in chunk_brands(brands, comps):
            urls = [u for b in chunk for c in comps[b] for _, u in competitor_urls(c)]
            results = fetch_urls(fetcher, urls)
            pages += len(results)
            failed_urls += sum(1 for r in results.values() if isinstance(r, Exception))
            for brand_id in chunk:

                def work(brand_id=brand_id):
                    with marba_db.begin() as conn:
                        return process_brand(
                            conn,
                            brand_id,
                            comps[brand_id],
                            results,
                            now,
                            failure_limit=safe_fetch.failure_limit,
                            run_id=context.run.run_id,
                        )

                outcome = batch.run(brand_id, work)
                if outcome is None:
                    continue
                for source, cause in outcome.lost:
                    batch.lose_source(source, cause, [brand_id])
                totals.snapshots += outcome.snapshots
                totals.failures += outcome.failures
                totals.signals += outcome.signals
                totals.messaging_shifts += outcome.messaging_shifts
                totals.unreachable += outcome.unreachable
                totals.invalidated_reimagine |= outcome.invalidated_reimagine
                for info in outcome.newly_unreachable:
                    batch.log(
                        brand_id,
                        "warning",
                        f"competitor {info['name']} ({info['competitor_id']}) is unreachable after "
                        f"{info['consecutive_failures']} failed runs: {info['last_error']}",
                        competitor_id=info["competitor_id"],
                    )
                    context.log.warning(
                        f"competitor {info['competitor_id']} unreachable: {info['last_error']}"
                    )
            del results
        fetch_metrics = fetcher.metrics()
    counts = signal_counts(totals.signals)
    metadata = {
        **batch.metadata(),
        "brands": len(brands),
        "competitors": sum(len(v) for v in comps.values()),
        "urls_fetched": pages,
        "urls_failed": failed_urls,
        "urls_refused": fetch_metrics["refused"],
        "bytes_fetched": fetch_metrics["bytes"],
        "bodies_truncated": fetch_metrics["truncated"],
        "snapshots_written": totals.snapshots,
        "signals": len(totals.signals),
        **{f"signals_{k}": counts.get(k, 0) for k in CHANGE_TYPES},
        "messaging_shifts": totals.messaging_shifts,
        "competitors_failing": totals.failures,
        "competitors_unreachable": len(totals.unreachable),
        "unreachable": dg.MetadataValue.json(totals.unreachable),
        "preview": dg.MetadataValue.md(
            markdown_table(
                [
                    {
                        "brand_id": r["brand_id"],
                        "change_type": r["payload"]["change_type"],
                        "title": r["title"],
                        "strength": r["strength"],
                    }
                    for r in totals.signals
                ],
                ["brand_id", "change_type", "title", "strength"],
            )
        ),
    }
    batch.finish()
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results("competitor_snapshots", sources=True)
    )


@dg.asset(
    group_name="competitive",
    deps=[competitor_snapshots],
    kinds={"python"},
    check_specs=completeness_check_specs("competitive_gaps"),
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

        def work(brand_id=brand_id):
            with marba_db.begin() as conn:
                return compute_brand_gaps(conn, brand_id, now)

        rows = batch.run(brand_id, work)
        found += rows or []
    by_type = Counter(r["gap_type"] for r in found)
    top = sorted(found, key=lambda r: -r["score"])[:20]
    metadata = {
        **batch.metadata(),
        "gaps_open": len(found),
        **{f"gaps_{k}": by_type.get(k, 0) for k in ("topic", "channel", "format")},
        "preview": dg.MetadataValue.md(
            markdown_table(top, ["brand_id", "gap_type", "gap_key", "score"])
        ),
    }
    batch.finish()
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results("competitive_gaps")
    )


@dg.asset_check(
    asset=competitor_snapshots,
    description="Active competitors are reachable (warns on unreachable ones).",
)
def competitors_reachable(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    c = s.competitors
    with marba_db.connect() as conn:
        rows = (
            conn.execute(
                sa.select(c.c.id, c.c.brand_id, c.c.consecutive_failures, c.c.last_error)
                .where(c.c.is_active.is_(True), c.c.reachability == "unreachable")
                .order_by(c.c.id)
                .limit(200)
            )
            .mappings()
            .all()
        )
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "unreachable_competitors": len(rows),
            "examples": dg.MetadataValue.json([dict(r) for r in rows[:20]]),
        },
    )


@dg.definitions
def competitive_definitions() -> dg.Definitions:
    kw: dict = {}
    if os.environ.get(ALLOWED_HOSTS_ENV):
        kw["allowed_hosts"] = dg.EnvVar(ALLOWED_HOSTS_ENV)
    # Politeness per competitor host; the demo's sandbox serves every site from one host.
    # Bound as text and parsed when the step runs: a bad value fails that step, not the load.
    if os.environ.get(PER_HOST_CONCURRENCY_ENV):
        kw["per_host_concurrency_env"] = dg.EnvVar(PER_HOST_CONCURRENCY_ENV)
    if os.environ.get(PER_HOST_INTERVAL_ENV):
        kw["per_host_interval_env"] = dg.EnvVar(PER_HOST_INTERVAL_ENV)
    settings = SafeFetchSettings(**kw)
    return dg.Definitions(
        assets=[competitor_snapshots, competitive_gaps],
        asset_checks=[competitors_reachable],
        resources={"safe_fetch": settings},
    )
