"""``BackgroundJobScheduler``: the MARBA guide's job-control API on the Dagster instance.

Reads ``MARBA_DATABASE_URL`` (job state, executions, logs) and the Dagster instance of
``DAGSTER_HOME`` (schedules, runs) like the ``marba`` command. ``trigger_job`` *queues* a
run on the instance: a running daemon (``dagster dev`` or ``dagster-daemon run``) launches
it and the UI shows it. Both job names work everywhere (``learning_engine`` or
``cron-learning-engine``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from marba_dagster.core.catalog import JOBS, JobSpec, resolve
from marba_dagster.core.durations import parse_duration
from marba_dagster.core.runs import TRIGGER_TAG
from marba_dagster.instance import tracking
from marba_dagster.instance.control import ControlError, JobControl
from marba_dagster.settings import job_cron, job_crons
from marba_dagster.store import jobs as job_store
from marba_dagster.store.brands import existing_brand_ids
from marba_dagster.store.db import make_engine
from marba_dagster.store.types import utcnow

# Runs updated this recently are reconciled before job state is read (see ``reconcile``).
RECONCILE_ON_READ = timedelta(days=1)


class JobControlError(RuntimeError):
    """A job-control request that cannot be carried out (one clear line)."""


class BackgroundJobScheduler:
    """Status, trigger, pause/resume, history, logs and log cleanup for the seven jobs."""

    def __init__(
        self,
        database_url: str | None = None,
        instance=None,
        *,
        engine: Engine | None = None,
        location_name: str | None = None,
        definitions_module: str | None = None,
    ) -> None:
        self._own_engine = engine is None
        self.engine = engine or make_engine(database_url)
        self._instance = instance
        self._own_instance = False  # made on first use from DAGSTER_HOME: close() disposes it
        self._location_name = location_name
        self._definitions_module = definitions_module
        self._control: JobControl | None = None
        self._reconciled = False
        with self.engine.begin() as conn:
            job_store.sync_background_jobs(conn, job_crons())

    # --------------------------------------------------------------- plumbing

    @property
    def instance(self):
        if self._instance is None:
            from marba_dagster.instance import get_instance

            self._instance = get_instance()
            self._own_instance = True
        return self._instance

    @property
    def control(self) -> JobControl:
        if self._control is None:
            self._control = JobControl(
                self.instance,
                location_name=self._location_name,
                module_name=self._definitions_module,
            )
        return self._control

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._own_engine:
            self.engine.dispose()
        if self._own_instance and self._instance is not None:
            self._instance.dispose()
            self._instance = None
            self._own_instance = False

    def __enter__(self) -> BackgroundJobScheduler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @staticmethod
    def _spec(name: str) -> JobSpec:
        try:
            return resolve(name)
        except KeyError as exc:
            raise JobControlError(str(exc)) from None

    # --------------------------------------------------------------- reading

    def reconcile(self) -> None:
        """Bring the job tables up to date with the Dagster instance before reading them:
        runs whose process died are failed, and any run not recorded yet (an instance
        without the MARBA class, a database that was briefly down) is recorded. Done once
        per scheduler; runs recorded as they happen make it a cheap no-op."""
        from marba_dagster.instance.workers import fail_dead_runs

        if self._reconciled:
            return
        self._reconciled = True
        fail_dead_runs(self.instance)
        tracking.sync_runs(self.instance, self.engine, updated_after=utcnow() - RECONCILE_ON_READ)

    def list_jobs(self) -> list[dict[str, Any]]:
        return [self.get_job_status(j.name) for j in JOBS]

    def get_job_status(self, name: str) -> dict[str, Any]:
        """State, health, success rate, last run, average duration of one job."""
        spec = self._spec(name)
        self.reconcile()
        now = utcnow()
        with self.engine.connect() as conn:
            row = job_store.job_row(conn, spec.name) or {}
            report = job_store.job_health(conn, spec.name, now)
            last = job_store.executions(conn, spec.name, limit=1)
        schedule_running = self.control.schedule_running(spec)
        return {
            "name": spec.name,
            "alias": spec.alias,
            "cron": row.get("cron") or job_cron(spec),
            "state": row.get("status", "active"),
            "schedule_running": schedule_running,
            "circuit_opened_at": row.get("circuit_opened_at"),
            "circuit_reason": row.get("circuit_reason"),
            "health": report.health,
            "health_reasons": list(report.reasons),
            "success_rate": report.success_rate,
            "runs_in_window": report.runs,
            "last_run": _execution_dict(last[0]) if last else None,
            "avg_duration_seconds": report.avg_duration_seconds,
            "duration_trend": report.duration_trend,
        }

    def get_execution_history(
        self, name: str | None = None, limit: int = 20
    ) -> list[dict[str, Any]]:
        spec = self._spec(name) if name else None
        self.reconcile()
        with self.engine.connect() as conn:
            rows = job_store.executions(conn, spec.name if spec else None, limit=limit)
            shards = job_store.shard_counts(conn, [r["run_id"] for r in rows])
        return [{**_execution_dict(r), "shards": shards.get(r["run_id"], 1)} for r in rows]

    def get_execution_shards(self, execution_id: str) -> list[dict[str, Any]]:
        """The brand shard runs of one execution (its ``run_id`` in the history), by shard;
        empty for an execution that was one run."""
        self.reconcile()
        with self.engine.connect() as conn:
            rows = job_store.execution_shards(conn, execution_id)
        keys = ("shard_index", "shard_count", *_EXECUTION_KEYS)
        return [{k: r.get(k) for k in keys} for r in rows]

    def get_logs(
        self,
        name: str | None = None,
        *,
        level: str | None = None,
        brand_id: str | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        spec = self._spec(name) if name else None
        with self.engine.connect() as conn:
            return job_store.logs(
                conn,
                spec.name if spec else None,
                level=level,
                brand_id=brand_id,
                run_id=run_id,
                limit=limit,
            )

    # --------------------------------------------------------------- control

    def trigger_job(self, name: str, brand_id: str | None = None) -> str:
        """Queue the job now (all active brands, or one); returns the id of the execution
        (its ``job_executions.run_id``): the run id when one run covers it, else
        ``<job>:<time>`` for a tick of brand shards (``trigger_job_runs`` lists the runs)."""
        return self.trigger_job_runs(name, brand_id)[0]

    def trigger_job_runs(self, name: str, brand_id: str | None = None) -> tuple[str, list[str]]:
        """Queue the job now as its schedule would: one run per brand shard of at most
        ``MARBA_BRANDS_PER_RUN`` active brands (one run for ``brand_id``). Returns (the
        execution's id, the run ids)."""
        from marba_dagster.instance.partitions import sync_brand_partitions

        spec = self._spec(name)
        if brand_id:
            with self.engine.connect() as conn:
                if not existing_brand_ids(conn, [brand_id]):
                    raise JobControlError(f"unknown brand: {brand_id}")
        # Shards are planned over the brand partitions: bring them up to date first.
        sync_brand_partitions(self.instance, self.engine)
        tags = {TRIGGER_TAG: "api"}
        try:
            if brand_id:
                run_id = self.control.submit(spec, brand_ids=[brand_id], tags=tags)
                execution_id, run_ids = run_id, [run_id]
            else:
                execution_id, run_ids = self.control.submit_shards(spec, tags=tags)
        except ControlError as exc:
            raise JobControlError(str(exc)) from None
        if len(run_ids) > 1:
            message = f"execution {execution_id} triggered: {len(run_ids)} brand shard runs"
        else:
            message = f"run {run_ids[0]} triggered" + (f" for brand {brand_id}" if brand_id else "")
        with self.engine.begin() as conn:
            job_store.write_job_log(
                conn,
                spec.name,
                "info",
                message,
                run_id=run_ids[0] if len(run_ids) == 1 else None,
                context={"kind": "trigger", "run_ids": run_ids},
            )
        return execution_id, run_ids

    def pause_job(self, name: str) -> dict[str, Any]:
        """Stop the job's schedule; the job shows as ``paused``."""
        spec = self._spec(name)
        try:
            self.control.stop_schedule(spec)
        except ControlError as exc:
            raise JobControlError(str(exc)) from None
        with self.engine.begin() as conn:
            # An open circuit stays open (its probe decides); otherwise the job is paused.
            row = job_store.job_row(conn, spec.name) or {}
            if row.get("status") != "circuit_open":
                job_store.update_job(conn, spec.name, status="paused")
            job_store.write_job_log(
                conn, spec.name, "info", "schedule paused", context={"kind": "control"}
            )
        return self.get_job_status(spec.name)

    def resume_job(self, name: str) -> dict[str, Any]:
        """Start the job's schedule again (also closes an open circuit by hand)."""
        spec = self._spec(name)
        try:
            self.control.start_schedule(spec)
        except ControlError as exc:
            raise JobControlError(str(exc)) from None
        with self.engine.begin() as conn:
            job_store.update_job(
                conn,
                spec.name,
                status="active",
                circuit_opened_at=None,
                circuit_reason=None,
                probe_run_id=None,
                circuit_reset_at=utcnow(),
            )
            job_store.write_job_log(
                conn, spec.name, "info", "schedule resumed", context={"kind": "control"}
            )
        return self.get_job_status(spec.name)

    def cleanup_old_logs(self, older_than: timedelta | str = timedelta(days=30)) -> int:
        """Delete ``job_logs`` older than ``older_than`` (a timedelta or ``30d``/``12h``)."""
        age = (
            parse_duration(older_than, bare_unit="d") if isinstance(older_than, str) else older_than
        )
        with self.engine.begin() as conn:
            return job_store.cleanup_logs(conn, age)

    # --------------------------------------------------------------- costs

    def get_costs(self, now: datetime | None = None) -> list[dict[str, Any]]:
        """AI cost per brand today and this month (UTC) against the monthly budget."""
        return ai_costs(self.engine, now)


_EXECUTION_KEYS = (
    "job_name",
    "run_id",
    "status",
    "trigger",
    "partition_key",
    "started_at",
    "finished_at",
    "duration_seconds",
    "brands_processed",
    "brands_failed",
    "error",
)


def _execution_dict(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row.get(k) for k in _EXECUTION_KEYS}


def budget_status(month_cost: float, budget: float) -> str:
    """``no budget``, ``ok``, ``warning`` (80% used), ``exceeded``."""
    if budget <= 0:
        return "no budget"
    used = month_cost / budget
    if used >= 1:
        return "exceeded"
    if used >= 0.8:
        return "warning"
    return "ok"


def ai_costs(engine: Engine, now: datetime | None = None) -> list[dict[str, Any]]:
    from marba_dagster.store import schema

    now = now or utcnow()
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    b, a = schema.brands, schema.api_billing_tracker
    today = sa.func.coalesce(
        sa.func.sum(sa.case((a.c.occurred_at >= day, a.c.cost_usd), else_=0)), 0
    )
    monthly = sa.func.coalesce(sa.func.sum(a.c.cost_usd), 0)
    q = (
        sa.select(
            b.c.id,
            b.c.name,
            b.c.monthly_ai_budget_usd,
            today.label("today"),
            monthly.label("month"),
            sa.func.count(a.c.id).label("calls"),
        )
        .select_from(
            b.outerjoin(
                a, sa.and_(a.c.brand_id == b.c.id, a.c.occurred_at >= month, a.c.occurred_at <= now)
            )
        )
        .group_by(b.c.id, b.c.name, b.c.monthly_ai_budget_usd)
        .order_by(b.c.id)
    )
    out = []
    with engine.connect() as conn:
        for r in conn.execute(q).mappings():
            budget = float(r["monthly_ai_budget_usd"] or 0)
            month_cost = float(r["month"] or 0)
            out.append(
                {
                    "brand_id": r["id"],
                    "name": r["name"],
                    "today_usd": round(float(r["today"] or 0), 6),
                    "month_usd": round(month_cost, 6),
                    "calls_this_month": int(r["calls"]),
                    "budget_usd": budget,
                    "budget_used": (month_cost / budget) if budget > 0 else None,
                    "budget_status": budget_status(month_cost, budget),
                }
            )
    return out
