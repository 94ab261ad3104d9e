"""The MARBA app's view of the jobs: ``background_jobs``, ``job_executions``, ``job_logs``.

Read and written here (SQLAlchemy Core, both databases); the monitoring sensors, the job
health report, the Python API and the CLI all go through these functions, so the app's
monitor never needs Dagster's own storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from marba_dagster.core import health as h
from marba_dagster.core.catalog import JOBS, JobSpec, effective_cron, resolve
from marba_dagster.defs.common import BRANDS_CHECK, SOURCES_CHECK
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert
from marba_dagster.store.queries import sync_background_jobs
from marba_dagster.store.types import utcnow

JOB_TAG = "marba/job"
# The checks in which a run reports what it left out (``defs.common``): a run that fails one
# of them is a partial success.
RUN_LOSS_CHECKS = frozenset({BRANDS_CHECK, SOURCES_CHECK})
PROBE_TAG = "marba/probe"
TRIGGER_TAG = "marba/trigger"
OUTCOME_TAG = "marba/outcome"
MAX_ERROR_CHARS = 2000

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


@dataclass
class RunFacts:
    """What a finished (or started) run did, read from the Dagster instance."""

    job_name: str
    run_id: str
    status: str
    trigger: str
    partition_key: str | None
    started_at: datetime | None
    finished_at: datetime | None
    brands_processed: int
    brands_failed: int
    error: str | None

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return max(0.0, (self.finished_at - self.started_at).total_seconds())
        return None


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


def root_cause(error: Any) -> str:
    """The one line that says why a step or run failed: the innermost cause of a Dagster
    ``SerializableErrorInfo`` (step retries wrap the user's error as "Exceeded max_retries",
    user-code errors as "Error occurred while executing ..."), as ``Class: message``."""
    if error is None:
        return "failed"
    inner = error
    while getattr(inner, "cause", None) is not None:
        inner = inner.cause
    message = (getattr(inner, "message", "") or "").strip()
    first = message.splitlines()[0].strip() if message else ""
    cls = getattr(inner, "cls_name", None)
    if first and cls and not first.startswith(f"{cls}:") and inner is not error:
        return f"{cls}: {first}"
    return first or cls or "failed"


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
            errors.append(f"{event.step_key}: {message}")
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


def record_run(conn: Connection, facts: RunFacts) -> None:
    """One ``job_executions`` row per run, inserted or brought up to date, and the job's
    ``background_jobs.last_run_*`` when this is its newest run."""
    row = {
        "job_name": facts.job_name,
        "run_id": facts.run_id,
        "status": facts.status,
        "trigger": facts.trigger,
        "partition_key": facts.partition_key,
        "started_at": facts.started_at,
        "finished_at": facts.finished_at,
        "duration_seconds": facts.duration_seconds,
        "brands_processed": facts.brands_processed,
        "brands_failed": facts.brands_failed,
        "error": facts.error,
    }
    upsert(conn, s.job_executions, [row], ["run_id"])
    _update_last_run(conn, facts)


def _update_last_run(conn: Connection, facts: RunFacts) -> None:
    t = s.job_executions
    order = sa.func.coalesce(t.c.started_at, t.c.finished_at)
    newest = conn.execute(
        sa.select(t.c.run_id)
        .where(t.c.job_name == facts.job_name, order.is_not(None))
        .order_by(order.desc(), t.c.id.desc())
        .limit(1)
    ).scalar()
    values: dict[str, Any] = {}
    if newest in (None, facts.run_id):
        values.update(
            last_run_id=facts.run_id,
            last_run_status=facts.status,
            last_run_started_at=facts.started_at,
            last_run_finished_at=facts.finished_at,
            last_run_error=facts.error,
        )
    if facts.status in h.SUCCESS_STATUSES and facts.finished_at is not None:
        bj = s.background_jobs
        current = conn.execute(
            sa.select(bj.c.last_success_at).where(bj.c.name == facts.job_name)
        ).scalar()
        if current is None or current < facts.finished_at:
            values["last_success_at"] = facts.finished_at
    if values:
        update_job(conn, facts.job_name, **values)


def log_run_failure(conn: Connection, facts: RunFacts) -> None:
    """The run's failure into ``job_logs`` once (the sensor may see a run twice)."""
    exists = conn.execute(
        sa.select(sa.func.count())
        .select_from(s.job_logs)
        .where(
            s.job_logs.c.run_id == facts.run_id,
            s.job_logs.c.brand_id.is_(None),
            s.job_logs.c.message.like("run %"),
        )
    ).scalar_one()
    if exists:
        return
    conn.execute(
        s.job_logs.insert().values(
            job_name=facts.job_name,
            run_id=facts.run_id,
            level="error" if facts.status in ("failure", "canceled") else "warning",
            brand_id=None,
            message=f"run {facts.status}: {facts.error or 'no error message'}",
            context={"kind": "run_failure", "brands_failed": facts.brands_failed},
            created_at=utcnow(),
        )
    )


def sync_run(
    instance: dg.DagsterInstance, engine: Engine, run: dg.DagsterRun, spec: JobSpec | None = None
) -> RunFacts | None:
    """Bring ``run``'s ``job_executions`` row, its job's ``background_jobs`` last run and, for a failed, canceled or partial run, its ``job_logs`` line up to date.

    Idempotent: the row is keyed by run id, so whichever process records a run first (the
    run's own process through ``MarbaInstance``, the daemon's tracker sensor, the CLI), the
    others only refresh it. Returns ``None`` for a run that is not a MARBA job's.
    """
    spec = spec or marba_job_of(run)
    if spec is None:
        return None
    facts = run_facts(instance, run, spec)
    with engine.begin() as conn:
        if job_row(conn, spec.name) is None:
            ensure_jobs(conn)
        record_run(conn, facts)
        if facts.status in ("failure", "canceled", "partial"):
            log_run_failure(conn, facts)
    # ``background_jobs.health`` is left to the supervisor: it alerts when it changes.
    if facts.status == "partial" and OUTCOME_TAG not in run.tags:
        # Dagster shows the run as a success; the tag says on the Runs page and the job's
        # page, at a glance, that it left something out (the run's checks say what).
        instance.add_run_tags(run.run_id, {OUTCOME_TAG: partial_outcome(facts)})
    return facts


def partial_outcome(facts: RunFacts) -> str:
    """``partial: 2 brands failed, source lost`` (a run tag's short value)."""
    parts = []
    if facts.brands_failed:
        parts.append(f"{facts.brands_failed} brand{'s' if facts.brands_failed != 1 else ''} failed")
    if facts.error and SOURCES_CHECK in facts.error:
        parts.append("source lost")
    return "partial: " + (", ".join(parts) or "see the run's checks")


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


def ensure_jobs(conn: Connection) -> None:
    sync_background_jobs(conn, {j.name: effective_cron(j) for j in JOBS})


def job_row(conn: Connection, name: str) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(s.background_jobs).where(s.background_jobs.c.name == name))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def update_job(conn: Connection, name: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    conn.execute(
        sa.update(s.background_jobs).where(s.background_jobs.c.name == name).values(**values)
    )


def executions(
    conn: Connection,
    job_name: str | None = None,
    *,
    limit: int = 50,
    since: datetime | None = None,
    finished_only: bool = False,
) -> list[dict[str, Any]]:
    """``job_executions`` rows, newest first."""
    t = s.job_executions
    order = sa.func.coalesce(t.c.started_at, t.c.finished_at)
    q = sa.select(t).order_by(
        order.desc().nulls_last() if conn.dialect.name == "postgresql" else order.desc(),
        t.c.id.desc(),
    )
    if job_name:
        q = q.where(t.c.job_name == job_name)
    if since is not None:
        q = q.where(order >= since)
    if finished_only:
        q = q.where(t.c.status.in_(sorted(h.FINISHED_STATUSES)))
    return [dict(r) for r in conn.execute(q.limit(limit)).mappings()]


def as_execution(row: dict[str, Any]) -> h.Execution:
    return h.Execution(
        status=row["status"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        duration_seconds=row["duration_seconds"],
        run_id=row["run_id"],
    )


def job_health(
    conn: Connection,
    job_name: str,
    now: datetime | None = None,
    *,
    window_runs: int = 20,
    window_days: float = 7,
) -> h.HealthReport:
    now = now or utcnow()
    rows = executions(
        conn,
        job_name,
        limit=window_runs,
        since=now - timedelta(days=window_days),
        finished_only=True,
    )
    return h.assess(
        [as_execution(r) for r in rows], now, window_runs=window_runs, window_days=window_days
    )


def logs(
    conn: Connection,
    job_name: str | None = None,
    *,
    level: str | None = None,
    brand_id: str | None = None,
    run_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    t = s.job_logs
    q = sa.select(t).order_by(t.c.created_at.desc(), t.c.id.desc()).limit(limit)
    if job_name:
        q = q.where(t.c.job_name == job_name)
    if level:
        q = q.where(t.c.level == level)
    if brand_id:
        q = q.where(t.c.brand_id == brand_id)
    if run_id:
        q = q.where(t.c.run_id == run_id)
    return [dict(r) for r in conn.execute(q).mappings()]


def cleanup_logs(conn: Connection, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete ``job_logs`` rows created before ``now - older_than``; returns how many."""
    if older_than.total_seconds() <= 0:
        raise ValueError("older_than must be a positive duration")
    cutoff = (now or utcnow()) - older_than
    return conn.execute(sa.delete(s.job_logs).where(s.job_logs.c.created_at < cutoff)).rowcount or 0


def parse_age(text: str) -> timedelta:
    """``30d``, ``12h``, ``45m``, ``2w`` (or a bare number of days) as a duration."""
    raw = text.strip().lower()
    units = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
    unit = raw[-1:] if raw[-1:] in units else "d"
    number = raw[:-1] if raw[-1:] in units else raw
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"invalid duration {text!r}: use e.g. 30d, 12h, 2w") from None
    if value <= 0:
        raise ValueError(f"invalid duration {text!r}: must be positive")
    return timedelta(seconds=value * units[unit])


def all_job_names() -> Iterable[str]:
    return (j.name for j in JOBS)
