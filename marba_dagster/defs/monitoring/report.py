"""The job health report (an asset in the ``monitoring`` group) and the weekly log cleanup."""

from datetime import timedelta

import dagster as dg

from marba_dagster.core.catalog import JOBS
from marba_dagster.defs.common import markdown_table
from marba_dagster.defs.monitoring import tracking as t
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store.types import utcnow

MONITORING_GROUP = "monitoring"
LOG_RETENTION_DAYS = 30


@dg.asset(
    name="job_health_report",
    group_name=MONITORING_GROUP,
    kinds={"sql"},
    description=(
        "Health of the seven MARBA jobs over their last 20 runs or 7 days (rules of docs/architecture.md: "
        "healthy above 90% with the last run good, degraded 70-90% or recent failures, "
        "unhealthy under 70% or a failed last run), with average duration and its trend."
    ),
)
def job_health_report(
    context: dg.AssetExecutionContext, marba_db: MarbaDatabase
) -> dg.MaterializeResult:
    now = utcnow()
    rows = []
    counts = {"healthy": 0, "degraded": 0, "unhealthy": 0, "unknown": 0}
    with marba_db.begin() as conn:
        t.ensure_jobs(conn)
        for spec in JOBS:
            report = t.job_health(conn, spec.name, now)
            state = t.job_row(conn, spec.name) or {}
            if report.health != state.get("health"):
                t.update_job(conn, spec.name, health=report.health)
            counts[report.health] += 1
            rows.append(
                {
                    "job": spec.name,
                    "state": state.get("status", "active"),
                    "health": report.health,
                    "success_rate": "-"
                    if report.success_rate is None
                    else f"{report.success_rate:.0%}",
                    "runs": report.runs,
                    "last_run": report.last_status or "-",
                    "avg_seconds": "-"
                    if report.avg_duration_seconds is None
                    else round(report.avg_duration_seconds, 1),
                    "trend": report.duration_trend,
                }
            )
    context.log.info(", ".join(f"{r['job']}={r['health']}" for r in rows))
    return dg.MaterializeResult(
        metadata={
            "jobs_healthy": counts["healthy"],
            "jobs_degraded": counts["degraded"],
            "jobs_unhealthy": counts["unhealthy"],
            "jobs_unknown": counts["unknown"],
            "jobs_circuit_open": sum(1 for r in rows if r["state"] == "circuit_open"),
            "report": dg.MetadataValue.md(
                markdown_table(
                    rows,
                    [
                        "job",
                        "state",
                        "health",
                        "success_rate",
                        "runs",
                        "last_run",
                        "avg_seconds",
                        "trend",
                    ],
                )
            ),
        }
    )


job_health_report_job = dg.define_asset_job(
    name="job_health_report_job",
    selection=dg.AssetSelection.assets(job_health_report),
    description="Refreshes the job health report.",
)

job_health_report_schedule = dg.ScheduleDefinition(
    name="job_health_report_schedule",
    job=job_health_report_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 15 minutes.",
)


class CleanupConfig(dg.Config):
    older_than_days: float = LOG_RETENTION_DAYS


@dg.op(description="Deletes job_logs rows older than the retention (30 days by default).")
def delete_old_job_logs(
    context: dg.OpExecutionContext, config: CleanupConfig, marba_db: MarbaDatabase
) -> int:
    with marba_db.begin() as conn:
        deleted = t.cleanup_logs(conn, timedelta(days=config.older_than_days))
    context.log.info(f"deleted {deleted} job_logs rows older than {config.older_than_days:g} days")
    context.add_output_metadata({"deleted": deleted})
    return deleted


@dg.job(
    name="job_logs_cleanup",
    description="Deletes job_logs older than 30 days (`marba cleanup-logs`).",
)
def job_logs_cleanup():
    delete_old_job_logs()


job_logs_cleanup_schedule = dg.ScheduleDefinition(
    name="job_logs_cleanup_schedule",
    job=job_logs_cleanup,
    cron_schedule="30 5 * * 0",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekly, Sunday 05:30 UTC.",
)
