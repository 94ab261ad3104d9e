"""The seven MARBA jobs and their schedules.

Each job selects its domain's asset group, so assets added to a group join its job. A
schedule's cron can be overridden per job with ``MARBA_CRON_<JOB>`` (read when Dagster loads
the code location). Every run is tagged ``marba/job`` and ``marba/shard`` so the run queue
can limit how many runs of a job go at once and keep two runs of one shard apart.

A tick with more active brands than ``MARBA_BRANDS_PER_RUN`` asks for one run per brand
shard (``core.shards``), each with a run key derived from the tick's time and the shard's
place, so a daemon that evaluates the tick again after a restart launches none twice.
"""

from __future__ import annotations

from datetime import datetime, timezone

import dagster as dg

from marba_dagster.core.catalog import JOBS, JobSpec
from marba_dagster.core.run_scope import NothingToRun
from marba_dagster.core.runs import JOB_TAG
from marba_dagster.defs.execution import run_executor
from marba_dagster.instance.partitions import shard_runs_now
from marba_dagster.settings import job_cron


def _asset_job(
    spec: JobSpec, executor: dg.ExecutorDefinition | None
) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=spec.name,
        selection=dg.AssetSelection.groups(spec.group),
        description=f"{spec.description} (also known as {spec.alias})",
        tags={JOB_TAG: spec.name},
        executor_def=executor,
    )


def _schedule(spec: JobSpec, job, cron: str) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=f"{spec.name}_schedule",
        cron_schedule=cron,
        job=job,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"{spec.alias}: {cron} UTC",
    )
    def _tick(context: dg.ScheduleEvaluationContext):
        when = context.scheduled_execution_time or datetime.now(timezone.utc)
        try:
            runs = shard_runs_now(spec, when, context.instance)
        except NothingToRun as exc:
            return dg.SkipReason(str(exc))
        if len(runs) > 1:
            context.log.info(f"{len(runs)} brand shards of at most {max_shard_size(runs)} brands")
        return [
            dg.RunRequest(run_key=run.run_key, partition_key=run.partition_key, tags=run.tags)
            for run in runs
        ]

    return _tick


def max_shard_size(runs) -> int:
    return max(run.shard.brands for run in runs)


def build_jobs_and_schedules():
    jobs, schedules = [], []
    executor = run_executor()  # MARBA_EXECUTOR: Dagster's default or Celery workers
    for spec in JOBS:
        job = _asset_job(spec, executor)
        jobs.append(job)
        schedules.append(_schedule(spec, job, job_cron(spec)))
    return jobs, schedules


@dg.definitions
def jobs_and_schedules() -> dg.Definitions:
    jobs, schedules = build_jobs_and_schedules()
    return dg.Definitions(jobs=jobs, schedules=schedules)
