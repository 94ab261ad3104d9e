"""Sensors that keep the MARBA app's view of the jobs current (all running by default).

- ``marba_run_started`` / ``marba_run_succeeded`` / ``marba_run_failed`` /
  ``marba_run_canceled``: one ``job_executions`` row per run of a MARBA job (status, times,
  brands processed and failed, error); a failed run's message goes to ``job_logs``.
- ``marba_job_supervisor``: the circuit breaker (open, probe, close), ``background_jobs``
  kept in step with the schedules, health, and an alert when a job turns unhealthy.
"""


import dagster as dg

from marba_dagster.core.catalog import JobSpec, job_for_group
from marba_dagster.defs.monitoring import tracking as t
from marba_dagster.defs.monitoring.control import JobControl
from marba_dagster.defs.monitoring.settings import CircuitBreakerSettings
from marba_dagster.defs.monitoring.supervisor import supervise
from marba_dagster.defs.resources import MarbaDatabase, Notifier

TRACK_INTERVAL_SECONDS = 15
SUPERVISE_INTERVAL_SECONDS = 30


def _spec_for(context: dg.RunStatusSensorContext, run: dg.DagsterRun) -> JobSpec | None:
    spec = t.marba_job_of(run)
    if spec or not run.asset_selection or context.repository_def is None:
        return spec
    # A run started from the asset graph (``__ASSET_JOB``): the job whose group holds all
    # the selected assets.
    graph = context.repository_def.asset_graph
    groups = set()
    for key in run.asset_selection:
        if not graph.has(key):
            return None
        groups.add(graph.get(key).group_name)
    if len(groups) == 1:
        return job_for_group(groups.pop())
    return None


def track(context: dg.RunStatusSensorContext, marba_db: MarbaDatabase) -> None:
    run = context.dagster_run
    spec = _spec_for(context, run)
    if spec is None:
        return
    facts = t.run_facts(context.instance, run, spec)
    with marba_db.begin() as conn:
        t.ensure_jobs(conn)
        t.record_run(conn, facts)
        if facts.status in ("failure", "canceled", "partial"):
            t.log_run_failure(conn, facts)
    context.log.info(f"{spec.name} run {run.run_id}: {facts.status}")


def _tracker(name: str, status: dg.DagsterRunStatus, description: str):
    @dg.run_status_sensor(
        name=name,
        run_status=status,
        description=description,
        minimum_interval_seconds=TRACK_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
    )
    def _sensor(context: dg.RunStatusSensorContext, marba_db: MarbaDatabase):
        track(context, marba_db)

    return _sensor


marba_run_started = _tracker(
    "marba_run_started", dg.DagsterRunStatus.STARTED, "Records a MARBA job run as running in job_executions."
)
marba_run_succeeded = _tracker(
    "marba_run_succeeded", dg.DagsterRunStatus.SUCCESS, "Records a successful MARBA job run in job_executions."
)
marba_run_canceled = _tracker(
    "marba_run_canceled", dg.DagsterRunStatus.CANCELED, "Records a canceled MARBA job run in job_executions and job_logs."
)


@dg.run_failure_sensor(
    name="marba_run_failed",
    description="Records a failed MARBA job run in job_executions and its error in job_logs.",
    minimum_interval_seconds=TRACK_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def marba_run_failed(context: dg.RunFailureSensorContext, marba_db: MarbaDatabase):
    track(context, marba_db)


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
