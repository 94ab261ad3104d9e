"""The auto-publisher's asset check on what waits for a person."""

import dagster as dg

from marba_dagster.defs.publishing.assets import published_posts
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store.publishing import unresolved_posts


@dg.asset_check(
    asset=published_posts,
    description="No post is waiting for a person: none in 'unknown', none stuck in 'publishing'.",
)
def no_unresolved_posts(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    """Posts in ``unknown`` (the platform may have them) or stuck in ``publishing``."""
    with marba_db.connect() as conn:
        unknown, stuck = unresolved_posts(conn)
    return dg.AssetCheckResult(
        passed=unknown == 0 and stuck == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"unknown_posts": unknown, "publishing_posts": stuck},
        description=None
        if unknown == 0
        else f"{unknown} post(s) need a person to check the platform",
    )
