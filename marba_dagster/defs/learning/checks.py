"""``patterns_consistent``: the patterns of the last two days are consistent (the SQL is
``store.learning.pattern_problems``)."""

from datetime import timedelta

import dagster as dg

from marba_dagster.defs.learning.assets import LEARNING_PATTERNS
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import learning as store
from marba_dagster.store.types import utcnow

# Patterns checked: those computed within this window (the current run's and yesterday's).
CHECK_WINDOW = timedelta(days=2)
# Patterns named in the check's description (the examples in its metadata go further).
NAMED = 3

PROBLEM_TEXT = {
    "confidence_not_its_tier": "with a confidence not the tier of its data points",
    "lift_negative": "with a negative lift",
    "data_points_not_positive": "with no data points",
    "p_value_out_of_range": "with a p-value outside [0, 1]",
    "malformed_key": "with a malformed pattern key",
}


@dg.asset_check(
    asset=LEARNING_PATTERNS,
    blocking=False,
    description="Patterns computed in the last two days are consistent: confidence is the tier "
    "of their data points (100+ -> 0.9, 30-99 -> 0.7, 10-29 -> 0.5, else 0.3), lift >= 0, "
    "p-value in [0, 1], and keys of their type's form (18 or tue-18, a post format, #tag, a "
    "power word).",
)
def patterns_consistent(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    with marba_db.connect() as conn:
        checked, counts, examples = store.pattern_problems(conn, utcnow() - CHECK_WINDOW)
    bad = {k: v for k, v in counts.items() if v}
    if bad:
        shown = list(
            dict.fromkeys(
                f"{e['brand_id']}/{e['platform']}/{e['pattern_type']}/{e['pattern_key']}"
                for e in examples
            )
        )[:NAMED]
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
