"""``inbox_items_valid``: the items collected in the last day have consistent sentiment,
priority and rating (the SQL is ``store.engagement.inbox_problems``)."""

from datetime import timedelta

import dagster as dg

from marba_dagster.defs.engagement.assets import ENGAGEMENT_INBOX
from marba_dagster.defs.quality import problems_result
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import engagement as store
from marba_dagster.store.types import utcnow

# Items checked: those collected (inserted or refreshed) within this window.
CHECK_WINDOW = timedelta(days=1)

PROBLEM_TEXT = {
    "sentiment_out_of_range": "with a sentiment score missing or outside [-1, 1]",
    "sentiment_label_invalid": "with a sentiment label missing, unknown or not matching its score",
    "priority_invalid": "with a priority missing, unknown or not matching its score",
    "rating_out_of_range": "with a rating outside 1..5",
}


def _item_name(example) -> str:
    return f"{example['platform']}/{example['external_id']}"


@dg.asset_check(
    asset=ENGAGEMENT_INBOX,
    blocking=False,
    description="Items collected in the last day have a sentiment score in [-1, 1] with the "
    "label its score implies (VADER's ±0.05), a known priority matching its score's band, and "
    "a rating in 1..5 if any. (One row per platform and external id is enforced by a unique "
    "constraint.)",
)
def inbox_items_valid(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    with marba_db.connect() as conn:
        checked, counts, examples = store.inbox_problems(conn, utcnow() - CHECK_WINDOW)
    return problems_result(
        checked,
        counts,
        examples,
        noun="inbox item",
        problem_text=PROBLEM_TEXT,
        example_name=_item_name,
        checked_key="items_checked",
    )
