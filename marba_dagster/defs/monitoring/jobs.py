"""The monitoring group's jobs and schedules: the health report every 15 minutes and the
weekly ``job_logs`` cleanup."""

from datetime import timedelta

import dagster as dg

from marba_dagster.defs.monitoring.assets import job_health_report
from marba_dagster.defs.resources import MarbaDatabase
from marba_dagster.store import jobs as job_store

LOG_RETENTION_DAYS = 30

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
        deleted = job_store.cleanup_logs(conn, timedelta(days=config.older_than_days))
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
