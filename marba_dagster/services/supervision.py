"""One pass of the job supervisor: circuit breaker, schedule state and health per job.

Called by the ``marba_job_supervisor`` sensor (every 30 s by default) and by tests. The
circuit breaker's state lives in ``background_jobs`` (status, circuit_opened_at,
circuit_reason, probe_run_id, circuit_reset_at), so it survives a restart of any process;
the decision itself is ``core.circuit.decide``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine

from marba_dagster.core import circuit
from marba_dagster.core.catalog import JOBS, JobSpec
from marba_dagster.core.runs import PROBE_TAG, TRIGGER_TAG
from marba_dagster.instance import tracking
from marba_dagster.instance.control import ControlError, JobControl
from marba_dagster.settings import job_crons
from marba_dagster.store import jobs as job_store
from marba_dagster.store.jobs import write_job_log
from marba_dagster.store.types import utcnow

log = logging.getLogger(__name__)


@dataclass
class Action:
    job: str
    action: str
    detail: str
    run_id: str | None = None


def notify(engine: Engine, webhook_url: str | None, *, dedup_key: str, text: str) -> str:
    """An alert pushed once per ``dedup_key`` (``notifications`` table, then the webhook)."""
    from marba_dagster.services.notifications import push_once

    return push_once(engine, webhook_url, dedup_key=dedup_key, kind="job_health", text=text)


def _circuit_state(row: dict) -> circuit.CircuitState:
    return circuit.CircuitState(
        status=row["status"],
        opened_at=row["circuit_opened_at"],
        probe_run_id=row["probe_run_id"],
        reset_at=row["circuit_reset_at"],
    )


def _probe_status(control: JobControl, run_id: str | None) -> str | None:
    if not run_id:
        return None
    run = control.instance.get_run_by_id(run_id)
    return tracking.run_status(run.status) if run else None


def supervise_job(
    engine: Engine,
    control: JobControl,
    spec: JobSpec,
    config: circuit.CircuitConfig,
    *,
    now: datetime,
    webhook_url: str | None = None,
) -> list[Action]:
    actions: list[Action] = []
    with engine.connect() as conn:
        row = job_store.job_row(conn, spec.name)
        recent = job_store.executions(conn, spec.name, limit=config.window * 3, finished_only=True)
    assert row is not None, "ensure_jobs() first"
    state = _circuit_state(row)
    decision = circuit.decide(
        state,
        [circuit.RunOutcome(r["run_id"], r["status"], r["started_at"]) for r in recent],
        now,
        config,
        _probe_status(control, state.probe_run_id),
    )

    if decision.action == "open":
        try:
            control.stop_schedule(spec)
            detail = decision.reason
        except ControlError as exc:
            detail = f"{decision.reason}; schedule not stopped: {exc}"
        with engine.begin() as conn:
            job_store.update_job(
                conn,
                spec.name,
                status="circuit_open",
                circuit_opened_at=now,
                circuit_reason=decision.reason,
                probe_run_id=None,
            )
            write_job_log(
                conn, spec.name, "error", f"circuit opened: {detail}", context={"kind": "circuit"}
            )
        notify(
            engine,
            webhook_url,
            dedup_key=f"circuit_open:{spec.name}:{now.isoformat()}",
            text=f"MARBA job {spec.name} stopped by its circuit breaker: {decision.reason}",
        )
        actions.append(Action(spec.name, "open", detail))
    elif decision.action == "probe":
        try:
            run_id = control.submit(
                spec, tags={PROBE_TAG: "true", TRIGGER_TAG: "circuit_probe"}, now=now
            )
        except ControlError as exc:
            with engine.begin() as conn:
                job_store.update_job(
                    conn,
                    spec.name,
                    circuit_opened_at=now,
                    circuit_reason=f"probe not started: {exc}",
                )
                write_job_log(
                    conn,
                    spec.name,
                    "error",
                    f"circuit probe not started: {exc}",
                    context={"kind": "circuit"},
                )
            actions.append(Action(spec.name, "reopen", f"probe not started: {exc}"))
        else:
            with engine.begin() as conn:
                job_store.update_job(conn, spec.name, probe_run_id=run_id)
                write_job_log(
                    conn,
                    spec.name,
                    "info",
                    f"circuit probe run {run_id} queued",
                    run_id=run_id,
                    context={"kind": "circuit"},
                )
            actions.append(Action(spec.name, "probe", decision.reason, run_id))
    elif decision.action == "close":
        try:
            control.start_schedule(spec)
            detail = decision.reason
        except ControlError as exc:
            detail = f"{decision.reason}; schedule not restarted: {exc}"
        with engine.begin() as conn:
            job_store.update_job(
                conn,
                spec.name,
                status="active",
                circuit_opened_at=None,
                circuit_reason=None,
                probe_run_id=None,
                circuit_reset_at=now,
            )
            write_job_log(
                conn,
                spec.name,
                "info",
                f"circuit closed: {detail}",
                run_id=state.probe_run_id,
                context={"kind": "circuit"},
            )
        actions.append(Action(spec.name, "close", detail, state.probe_run_id))
    elif decision.action == "reopen":
        with engine.begin() as conn:
            job_store.update_job(
                conn,
                spec.name,
                circuit_opened_at=now,
                probe_run_id=None,
                circuit_reason=decision.reason,
            )
            write_job_log(
                conn,
                spec.name,
                "error",
                f"circuit reopened: {decision.reason}",
                run_id=state.probe_run_id,
                context={"kind": "circuit"},
            )
        actions.append(Action(spec.name, "reopen", decision.reason, state.probe_run_id))
    elif state.status in ("active", "paused"):
        # Keep background_jobs in step with a schedule toggled in the UI or over GraphQL.
        running = control.schedule_running(spec)
        wanted = "active" if running else "paused"
        if wanted != state.status:
            with engine.begin() as conn:
                job_store.update_job(conn, spec.name, status=wanted)
            actions.append(Action(spec.name, wanted, "schedule state changed outside MARBA"))

    # Health, and an alert when a job turns unhealthy.
    with engine.begin() as conn:
        report = job_store.job_health(conn, spec.name, now)
        if report.health != row["health"]:
            job_store.update_job(conn, spec.name, health=report.health)
    if report.health == "unhealthy" and row["health"] != "unhealthy":
        last = report.last_run_at.isoformat() if report.last_run_at else "-"
        status = notify(
            engine,
            webhook_url,
            dedup_key=f"job_unhealthy:{spec.name}:{last}",
            text=f"MARBA job {spec.name} is unhealthy: {', '.join(report.reasons)}",
        )
        actions.append(Action(spec.name, "unhealthy", f"notification {status}"))
    return actions


def supervise(
    engine: Engine,
    control: JobControl,
    config: circuit.CircuitConfig | None = None,
    *,
    now: datetime | None = None,
    webhook_url: str | None = None,
    jobs: list[JobSpec] | None = None,
) -> list[Action]:
    """One pass over every job; returns what was done (default ``config``: the documented rule)."""
    config = config or circuit.CircuitConfig()
    now = now or utcnow()
    with engine.begin() as conn:
        job_store.sync_background_jobs(conn, job_crons())
    actions: list[Action] = []
    for spec in jobs or JOBS:
        try:
            actions.extend(
                supervise_job(engine, control, spec, config, now=now, webhook_url=webhook_url)
            )
        except Exception as exc:  # one job's trouble must not stop the others' supervision
            log.exception("supervising %s failed", spec.name)
            actions.append(Action(spec.name, "error", f"{type(exc).__name__}: {exc}"))
    return actions


HEALTH_COLUMNS = (
    "job",
    "state",
    "health",
    "success_rate",
    "runs",
    "last_run",
    "avg_seconds",
    "trend",
)


def health_overview(engine: Engine, now: datetime | None = None) -> list[dict]:
    """One row per job: state, health, success rate, runs, last run, average duration and
    its trend (read only: the health column and its alerts belong to ``supervise``)."""
    now = now or utcnow()
    rows = []
    with engine.begin() as conn:
        job_store.sync_background_jobs(conn, job_crons())
        for spec in JOBS:
            report = job_store.job_health(conn, spec.name, now)
            state = job_store.job_row(conn, spec.name) or {}
            rate = report.success_rate
            avg = report.avg_duration_seconds
            rows.append(
                {
                    "job": spec.name,
                    "state": state.get("status", "active"),
                    "health": report.health,
                    "success_rate": "-" if rate is None else f"{rate:.0%}",
                    "runs": report.runs,
                    "last_run": report.last_status or "-",
                    "avg_seconds": "-" if avg is None else round(avg, 1),
                    "trend": report.duration_trend,
                }
            )
    return rows
