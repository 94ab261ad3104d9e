"""learning_engine: best times, formats, topics, power words and hashtags per brand/platform.

Runs on its cron (04:00 UTC, ``defs/jobs``) and also whenever a day of analytics lands:
the automation condition fires when any partition of ``analytics/brand_daily_metrics`` was
updated since this asset was last handled, once no analytics run is still in progress
(``learning_automation_sensor`` in ``sensors.py`` evaluates it). The asset reports
``all_brands_processed``; ``patterns_consistent`` (``checks.py``) checks the patterns it
wrote. The work itself is ``services.learning``.
"""

import dagster as dg

from marba_dagster.core.learning import PATTERN_SUMMARY_COLUMNS
from marba_dagster.core.markdown import markdown_table
from marba_dagster.defs.analytics.assets import BRAND_DAILY_METRICS
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.services.learning import learn_and_store

GROUP = "learning"
LEARNING_PATTERNS = dg.AssetKey([GROUP, "learning_patterns"])

# `eager()` would never fire here: it waits until no upstream partition is missing, and a
# daily-partitioned upstream always has missing (old) days. This fires on any new day.
LEARN_ON_NEW_ANALYTICS = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("a day of analytics was materialized")


@dg.asset(
    key=LEARNING_PATTERNS,
    group_name=GROUP,
    deps=[BRAND_DAILY_METRICS],
    automation_condition=LEARN_ON_NEW_ANALYTICS,
    kinds={"python", "pandas", "scipy"},
    check_specs=completeness_check_specs(LEARNING_PATTERNS),
)
def learning_patterns(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase
) -> dg.MaterializeResult:
    """Patterns per brand and platform with lift against the brand's baseline, data points,
    the confidence tier of docs/architecture.md and a Benjamini-Hochberg-adjusted p-value
    (Welch t-test of per-account normalised engagement). Recommendations need confidence
    > 0.5, lift > 1 and adjusted p < 0.05."""
    brands = scoped_brand_ids(context, marba_db)
    batch = BrandBatch(context, marba_db)
    run = learn_and_store(marba_db.engine, brands, isolate=batch.brand)
    p = run.patterns
    recommended = p[p["recommended"].astype(bool)] if not p.empty else p
    top = (
        recommended.sort_values("lift", ascending=False).head(20).to_dict("records")
        if not recommended.empty
        else []
    )
    by_type = p.groupby("pattern_type").size().to_dict() if not p.empty else {}
    metadata = {
        **batch.metadata(),
        "brands": len(brands),
        "posts": run.posts,
        "patterns_found": run.written,
        "recommendable_patterns": len(recommended),
        "brands_with_recommendations": int(recommended["brand_id"].nunique())
        if len(recommended)
        else 0,
        **{f"patterns_{k}": int(v) for k, v in by_type.items()},
        "mean_lift_recommended": float(recommended["lift"].mean()) if len(recommended) else 0.0,
        "preview": dg.MetadataValue.md(markdown_table(top, [*PATTERN_SUMMARY_COLUMNS, "p_value"])),
    }
    batch.finish()
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results(LEARNING_PATTERNS)
    )
