"""`marba jobs list|status|trigger|pause|resume|history|logs`, `marba cleanup-logs`, `marba costs`.

Registered on the `marba` group by ``register(main)``. Every command goes through
``BackgroundJobScheduler`` (MARBA_DATABASE_URL and the Dagster instance of DAGSTER_HOME, the
embedded one by default); both job names work.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from datetime import datetime

import click

from marba_dagster.store.db import DatabaseError


class _CliError(click.ClickException):
    def show(self, file=None) -> None:  # noqa: ARG002 - click's signature; always stderr
        click.echo(f"error: {self.format_message()}", err=True)


@contextmanager
def _scheduler():
    from marba_dagster.api.scheduler import BackgroundJobScheduler, JobControlError
    from marba_dagster.instance import ensure_dagster_home
    from marba_dagster.instance.control import ControlError
    from marba_dagster.runner import open_database

    ensure_dagster_home()
    try:
        engine = open_database()
    except Exception as exc:  # RunError / DatabaseError: one clear line
        raise _CliError(str(exc)) from None
    sched = BackgroundJobScheduler(engine=engine)
    try:
        yield sched
    except (JobControlError, ControlError, DatabaseError, ValueError) as exc:
        raise _CliError(str(exc)) from None
    finally:
        sched.close()
        engine.dispose()


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _json(data) -> None:
    click.echo(json.dumps(data, default=_fmt, indent=2))


def register(main: click.Group) -> None:
    """Add the job-control commands to the `marba` group (replacing any `jobs` group)."""
    main.commands.pop("jobs", None)
    main.add_command(jobs)
    main.add_command(cleanup_logs)
    main.add_command(costs)


@click.group()
def jobs() -> None:
    """Job control: state, health, trigger, pause/resume, history, logs (either job name)."""


@jobs.command("list")
@click.option("--json", "as_json", is_flag=True)
def jobs_list(as_json: bool) -> None:
    """The seven jobs with their schedule, state and health."""
    with _scheduler() as sched:
        rows = sched.list_jobs()
    if as_json:
        return _json(rows)
    click.echo(
        f"{'job':<24} {'alias':<30} {'cron':<14} {'state':<13} {'health':<10}"
        f" {'success':>7}  last run"
    )
    for r in rows:
        rate = "-" if r["success_rate"] is None else f"{r['success_rate']:.0%}"
        last = r["last_run"]["status"] if r["last_run"] else "-"
        click.echo(
            f"{r['name']:<24} {r['alias']:<30} {r['cron']:<14} {r['state']:<13}"
            f" {r['health']:<10} {rate:>7}  {last}"
        )


@jobs.command("status")
@click.argument("job")
@click.option("--json", "as_json", is_flag=True)
def jobs_status(job: str, as_json: bool) -> None:
    """State, health, success rate, last run and average duration of JOB."""
    with _scheduler() as sched:
        st = sched.get_job_status(job)
    if as_json:
        return _json(st)
    rate = "-" if st["success_rate"] is None else f"{st['success_rate']:.0%}"
    click.echo(f"{st['name']} ({st['alias']})  cron {st['cron']} UTC")
    schedule_state = "running" if st["schedule_running"] else "stopped"
    click.echo(f"  state:     {st['state']}  (schedule {schedule_state})")
    if st["circuit_reason"]:
        click.echo(f"  circuit:   opened {_fmt(st['circuit_opened_at'])}: {st['circuit_reason']}")
    click.echo(
        f"  health:    {st['health']}"
        + (f"  ({'; '.join(st['health_reasons'])})" if st["health_reasons"] else "")
    )
    click.echo(f"  success:   {rate} over {st['runs_in_window']} run(s)")
    click.echo(
        f"  duration:  avg {_fmt(st['avg_duration_seconds'])}s, trend {st['duration_trend']}"
    )
    last = st["last_run"]
    if last:
        click.echo(f"  last run:  {last['run_id']} {last['status']} at {_fmt(last['started_at'])}")


@jobs.command("trigger")
@click.argument("job")
@click.option("--brand", default=None, help="only this brand")
def jobs_trigger(job: str, brand: str | None) -> None:
    """Queue JOB now, one run per brand shard (MARBA_BRANDS_PER_RUN); the Dagster daemon
    launches them (see them in the UI)."""
    with _scheduler() as sched:
        execution_id, run_ids = sched.trigger_job_runs(job, brand_id=brand)
    if len(run_ids) == 1:
        click.echo(f"queued run {run_ids[0]}")
        return
    click.echo(f"queued execution {execution_id}: {len(run_ids)} brand shard runs")
    for index, run_id in enumerate(run_ids, start=1):
        click.echo(f"  shard {index}/{len(run_ids)}: run {run_id}")


def _echo_schedule_state(st: dict) -> None:
    running = "running" if st["schedule_running"] else "stopped"
    click.echo(f"{st['name']}: {st['state']} (schedule {running})")


@jobs.command("pause")
@click.argument("job")
def jobs_pause(job: str) -> None:
    """Stop JOB's schedule."""
    with _scheduler() as sched:
        st = sched.pause_job(job)
    _echo_schedule_state(st)


@jobs.command("resume")
@click.argument("job")
def jobs_resume(job: str) -> None:
    """Start JOB's schedule again (also closes an open circuit)."""
    with _scheduler() as sched:
        st = sched.resume_job(job)
    _echo_schedule_state(st)


@jobs.command("history")
@click.argument("job", required=False)
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs_history(job: str | None, limit: int, as_json: bool) -> None:
    """Recent executions (of JOB, or of every job)."""
    with _scheduler() as sched:
        rows = sched.get_execution_history(job, limit=limit)
    if as_json:
        return _json(rows)
    if not rows:
        click.echo("no executions recorded")
    for r in rows:
        err = f"  {r['error'][:80]}" if r["error"] else ""
        shards = f" ({r['shards']} shards)" if r["shards"] > 1 else ""
        click.echo(
            f"{_fmt(r['started_at'])}  {r['job_name']:<22} {r['status']:<9}"
            f" {_fmt(r['duration_seconds']):>7}s "
            f"brands {r['brands_processed']}/{r['brands_failed']} failed  {r['run_id']}"
            f"{shards}{err}"
        )


@jobs.command("shards")
@click.argument("execution_id")
@click.option("--json", "as_json", is_flag=True)
def jobs_shards(execution_id: str, as_json: bool) -> None:
    """The brand shard runs of one execution (its id as `marba jobs history` shows it)."""
    with _scheduler() as sched:
        rows = sched.get_execution_shards(execution_id)
    if as_json:
        return _json(rows)
    if not rows:
        click.echo(f"{execution_id} was not split into brand shards")
    for r in rows:
        err = f"  {r['error'][:80]}" if r["error"] else ""
        click.echo(
            f"shard {r['shard_index']}/{r['shard_count']}  {r['status']:<9}"
            f" {_fmt(r['duration_seconds']):>7}s "
            f"brands {r['brands_processed']}/{r['brands_failed']} failed  {r['run_id']}{err}"
        )


@jobs.command("logs")
@click.argument("job", required=False)
@click.option("--level", type=click.Choice(["debug", "info", "warning", "error"]), default=None)
@click.option("--brand", default=None)
@click.option("--run", "run_id", default=None)
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
def jobs_logs(
    job: str | None, level: str | None, brand: str | None, run_id: str | None, limit: int
) -> None:
    """Warnings, errors and run failures from job_logs, newest first."""
    with _scheduler() as sched:
        rows = sched.get_logs(job, level=level, brand_id=brand, run_id=run_id, limit=limit)
    if not rows:
        click.echo("no log lines")
    for r in rows:
        who = f" [{r['brand_id']}]" if r["brand_id"] else ""
        click.echo(
            f"{_fmt(r['created_at'])}  {r['job_name']:<22} {r['level']:<7}{who} {r['message']}"
        )


@click.command("cleanup-logs")
@click.option("--older-than", default="30d", show_default=True, help="e.g. 30d, 12h, 2w")
def cleanup_logs(older_than: str) -> None:
    """Delete job_logs older than the given age (also runs weekly on a schedule)."""
    from marba_dagster.core.durations import parse_duration

    try:
        age = parse_duration(older_than, bare_unit="d")
    except ValueError as exc:
        raise _CliError(str(exc)) from None
    with _scheduler() as sched:
        deleted = sched.cleanup_old_logs(age)
    click.echo(f"deleted {deleted} job_logs row(s) older than {older_than}")


@click.command("costs")
@click.option("--json", "as_json", is_flag=True)
def costs(as_json: bool) -> None:
    """AI cost per brand today and this month (UTC), and the budget status."""
    from marba_dagster.api.scheduler import ai_costs
    from marba_dagster.runner import open_database

    try:
        engine = open_database()
    except Exception as exc:
        raise _CliError(str(exc)) from None
    try:
        rows = ai_costs(engine)
    finally:
        engine.dispose()
    if as_json:
        return _json(rows)
    click.echo(
        f"{'brand':<20} {'today $':>10} {'month $':>10} {'budget $':>10} {'used':>6}  status"
    )
    for r in rows:
        used = "-" if r["budget_used"] is None else f"{r['budget_used']:.0%}"
        click.echo(
            f"{r['brand_id']:<20} {r['today_usd']:>10.4f} {r['month_usd']:>10.4f}"
            f" {r['budget_usd']:>10.2f} {used:>6}  {r['budget_status']}"
        )
    total_today = sum(r["today_usd"] for r in rows)
    total_month = sum(r["month_usd"] for r in rows)
    click.echo(f"{'total':<20} {total_today:>10.4f} {total_month:>10.4f}")
