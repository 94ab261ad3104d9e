"""The MARBA app's view of the jobs: ``background_jobs``, ``job_executions``, ``job_logs``.

SQLAlchemy Core, both databases. Run tracking, the supervisor, the health report, the
Python API and the CLI read and write these tables only through here, so the app's monitor
never needs Dagster's own storage.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from marba_dagster.core import health
from marba_dagster.core.catalog import JOBS
from marba_dagster.core.runs import RunFacts
from marba_dagster.core.shards import combine_shards
from marba_dagster.store import schema
from marba_dagster.store.db import upsert
from marba_dagster.store.types import utcnow


def sync_background_jobs(conn: Connection, crons: dict[str, str] | None = None) -> None:
    """Make sure ``background_jobs`` lists the seven jobs; keep their state, refresh the cron."""
    crons = crons or {}
    rows = [
        {
            "name": j.name,
            "alias": j.alias,
            "description": j.description,
            "cron": crons.get(j.name, j.cron),
            "status": "active",
            "updated_at": utcnow(),
        }
        for j in JOBS
    ]
    # Status is owned by pause/resume and the circuit breaker: never reset it here.
    upsert(
        conn, schema.background_jobs, rows, ["name"], ["alias", "description", "cron", "updated_at"]
    )


def write_job_log(
    conn: Connection,
    job_name: str,
    level: str,
    message: str,
    *,
    run_id: str | None = None,
    brand_id: str | None = None,
    context: dict | None = None,
) -> None:
    conn.execute(
        schema.job_logs.insert().values(
            job_name=job_name,
            run_id=run_id,
            level=level,
            brand_id=brand_id,
            message=message,
            context=context or {},
            created_at=utcnow(),
        )
    )


def _run_values(facts: RunFacts) -> dict[str, Any]:
    """The columns ``job_executions`` and ``job_execution_shards`` share, for one run."""
    return {
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


def record_run(conn: Connection, facts: RunFacts) -> None:
    """One ``job_executions`` row per run, inserted or brought up to date, and the job's
    ``background_jobs.last_run_*`` when this is its newest run."""
    row = _run_values(facts)
    upsert(conn, schema.job_executions, [row], ["run_id"])
    _update_last_run(conn, facts)


def record_shard_run(
    conn: Connection, facts: RunFacts, execution_id: str, shard_index: int, shard_count: int
) -> RunFacts:
    """Record one run of a tick split into brand shards: its ``job_execution_shards`` row,
    and the tick's one ``job_executions`` row (id ``execution_id``) combined from the newest
    run of each shard (``core.shards.combine_shards``: a retried shard counts by its retry).
    Returns the execution's facts.

    Shards of one tick end at the same time in different processes: the execution's row is
    created if missing and then locked (``FOR UPDATE`` on PostgreSQL; SQLite takes one
    writer at a time), so each recorder combines what the others committed before it.
    """
    executions_table, shards_table = schema.job_executions, schema.job_execution_shards
    placeholder = {
        "job_name": facts.job_name,
        "run_id": execution_id,
        "status": "queued",
        "trigger": facts.trigger,
        "partition_key": facts.partition_key,
        "brands_processed": 0,
        "brands_failed": 0,
    }
    upsert(conn, executions_table, [placeholder], ["run_id"], [])
    lock = sa.select(executions_table.c.id).where(executions_table.c.run_id == execution_id)
    if conn.dialect.name == "postgresql":
        lock = lock.with_for_update()
    conn.execute(lock)
    row = {
        "execution_id": execution_id,
        "shard_index": shard_index,
        "shard_count": shard_count,
        **_run_values(facts),
    }
    upsert(conn, shards_table, [row], ["run_id"])
    newest: dict[int, dict[str, Any]] = {}
    for shard in execution_shards(conn, execution_id):
        newest[shard["shard_index"]] = shard  # ordered by id: a retry replaces its original
    combined = combine_shards(facts.job_name, execution_id, shard_count, list(newest.values()))
    record_run(conn, combined)
    return combined


def execution_shards(conn: Connection, execution_id: str) -> list[dict[str, Any]]:
    """The shard runs of one execution, by shard then in the order they were recorded."""
    t = schema.job_execution_shards
    q = sa.select(t).where(t.c.execution_id == execution_id).order_by(t.c.shard_index, t.c.id)
    return [dict(r) for r in conn.execute(q).mappings()]


def shard_counts(conn: Connection, execution_ids: list[str]) -> dict[str, int]:
    """How many shards each of ``execution_ids`` was split into (absent: not sharded)."""
    if not execution_ids:
        return {}
    t = schema.job_execution_shards
    q = (
        sa.select(t.c.execution_id, sa.func.max(t.c.shard_count))
        .where(t.c.execution_id.in_(execution_ids))
        .group_by(t.c.execution_id)
    )
    return {execution_id: int(count) for execution_id, count in conn.execute(q)}


def _update_last_run(conn: Connection, facts: RunFacts) -> None:
    t = schema.job_executions
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
    if facts.status in health.SUCCESS_STATUSES and facts.finished_at is not None:
        bj = schema.background_jobs
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
        .select_from(schema.job_logs)
        .where(
            schema.job_logs.c.run_id == facts.run_id,
            schema.job_logs.c.brand_id.is_(None),
            schema.job_logs.c.message.like("run %"),
        )
    ).scalar_one()
    if exists:
        return
    conn.execute(
        schema.job_logs.insert().values(
            job_name=facts.job_name,
            run_id=facts.run_id,
            level="error" if facts.status in ("failure", "canceled") else "warning",
            brand_id=None,
            message=f"run {facts.status}: {facts.error or 'no error message'}",
            context={"kind": "run_failure", "brands_failed": facts.brands_failed},
            created_at=utcnow(),
        )
    )


def job_row(conn: Connection, name: str) -> dict[str, Any] | None:
    row = (
        conn.execute(sa.select(schema.background_jobs).where(schema.background_jobs.c.name == name))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def update_job(conn: Connection, name: str, **values: Any) -> None:
    values["updated_at"] = utcnow()
    conn.execute(
        sa.update(schema.background_jobs)
        .where(schema.background_jobs.c.name == name)
        .values(**values)
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
    t = schema.job_executions
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
        q = q.where(t.c.status.in_(sorted(health.FINISHED_STATUSES)))
    return [dict(r) for r in conn.execute(q.limit(limit)).mappings()]


def as_execution(row: dict[str, Any]) -> health.Execution:
    return health.Execution(
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
) -> health.HealthReport:
    now = now or utcnow()
    rows = executions(
        conn,
        job_name,
        limit=window_runs,
        since=now - timedelta(days=window_days),
        finished_only=True,
    )
    return health.assess(
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
    t = schema.job_logs
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
    return (
        conn.execute(
            sa.delete(schema.job_logs).where(schema.job_logs.c.created_at < cutoff)
        ).rowcount
        or 0
    )
