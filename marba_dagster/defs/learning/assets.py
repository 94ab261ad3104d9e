"""learning_engine: best times, formats, topics, power words and hashtags per brand/platform.

Runs on its cron (04:00 UTC, ``defs/jobs``) and also whenever a day of analytics lands:
the automation condition fires when any partition of ``brand_daily_metrics`` was updated
since this asset was last handled, once no analytics run is still in progress. The asset
reports ``all_brands_processed``; ``patterns_consistent`` checks the patterns it wrote.
"""

from datetime import datetime, timedelta

import dagster as dg
import sqlalchemy as sa

from marba_dagster.core.learning import POWER_WORDS, WEEKDAYS
from marba_dagster.defs.analytics.assets import brand_daily_metrics
from marba_dagster.defs.batches import BrandBatch, completeness_check_specs, scoped_brand_ids
from marba_dagster.defs.learning.engine import learn_and_store
from marba_dagster.defs.metadata import markdown_table
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import schema as s
from marba_dagster.store.types import utcnow

# `eager()` would never fire here: it waits until no upstream partition is missing, and a
# daily-partitioned upstream always has missing (old) days. This fires on any new day.
LEARN_ON_NEW_ANALYTICS = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("a day of analytics was materialized")


@dg.asset(
    group_name="learning",
    deps=[brand_daily_metrics],
    automation_condition=LEARN_ON_NEW_ANALYTICS,
    kinds={"python", "pandas", "scipy"},
    check_specs=completeness_check_specs("learning_patterns"),
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
    run = learn_and_store(marba_db.engine, brands, on_brand=batch.run)
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
        "preview": dg.MetadataValue.md(
            markdown_table(
                top,
                [
                    "brand_id",
                    "platform",
                    "pattern_type",
                    "pattern_key",
                    "lift",
                    "data_points",
                    "confidence",
                    "p_value",
                ],
            )
        ),
    }
    batch.finish()
    return dg.MaterializeResult(
        metadata=metadata, check_results=batch.check_results("learning_patterns")
    )


# Patterns checked: those computed within this window (the current run's and yesterday's).
CHECK_WINDOW = timedelta(days=2)
CHECK_EXAMPLES = 10
_HOUR = "([01][0-9]|2[0-3])"
TIME_KEY = f"^(({'|'.join(WEEKDAYS)})-)?{_HOUR}$"
HASHTAG_KEY = r"^#[^\s#]+$"
TRIMMED_KEY = r"^\S(.*\S)?$"


def pattern_problems(conn, since: datetime) -> tuple[int, dict[str, int], list[dict]]:
    """(patterns checked, count per problem, examples) for the patterns computed since
    ``since``: confidence not the tier of its data points (100+ -> 0.9, 30-99 -> 0.7,
    10-29 -> 0.5, else 0.3), a negative lift (0 is a pattern whose posts had no engagement at
    all), data points not positive, p-value outside [0, 1], and
    keys not of their type's form (hours ``18`` or ``tue-18``, a post format, ``#tag``, a
    known power word, a trimmed topic)."""
    lp = s.learning_patterns
    tier = sa.case(
        (lp.c.data_points >= 100, 0.9),
        (lp.c.data_points >= 30, 0.7),
        (lp.c.data_points >= 10, 0.5),
        else_=0.3,
    )
    key, kind = lp.c.pattern_key, lp.c.pattern_type
    problems = {
        "confidence_not_its_tier": sa.func.abs(lp.c.confidence - tier) > 1e-9,
        "lift_negative": lp.c.lift < 0,
        "data_points_not_positive": lp.c.data_points < 1,
        "p_value_out_of_range": sa.and_(
            lp.c.p_value.is_not(None), sa.or_(lp.c.p_value < 0, lp.c.p_value > 1)
        ),
        "malformed_key": sa.or_(
            sa.and_(kind == "best_posting_time", sa.not_(key.regexp_match(TIME_KEY))),
            sa.and_(kind == "content_format", key.not_in(s.POST_FORMATS)),
            sa.and_(kind == "hashtag", sa.not_(key.regexp_match(HASHTAG_KEY))),
            sa.and_(kind == "power_word", key.not_in(sorted(POWER_WORDS))),
            sa.and_(kind == "topic", sa.not_(key.regexp_match(TRIMMED_KEY))),
        ),
    }
    scope = lp.c.computed_at >= since
    counts = {
        name: int(n)
        for name, n in zip(
            problems,
            conn.execute(
                sa.select(*[sa.func.count().filter(cond) for cond in problems.values()]).where(
                    scope
                )
            ).one(),
        )
    }
    checked = int(conn.execute(sa.select(sa.func.count()).where(scope)).scalar_one())
    examples: list[dict] = []
    for name, cond in problems.items():
        if counts[name] and len(examples) < CHECK_EXAMPLES:
            for r in conn.execute(
                sa.select(
                    lp.c.brand_id,
                    lp.c.platform,
                    lp.c.pattern_type,
                    key,
                    lp.c.lift,
                    lp.c.data_points,
                    lp.c.confidence,
                    lp.c.p_value,
                )
                .where(scope, cond)
                .order_by(lp.c.brand_id, lp.c.platform, lp.c.pattern_type, key)
                .limit(CHECK_EXAMPLES - len(examples))
            ).mappings():
                examples.append({"problem": name, **dict(r)})
    return checked, counts, examples


PROBLEM_TEXT = {
    "confidence_not_its_tier": "with a confidence not the tier of its data points",
    "lift_negative": "with a negative lift",
    "data_points_not_positive": "with no data points",
    "p_value_out_of_range": "with a p-value outside [0, 1]",
    "malformed_key": "with a malformed pattern key",
}


@dg.asset_check(
    asset=learning_patterns,
    blocking=False,
    description="Patterns computed in the last two days are consistent: confidence is the tier of their "
    "data points (100+ -> 0.9, 30-99 -> 0.7, 10-29 -> 0.5, else 0.3), lift >= 0, p-value in "
    "[0, 1], and keys of their type's form (18 or tue-18, a post format, #tag, a power word).",
)
def patterns_consistent(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    with marba_db.connect() as conn:
        checked, counts, examples = pattern_problems(conn, utcnow() - CHECK_WINDOW)
    bad = {k: v for k, v in counts.items() if v}
    if bad:
        shown = list(
            dict.fromkeys(
                f"{e['brand_id']}/{e['platform']}/{e['pattern_type']}/{e['pattern_key']}"
                for e in examples
            )
        )[:3]
        description = (
            f"{sum(bad.values())} problem(s) in {checked} pattern(s): "
            + ", ".join(f"{n} {PROBLEM_TEXT[k]}" for k, n in bad.items())
            + " (e.g. "
            + ", ".join(shown)
            + ")"
        )
    else:
        description = f"{checked} pattern(s) consistent"
    return dg.AssetCheckResult(
        passed=not bad,
        severity=dg.AssetCheckSeverity.WARN,
        description=description,
        metadata={
            "patterns_checked": checked,
            **counts,
            "examples": dg.MetadataValue.json(examples),
        },
    )


learning_automation_sensor = dg.AutomationConditionSensorDefinition(
    "learning_automation_sensor",
    target=dg.AssetSelection.groups("learning"),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=60,
    description="Runs the learning engine when a day of analytics is materialized.",
)
