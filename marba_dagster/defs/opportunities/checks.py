"""Asset checks of the opportunity detector: active opportunities and each signal type."""

from datetime import timedelta

import dagster as dg

from marba_dagster.defs.opportunities.assets import GROUP, OPPORTUNITIES
from marba_dagster.defs.quality import problems_result
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import opportunities as store_opportunities
from marba_dagster.store.types import utcnow

# An active opportunity may outlive its expiry until the next hourly run expires it.
EXPIRY_GRACE = timedelta(hours=2)
# Signals checked: those observed within this window (the current ones; bounded work).
SIGNAL_CHECK_WINDOW = timedelta(days=7)
SIGNAL_EXAMPLES = 10
PROBLEM_TEXT = {
    "strength_out_of_range": "with a strength outside [0, 1]",
    "valid_until_not_after_observed_at": "valid until no later than observed",
    "unknown_change_type": "with a missing or unknown change_type",
}


@dg.asset_check(
    asset=OPPORTUNITIES,
    description="Active opportunities have a score in 0..1, an urgency and an expiry in the future",
)
def active_opportunities_valid(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    with marba_db.connect() as conn:
        invalid = store_opportunities.count_invalid_active(conn, utcnow(), EXPIRY_GRACE)
    return dg.AssetCheckResult(passed=invalid == 0, metadata={"invalid_active": invalid})


def _signal_name(example) -> str:
    return f"{example['brand_id']}/{example['dedup_key']}"


def signals_check(signal_type: str) -> dg.AssetChecksDefinition:
    """``signals_valid`` of the ``<signal_type>_signals`` asset (a WARN check)."""
    extra = ", and carry a known payload.change_type" if signal_type == "competitor" else ""

    @dg.asset_check(
        asset=dg.AssetKey([GROUP, f"{signal_type}_signals"]),
        name="signals_valid",
        blocking=False,
        description=f"The {signal_type} signals of the last {SIGNAL_CHECK_WINDOW.days} days "
        f"have a strength in [0, 1] and a valid_until after observed_at{extra}.",
    )
    def _check(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
        with marba_db.connect() as conn:
            checked, counts, examples = store_opportunities.signal_problems(
                conn, signal_type, utcnow() - SIGNAL_CHECK_WINDOW, SIGNAL_EXAMPLES
            )
        return problems_result(
            checked,
            counts,
            examples,
            noun=f"{signal_type} signal",
            problem_text=PROBLEM_TEXT,
            example_name=_signal_name,
            checked_key="signals_checked",
        )

    return _check


weather_signals_valid = signals_check("weather")
trend_signals_valid = signals_check("trend")
news_signals_valid = signals_check("news")
seasonal_signals_valid = signals_check("seasonal")
competitor_signals_valid = signals_check("competitor")
