"""The seven MARBA jobs and their schedules.

Each job selects its domain's asset group, so assets added to a group join its job. A
schedule's cron can be overridden per job with ``MARBA_CRON_<JOB>`` (read when Dagster loads
the code location). Every run is tagged ``marba/job`` so the run queue can limit each job to
one run at a time.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from marba_dagster.core.catalog import JOBS, JobSpec
from marba_dagster.core.runs import BRANDS_TAG, JOB_TAG
from marba_dagster.defs.brands import BRANDS_PARTITIONS_NAME, brand_id_of
from marba_dagster.settings import job_cron


class NothingToRun(Exception):
    """The job has no work in this scope (e.g. no brand partitions yet)."""


def run_scope(
    spec: JobSpec,
    now: datetime,
    instance: dg.DagsterInstance,
    brand_ids: list[str] | None = None,
) -> tuple[str | None, dict[str, str]]:
    """(partition key, tags) for a run of ``spec`` covering its current work at ``now``.

    Daily jobs take the latest complete UTC day, hourly jobs the latest complete hour,
    brand-partitioned jobs the range of every brand partition (one run for all brands) or
    the given brands; ``brand_ids`` narrows any job through the ``marba/brands`` tag.
    """
    now = now.astimezone(timezone.utc)
    tags = {JOB_TAG: spec.name}
    if brand_ids:
        tags[BRANDS_TAG] = ",".join(brand_ids)
    if spec.partitioning == "daily":
        return (now - timedelta(days=1)).strftime("%Y-%m-%d"), tags
    if spec.partitioning == "hourly":
        return (now - timedelta(hours=1)).strftime("%Y-%m-%d-%H:00"), tags
    if spec.partitioning == "brands":
        keys = instance.get_dynamic_partitions(BRANDS_PARTITIONS_NAME)
        if brand_ids:
            keys = [k for k in keys if brand_id_of(k) in set(brand_ids)]
            if len(keys) == 1:
                return keys[0], tags
        if not keys:
            raise NothingToRun("no brand partitions yet (no active brands synced)")
        tags[ASSET_PARTITION_RANGE_START_TAG] = keys[0]
        tags[ASSET_PARTITION_RANGE_END_TAG] = keys[-1]
        return None, tags
    return None, tags


def _asset_job(spec: JobSpec) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=spec.name,
        selection=dg.AssetSelection.groups(spec.group),
        description=f"{spec.description} (also known as {spec.alias})",
        tags={JOB_TAG: spec.name},
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
            partition_key, tags = run_scope(spec, when, context.instance)
        except NothingToRun as exc:
            return dg.SkipReason(str(exc))
        run_key = f"{spec.name}:{when.astimezone(timezone.utc).isoformat()}"
        return dg.RunRequest(run_key=run_key, partition_key=partition_key, tags=tags)

    return _tick


def build_jobs_and_schedules():
    jobs, schedules = [], []
    for spec in JOBS:
        job = _asset_job(spec)
        jobs.append(job)
        schedules.append(_schedule(spec, job, job_cron(spec)))
    return jobs, schedules


@dg.definitions
def jobs_and_schedules() -> dg.Definitions:
    jobs, schedules = build_jobs_and_schedules()
    return dg.Definitions(jobs=jobs, schedules=schedules)
