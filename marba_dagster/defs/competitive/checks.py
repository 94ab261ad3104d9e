"""Asset checks of competitive monitoring."""

import dagster as dg

from marba_dagster.defs.competitive.assets import SNAPSHOTS
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import competitive as store_competitive

EXAMPLES = 20


@dg.asset_check(
    asset=SNAPSHOTS,
    description="Active competitors are reachable (warns on unreachable ones).",
)
def competitors_reachable(marba_db: MarbaDatabase) -> dg.AssetCheckResult:
    with marba_db.connect() as conn:
        unreachable = store_competitive.unreachable_competitors(conn)
    return dg.AssetCheckResult(
        passed=not unreachable,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "unreachable_competitors": len(unreachable),
            "examples": dg.MetadataValue.json(unreachable[:EXAMPLES]),
        },
    )
