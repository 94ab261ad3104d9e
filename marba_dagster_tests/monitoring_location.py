"""A small code location for the monitoring tests: the real seven jobs and schedules, the
real monitoring sensors and report, and one tiny asset per job group.

Each tiny asset fails when the file ``<MARBA_TEST_CONTROL_DIR>/<job>.fail`` exists, so a
test decides which runs fail without patching anything; it reports ``brands_processed`` /
``brands_failed`` like the real assets do. The monitoring code is generic over jobs, so it
is exercised here on the same job names, schedules and tags as production.
"""

import os
from pathlib import Path

import dagster as dg

from marba_dagster.core.catalog import JOBS
from marba_dagster.defs.brands import brand_partitions_sensor, brands_partitions
from marba_dagster.defs.jobs import build_jobs_and_schedules
from marba_dagster.defs.monitoring import assets as monitoring_assets
from marba_dagster.defs.monitoring import jobs as monitoring_jobs
from marba_dagster.defs.monitoring import sensors
from marba_dagster.defs.monitoring.resources import build_circuit_settings
from marba_dagster.defs.partitions import daily_partitions, hourly_partitions
from marba_dagster.defs.resources import build_resources

CONTROL_DIR_VAR = "MARBA_TEST_CONTROL_DIR"
_PARTITIONS = {
    "brands": brands_partitions,
    "daily": daily_partitions,
    "hourly": hourly_partitions,
    "none": None,
}


def _tiny_asset(spec):
    @dg.asset(
        name=f"{spec.group}_probe",
        group_name=spec.group,
        partitions_def=_PARTITIONS[spec.partitioning],
        description=f"Test stand-in for the {spec.name} assets.",
    )
    def _asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        control = os.environ.get(CONTROL_DIR_VAR)
        if control and (Path(control) / f"{spec.name}.fail").exists():
            raise dg.Failure(description=f"{spec.name} told to fail by the test")
        return dg.MaterializeResult(metadata={"brands_processed": 3, "brands_failed": 0})

    return _asset


TINY_ASSETS = [_tiny_asset(spec) for spec in JOBS]


@dg.definitions
def defs() -> dg.Definitions:
    jobs, schedules = build_jobs_and_schedules()
    return dg.Definitions(
        assets=[*TINY_ASSETS, monitoring_assets.job_health_report],
        jobs=[*jobs, monitoring_jobs.job_health_report_job, monitoring_jobs.job_logs_cleanup],
        schedules=[
            *schedules,
            monitoring_jobs.job_health_report_schedule,
            monitoring_jobs.job_logs_cleanup_schedule,
        ],
        sensors=[
            brand_partitions_sensor,
            sensors.marba_run_tracker,
            sensors.marba_job_supervisor,
        ],
        resources={**build_resources(), "circuit_breaker": build_circuit_settings()},
        executor=dg.in_process_executor,
    )
