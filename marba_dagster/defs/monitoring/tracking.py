"""The MARBA app's view of the jobs: ``background_jobs``, ``job_executions``, ``job_logs``.

Read and written here (SQLAlchemy Core, both databases); the monitoring sensors, the job
health report, the Python API and the CLI all go through these functions, so the app's
monitor never needs Dagster's own storage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.core import health as h
from marba_dagster.core.catalog import JOBS, JobSpec, effective_cron, resolve
from marba_dagster.store import schema as s
from marba_dagster.store.db import upsert
from marba_dagster.store.queries import sync_background_jobs
from marba_dagster.store.types import utcnow

JOB_TAG = "marba/job"
PROBE_TAG = "marba/probe"
TRIGGER_TAG = "marba/trigger"
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


def run_facts(instance: dg.DagsterInstance, run: dg.DagsterRun, spec: JobSpec) -> RunFacts:
    """Status, times, brands processed/failed and the error of ``run``.

    Brands come from the materialization metadata keys ``brands_processed`` and
    ``brands_failed`` (largest value across the run's assets: each asset of a job covers the
    same brands) and from a ``dg.Failure``'s ``brands_failed``; a brand-partitioned run
    without the key counts its materialized brand partitions.
    """
    record = instance.get_run_record_by_id(run.run_id)
    started = _ts(record.start_time) if record else None
    finished = _ts(record.end_time) if record else None
    wanted = {
        dg.DagsterEventType.ASSET_MATERIALIZATION,
        dg.DagsterEventType.STEP_FAILURE,
        dg.DagsterEventType.RUN_FAILURE,
    }
    processed: int | None = None
    failed: int | None = None
    partitions: set[str] = set()
    errors: list[str] = []
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
        elif event.event_type == dg.DagsterEventType.STEP_FAILURE:
            data = event.step_failure_data
            if data.user_failure_data is not None:
                f = _int_meta(dict(data.user_failure_data.metadata or {}), "brands_failed")
                if f is not None:
                    failed = max(failed or 0, f)
            described = data.user_failure_data.description if data.user_failure_data else None
            message = (described or (data.error.message if data.error else "") or "step failed").strip()
            errors.append(f"{event.step_key}: {message.splitlines()[0] if message else 'failed'}")
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE:
            run_error = (event.message or entry.user_message or "run failed").strip()
    if processed is None and spec.partitioning == "brands":
        processed = len(partitions)
    status = run_status(run.status)
    error = "; ".join(errors) or (run_error if status in ("failure", "canceled") else None)
    if status == "canceled" and not error:
        error = "run canceled"
    # Some brands failed while others kept their results: not a failure of the job.
    if status == "failure" and (processed or 0) > 0 and (failed or 0) > 0 and _only_brand_failures(errors):
        status = "partial"
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


def _only_brand_failures(errors: list[str]) -> bool:
    return bool(errors) and all("brand(s) failed" in e for e in errors)


def record_run(conn: Connection, facts: RunFacts) -> None:
    """One ``job_executions`` row per run, inserted or brought up to date."""
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


def ensure_jobs(conn: Connection) -> None:
    sync_background_jobs(conn, {j.name: effective_cron(j) for j in JOBS})


def job_row(conn: Connection, name: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(s.background_jobs).where(s.background_jobs.c.name == name)).mappings().first()
    return dict(row) if row else None


def update_job(conn: Connection, name: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    conn.execute(sa.update(s.background_jobs).where(s.background_jobs.c.name == name).values(**values))


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
    q = sa.select(t).order_by(order.desc().nulls_last() if conn.dialect.name == "postgresql" else order.desc(), t.c.id.desc())
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
    conn: Connection, job_name: str, now: datetime | None = None, *, window_runs: int = 20, window_days: float = 7
) -> h.HealthReport:
    now = now or utcnow()
    rows = executions(
        conn, job_name, limit=window_runs, since=now - timedelta(days=window_days), finished_only=True
    )
    return h.assess([as_execution(r) for r in rows], now, window_runs=window_runs, window_days=window_days)


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
