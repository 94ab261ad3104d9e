"""The job health report: an asset in the ``monitoring`` group."""

import dagster as dg

from marba_dagster.core.markdown import markdown_table
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.services.supervision import HEALTH_COLUMNS, health_overview

MONITORING_GROUP = "monitoring"


@dg.asset(
    name="job_health_report",
    key_prefix=[MONITORING_GROUP],
    group_name=MONITORING_GROUP,
    kinds={"sql"},
)
def job_health_report(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase
) -> dg.MaterializeResult:
    """Health of the seven MARBA jobs over their last 20 runs or 7 days (rules of
    docs/architecture.md: healthy above 90% with the last run good, degraded 70-90% or recent
    failures, unhealthy under 70% or a failed last run), with average duration and its trend."""
    rows = health_overview(marba_db.engine)
    context.log.info(", ".join(f"{r['job']}={r['health']}" for r in rows))
    count = {
        h: sum(1 for r in rows if r["health"] == h)
        for h in ("healthy", "degraded", "unhealthy", "unknown")
    }
    return dg.MaterializeResult(
        metadata={
            **{f"jobs_{health}": n for health, n in count.items()},
            "jobs_circuit_open": sum(1 for r in rows if r["state"] == "circuit_open"),
            "report": dg.MetadataValue.md(markdown_table(rows, HEALTH_COLUMNS)),
        }
    )
