"""Sensors that keep the MARBA app's view of the jobs current (all running by default).

- ``marba_run_tracker``: every run of a MARBA job in ``job_executions`` (status, times,
  brands processed and failed, error) and its job's ``background_jobs`` row. Runs are
  recorded the moment they change by ``MarbaInstance`` in whichever process reports the
  change; this sensor reconciles from Dagster's run storage what that could not record
  (runs made before the daemon came up or on an instance without the MARBA class, the
  MARBA database briefly unreachable). Recording is keyed by run id, so nothing is counted
  twice.
- ``marba_job_supervisor``: the circuit breaker (open, probe, close), ``background_jobs``
  kept in step with the schedules, health, and an alert when a job turns unhealthy.
"""

from datetime import datetime, timedelta
from functools import partial

import dagster as dg

from marba_dagster.core.catalog import JobSpec, job_for_group
from marba_dagster.defs.monitoring.resources import CircuitBreakerSettings
from marba_dagster.defs.resources import MarbaDatabase, Notifier
from marba_dagster.instance import show_automation_on, tracking
from marba_dagster.instance.control import JobControl
from marba_dagster.services.supervision import supervise

TRACK_INTERVAL_SECONDS = 15
SUPERVISE_INTERVAL_SECONDS = 30


def spec_for_run(repository_def, run: dg.DagsterRun) -> JobSpec | None:
    """The MARBA job of ``run``: its tag or job name, else (a run made without the MARBA
    instance class from the asset graph) the job whose group holds every selected asset."""
    spec = tracking.marba_job_of(run)
    if spec or not run.asset_selection or repository_def is None:
        return spec
    graph = repository_def.asset_graph
    groups = set()
    for key in run.asset_selection:
        if not graph.has(key):
            return None
        groups.add(graph.get(key).group_name)
    return job_for_group(groups.pop()) if len(groups) == 1 else None


@dg.sensor(
    name="marba_run_tracker",
    description="Reconciles job_executions and background_jobs with Dagster's runs: records "
    "every MARBA run that changed since the last tick and is not recorded yet (runs made "
    "before the daemon started included).",
    minimum_interval_seconds=TRACK_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def marba_run_tracker(context: dg.SensorEvaluationContext, marba_db: MarbaDatabase):
    if not context.cursor:  # the first tick on this instance
        show_automation_on(context.instance)
    since = datetime.fromisoformat(context.cursor) if context.cursor else None
    recorded, newest = tracking.sync_runs(
        context.instance,
        marba_db.engine,
        updated_after=since,
        spec_of=partial(spec_for_run, context.repository_def),
    )
    if newest is not None:
        # A full batch may stop inside a group of runs updated in the same instant: step
        # back a little so the next tick sees the rest (recording again is harmless).
        if recorded >= tracking.RECONCILE_BATCH:
            newest -= timedelta(milliseconds=1)
        context.update_cursor(newest.isoformat())
    return dg.SkipReason(f"{recorded} MARBA run(s) recorded or brought up to date")


@dg.sensor(
    name="marba_job_supervisor",
    description=(
        "Circuit breaker per job (opens at >=3 failures and >50% of the last 10 runs by "
        "default, stops the schedule; after the cool-down one probe run closes or reopens "
        "it), background_jobs kept in step with the schedules, health alerts."
    ),
    minimum_interval_seconds=SUPERVISE_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def marba_job_supervisor(
    context: dg.SensorEvaluationContext,
    marba_db: MarbaDatabase,
    notifier: Notifier,
    circuit_breaker: CircuitBreakerSettings,
):
    origin = context.code_location_origin
    control = JobControl(context.instance, location_name=origin.location_name if origin else None)
    try:
        actions = supervise(
            marba_db.engine, control, circuit_breaker.config(), webhook_url=notifier.webhook_url
        )
    finally:
        control.close()
    for a in actions:
        context.log.info(f"{a.job}: {a.action} ({a.detail})")
    if not actions:
        return dg.SkipReason("all jobs as they were")
    return dg.SkipReason("; ".join(f"{a.job}: {a.action}" for a in actions)[:1000])
