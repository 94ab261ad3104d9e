"""``patterns_consistent``: the patterns of the last two days are consistent (the SQL is
``store.learning.pattern_problems``)."""

from datetime import timedelta

import dagster as dg

from marba_dagster.defs.learning.assets import LEARNING_PATTERNS
from marba_dagster.defs.quality import problems_result
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import learning as store
from marba_dagster.store.types import utcnow

# Patterns checked: those computed within this window (the current run's and yesterday's).
CHECK_WINDOW = timedelta(days=2)

PROBLEM_TEXT = {
    "confidence_not_its_tier": "with a confidence not the tier of its data points",
    "lift_negative": "with a negative lift",
    "data_points_not_positive": "with no data points",
    "p_value_out_of_range": "with a p-value outside [0, 1]",
    "malformed_key": "with a malformed pattern key",
}


def _pattern_name(example) -> str:
    return "/".join(
        str(example[k]) for k in ("brand_id", "platform", "pattern_type", "pattern_key")
    )


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
    return problems_result(
        checked,
        counts,
        examples,
        noun="pattern",
        problem_text=PROBLEM_TEXT,
        example_name=_pattern_name,
        checked_key="patterns_checked",
        ok_word="consistent",
    )
