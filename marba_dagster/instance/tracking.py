"""Run tracking: what a Dagster run of a MARBA job did, recorded in the app's job tables.

``run_facts`` reads a run's status, times, brands and errors from the Dagster instance;
``sync_run`` writes them (``store.jobs``) — called by ``MarbaInstance`` as each run changes,
by the ``marba_run_tracker`` sensor to reconcile, and by the CLI and API before they read.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import dagster as dg
from sqlalchemy.engine import Engine

from marba_dagster.core.catalog import JobSpec, resolve
from marba_dagster.core.runs import (
    JOB_TAG,
    MAX_ERROR_CHARS,
    OUTCOME_TAG,
    PROBE_TAG,
    RUN_LOSS_CHECKS,
    SHARD_OF_TAG,
    TICK_TAG,
    TRIGGER_TAG,
    RunFacts,
    partial_outcome,
    root_cause,
    step_label,
)
from marba_dagster.core.shards import parse_shard_of
from marba_dagster.settings import job_crons
from marba_dagster.store import jobs as store_jobs
from marba_dagster.store.types import utcnow

_RUN_STATUS = {
    dg.DagsterRunStatus.SUCCESS: "success",
    dg.DagsterRunStatus.FAILURE: "failure",
    dg.DagsterRunStatus.CANCELED: "canceled",
    dg.DagsterRunStatus.CANCELING: "running",
    dg.DagsterRunStatus.STARTED: "running",
    dg.DagsterRunStatus.STARTING: "running",
    dg.DagsterRunStatus.QUEUED: "queued",
    dg.DagsterRunStatus.NOT_STARTED: "queued",
}


def marba_job_of(run: dg.DagsterRun) -> JobSpec | None:
    """The MARBA job a Dagster run belongs to: its ``marba/job`` tag or its job name."""
    for name in (run.tags.get(JOB_TAG), run.job_name):
        if not name:
            continue
        try:
            return resolve(name)
        except KeyError:
            continue
    return None


def shard_of(run: dg.DagsterRun) -> tuple[str, int, int] | None:
    """(the tick's execution id, shard index, shard count) of a brand shard's run."""
    tick = run.tags.get(TICK_TAG)
    place = parse_shard_of(run.tags.get(SHARD_OF_TAG))
    if not tick or place is None:
        return None
    return tick, place[0], place[1]


def run_status(status: dg.DagsterRunStatus) -> str:
    return _RUN_STATUS.get(status, status.value.lower())


def trigger_of(run: dg.DagsterRun) -> str:
    tags = run.tags
    if tags.get(PROBE_TAG):
        return "circuit_probe"
    if tags.get(TRIGGER_TAG):
        return tags[TRIGGER_TAG]
    if tags.get("dagster/schedule_name"):
        return "schedule"
    if tags.get("dagster/sensor_name"):
        return "sensor"
    if tags.get("dagster/backfill"):
        return "backfill"
    return "manual"


def _ts(value: float | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, tz=utcnow().tzinfo)


def _int_meta(metadata: dict, key: str) -> int | None:
    value = metadata.get(key)
    raw = getattr(value, "value", value)
    if isinstance(raw, bool) or raw is None:
        return None
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def run_facts(instance: dg.DagsterInstance, run: dg.DagsterRun, spec: JobSpec) -> RunFacts:
    """Status, times, brands processed/failed and the error of ``run``.

    Brands come from the materialization metadata keys ``brands_processed`` and
    ``brands_failed`` (largest value across the run's assets: each asset of a job covers the
    same brands) and from a ``dg.Failure``'s ``brands_failed``; a brand-partitioned run
    without the key counts its materialized brand partitions. A run that succeeded but left
    something out (a failed WARN asset check: brands that failed, an outside source lost, AI
    unavailable) is ``partial`` and its error lists what was lost, from the checks'
    descriptions; a failed step's error is its root cause, not the retry wrapper.
    """
    record = instance.get_run_record_by_id(run.run_id)
    started = _ts(record.start_time) if record else None
    finished = _ts(record.end_time) if record else None
    wanted = {
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.ASSET_CHECK_EVALUATION,
        dg.DagsterEventType.STEP_FAILURE,
        dg.DagsterEventType.RUN_FAILURE,
        dg.DagsterEventType.RUN_CANCELED,
    }
    processed: int | None = None
    failed: int | None = None
    partitions: set[str] = set()
    errors: list[str] = []
    warnings: list[str] = []
    run_error: str | None = None
    for entry in instance.all_logs(run.run_id, of_type=wanted):
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.step_materialization_data.materialization
            meta = dict(mat.metadata)
            p, f = _int_meta(meta, "brands_processed"), _int_meta(meta, "brands_failed")
            if p is not None:
                processed = max(processed or 0, p)
            if f is not None:
                failed = max(failed or 0, f)
            if mat.partition:
                partitions.add(mat.partition)
        elif event.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if evaluation.passed:
                continue
            f = _int_meta(dict(evaluation.metadata or {}), "brands_failed")
            if f is not None:
                failed = max(failed or 0, f)
            what = (evaluation.description or evaluation.check_name).strip().splitlines()[0]
            line = f"{evaluation.asset_key.to_user_string()} {evaluation.check_name}: {what}"
            if evaluation.severity != dg.AssetCheckSeverity.WARN:
                errors.append(line)
            elif evaluation.check_name in RUN_LOSS_CHECKS:
                warnings.append(line)
            # Other WARN checks describe the data as a whole (entries expired since an earlier
            # run, say), not what this run left out: visible on the asset, not the run's outcome.
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            if data.user_failure_data is not None:
                f = _int_meta(dict(data.user_failure_data.metadata or {}), "brands_failed")
                if f is not None:
                    failed = max(failed or 0, f)
            described = data.user_failure_data.description if data.user_failure_data else None
            message = (
                (described or "").strip().splitlines()[0] if described else root_cause(data.error)
            )
            errors.append(f"{step_label(event.step_key)}: {message}")
        elif event.event_type in (
            dg.DagsterEventType.RUN_FAILURE,
            dg.DagsterEventType.RUN_CANCELED,
        ):
            data = event.event_specific_data
            detail = root_cause(data.error) if getattr(data, "error", None) is not None else None
            message = (event.message or entry.user_message or "").strip().splitlines()
            run_error = (
                detail if detail and detail != "failed" else (message[0] if message else None)
            )
    if processed is None and spec.partitioning == "brands":
        processed = len(partitions)
    status = run_status(run.status)
    if status in ("failure", "canceled"):
        error = (
            "; ".join(_unique(errors))
            or run_error
            or ("run canceled" if status == "canceled" else "run failed")
        )
        # Some brands failed while others kept their results: not a failure of the job.
        if (
            status == "failure"
            and (processed or 0) > 0
            and (failed or 0) > 0
            and _only_brand_failures(errors)
        ):
            status = "partial"
    elif status == "success" and (warnings or errors or (failed or 0) > 0):
        status = "partial"
        error = "; ".join(_unique(errors + warnings)) or f"{failed} brand(s) failed"
    else:
        error = None
    return RunFacts(
        job_name=spec.name,
        run_id=run.run_id,
        status=status,
        trigger=trigger_of(run),
        partition_key=run.tags.get("dagster/partition"),
        started_at=started,
        finished_at=finished if status not in ("running", "queued") else None,
        brands_processed=processed or 0,
        brands_failed=failed or 0,
        error=error[:MAX_ERROR_CHARS] if error else None,
    )


def _unique(lines: list[str]) -> list[str]:
    return list(dict.fromkeys(lines))


def _only_brand_failures(errors: list[str]) -> bool:
    return bool(errors) and all("brand(s) failed" in e for e in errors)


def sync_run(
    instance: dg.DagsterInstance, engine: Engine, run: dg.DagsterRun, spec: JobSpec | None = None
) -> RunFacts | None:
    """Bring ``run``'s records up to date.

    That is its ``job_executions`` row (for one brand shard of a tick: its
    ``job_execution_shards`` row and the tick's combined ``job_executions`` row), its job's
    ``background_jobs`` last run and, for a failed, canceled or partial run, its ``job_logs``
    line (with the run's own id).

    Idempotent: the row is keyed by run id, so whichever process records a run first (the
    run's own process through ``MarbaInstance``, the daemon's tracker sensor, the CLI), the
    others only refresh it. Returns ``None`` for a run that is not a MARBA job's.
    """
    spec = spec or marba_job_of(run)
    if spec is None:
        return None
    facts = run_facts(instance, run, spec)
    shard = shard_of(run)
    with engine.begin() as conn:
        if store_jobs.job_row(conn, spec.name) is None:
            store_jobs.sync_background_jobs(conn, job_crons())
        if shard is None:
            store_jobs.record_run(conn, facts)
        else:
            # One brand shard of a tick: its own row in job_execution_shards, and the tick's
            # one job_executions row combined from all of its shards.
            store_jobs.record_shard_run(conn, facts, *shard)
        if facts.status in ("failure", "canceled", "partial"):
            store_jobs.log_run_failure(conn, facts)
    # ``background_jobs.health`` is left to the supervisor: it alerts when it changes.
    if facts.status == "partial" and OUTCOME_TAG not in run.tags:
        # Dagster shows the run as a success; the tag says on the Runs page and the job's
        # page, at a glance, that it left something out (the run's checks say what).
        instance.add_run_tags(run.run_id, {OUTCOME_TAG: partial_outcome(facts)})
    return facts


# How far back the tracker looks on its first tick (runs made before the daemon came up).
RECONCILE_LOOKBACK = timedelta(days=7)


RECONCILE_BATCH = 200


def sync_runs(
    instance: dg.DagsterInstance,
    engine: Engine,
    *,
    updated_after: datetime | None = None,
    limit: int = RECONCILE_BATCH,
    spec_of=None,
) -> tuple[int, datetime | None]:
    """Record every MARBA run updated after ``updated_after`` (default: the last seven days),
    oldest update first, at most ``limit``; returns (runs recorded, newest update seen) so a
    caller can continue from there. ``spec_of(run)`` may attribute runs that carry no
    ``marba/job`` tag (runs made on an instance without ``MarbaInstance``)."""
    since = updated_after or (utcnow() - RECONCILE_LOOKBACK)
    records = instance.get_run_records(
        filters=dg.RunsFilter(updated_after=since),
        limit=limit,
        order_by="update_timestamp",
        ascending=True,
    )
    recorded = 0
    newest: datetime | None = None
    for record in records:
        run = record.dagster_run
        spec = (spec_of(run) if spec_of else None) or marba_job_of(run)
        if spec is not None and sync_run(instance, engine, run, spec) is not None:
            recorded += 1
        stamp = record.update_timestamp
        if stamp is not None:
            stamp = stamp if stamp.tzinfo else stamp.replace(tzinfo=timezone.utc)
            newest = stamp if newest is None or stamp > newest else newest
    return recorded, newest
