"""The checks of each enrichment section (WARN, never blocking), reported by the sections'
own step: ``all_brands_processed``, ``sources_available`` (the model endpoint: calls that
fell back to the analyzer, by cause) and ``all_entries_current`` (active brands whose entry
is missing or expired, which the section's freshness, driven by its newest materialization,
cannot show; read from ``store.enrichment.entry_currency``)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import dagster as dg

from marba_dagster.core.enrichment.checks import entries_summary, fallback_summary
from marba_dagster.core.runs import BRANDS_CHECK, ENTRIES_CHECK, SOURCES_CHECK
from marba_dagster.defs.batches import NAMED_IN_CHECK, completeness_check_specs
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.services.enrichment import RunReport
from marba_dagster.store.enrichment import entry_currency

# Model calls that fell back to the analyzer are reported as a lost outside source.
MODEL_SOURCE = "model endpoint"


def section_check_specs(keys: Mapping[str, dg.AssetKey]) -> list[dg.AssetCheckSpec]:
    """The three checks of every section (``keys``: section -> asset key)."""
    specs = []
    for section, key in keys.items():
        specs += completeness_check_specs(key, sources=True)
        specs.append(
            dg.AssetCheckSpec(
                ENTRIES_CHECK,
                asset=key,
                blocking=False,
                description=f"Every active brand has a current {section} entry; warns counting "
                "the brands whose entry is missing or expired (the app shows them an old "
                "section or none) and naming a sample.",
            )
        )
    return specs


def brands_result(key: dg.AssetKey, report: RunReport) -> dg.AssetCheckResult:
    """``all_brands_processed`` for one section, in BrandBatch.check_results' words."""
    section = key.path[-1]
    outcomes = report.by_section(section)
    failed = report.failed(section)
    total = len(outcomes)
    named = dict(sorted(failed.items())[:NAMED_IN_CHECK])
    if failed:
        shown = ", ".join(f"{b} ({e})" for b, e in list(named.items())[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        text = f"{len(failed)} of {total} brand(s) failed: {shown}{more}"
    else:
        text = f"all {total} brand(s) processed"
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=BRANDS_CHECK,
        passed=not failed,
        severity=dg.AssetCheckSeverity.WARN,
        description=text,
        metadata={
            "brands_processed": total - len(failed),
            "brands_failed": len(failed),
            "failed_brands": dg.MetadataValue.json(named),
        },
    )


def model_result(key: dg.AssetKey, report: RunReport, ai_configured: bool) -> dg.AssetCheckResult:
    """``sources_available`` for one section: the model endpoint, when one is configured."""
    section = key.path[-1]
    if not ai_configured:
        return dg.AssetCheckResult(
            asset_key=key,
            check_name=SOURCES_CHECK,
            passed=True,
            severity=dg.AssetCheckSeverity.WARN,
            description="no outside source: no model endpoint is configured, the analyzer "
            "writes every section",
            metadata={"sources_lost": 0, "ai_calls": 0, "ai_fallbacks": 0},
        )
    use = report.model_use(section)
    fell = len(use.fallback_brands)
    lost = [
        {"source": MODEL_SOURCE, "error": cause, "brands_affected": n}
        for cause, n in use.causes.most_common()
    ]
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=SOURCES_CHECK,
        passed=not fell,
        severity=dg.AssetCheckSeverity.WARN,
        description=fallback_summary(section, use.calls, use.causes, use.budget_skipped),
        metadata={
            "sources_lost": 1 if fell else 0,
            "ai_calls": use.calls,
            "ai_fallbacks": fell,
            "ai_budget_skipped": use.budget_skipped,
            "fallback_brands": dg.MetadataValue.json(use.fallback_brands[:NAMED_IN_CHECK]),
            "lost_sources": dg.MetadataValue.json(lost),
        },
    )


def entries_result(key: dg.AssetKey, marba_db: MarbaDatabase, now) -> dg.AssetCheckResult:
    """``all_entries_current`` for one section, read from the cache as it is now."""
    section = key.path[-1]
    with marba_db.connect() as conn:
        currency = entry_currency(conn, section, now, limit=NAMED_IN_CHECK)
    stale = currency["missing"] + currency["expired"]
    sample = currency["sample"]
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=ENTRIES_CHECK,
        passed=stale == 0,
        severity=dg.AssetCheckSeverity.WARN,
        description=entries_summary(
            section,
            currency["active"],
            currency["missing"],
            currency["expired"],
            currency["deferred"],
            [r["brand_id"] for r in sample],
        ),
        metadata={
            "active_brands": currency["active"],
            "stale_entries": stale,
            "missing_entries": currency["missing"],
            "expired_entries": currency["expired"],
            "deferred_entries": currency["deferred"],
            "stale_sample": dg.MetadataValue.json(sample),
        },
    )


def section_check_results(
    key: dg.AssetKey,
    selected: Collection[dg.AssetCheckKey],
    report: RunReport,
    marba_db: MarbaDatabase,
    *,
    ai_configured: bool,
    now,
) -> list[dg.AssetCheckResult]:
    """The results of the section's checks that the run selected."""
    results = []
    if dg.AssetCheckKey(key, BRANDS_CHECK) in selected:
        results.append(brands_result(key, report))
    if dg.AssetCheckKey(key, SOURCES_CHECK) in selected:
        results.append(model_result(key, report, ai_configured))
    if dg.AssetCheckKey(key, ENTRIES_CHECK) in selected:
        results.append(entries_result(key, marba_db, now))
    return results
